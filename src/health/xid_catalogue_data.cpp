// The text of src/health/xid_catalogue.yaml, built in for XidCatalogue::built_in(). Keep it equal
// to that file (tests/unit/health_xid_test.cpp fails when they differ): edit the file, then paste
// it here.
#include "health/xid.hpp"

namespace shepherd::health {

std::string_view built_in_xid_catalogue_yaml() {
  return R"yaml(# What to do about each kernel Xid: the shipped default. An operator file of the same shape
# overrides entries one by one (XidCatalogue::with_overrides).
#
# Source: NVIDIA's Xid catalogue for Ampere and newer GPUs, column "Resolution Bucket (Immediate
# Action)" (https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html and its
# spreadsheet Xid-Catalog.xlsx); `name` is the catalogue's Description. Checked against a copy of
# the catalogue generated from that page in public code (leptonai/gpud,
# components/accelerator/nvidia/xid/catalog_generated.go, 2025-10-29): same bucket for every Xid
# below.
#
# The catalogue has buckets this table cannot express (a workflow that reads the line's
# registers or the Xids around it, "check mechanicals", "update software/firmware"). Those are
# mapped here as each comment says, erring toward the action that takes the hardware out of use.
#
# Xids not listed get CONTACT_SUPPORT (`unknown_action`): the catalogue itself marks its unused and
# unexplained Xids CONTACT_SUPPORT, and an Xid nobody has classified needs a person.
unknown_action: CONTACT_SUPPORT
xids:
  - {xid: 8, action: RESTART_APP, name: GPU stopped processing}
  - {xid: 11, action: RESTART_APP, name: Invalid or corrupted push buffer stream}
  - {xid: 13, action: RESTART_APP, name: Graphics Engine Exception}
  - {xid: 25, action: RESTART_APP, name: Invalid or illegal push buffer stream}
  - {xid: 31, action: RESTART_APP, name: GPU memory page fault}
  - {xid: 32, action: RESTART_APP, name: Invalid or corrupted push buffer stream}
  - {xid: 43, action: IGNORE, name: GPU stopped processing}
  - {xid: 44, action: IGNORE, name: Graphics Engine fault during context switch}
  # Catalogue: WORKFLOW_XID_45 (seen with other Xids: follow those; alone: restart the fabric
  # manager). The application's channels were torn down, so at least the application restarts.
  - {xid: 45, action: RESTART_APP, name: Preemptive cleanup due to previous errors}
  - {xid: 46, action: RESET_GPU, name: GPU stopped processing}
  # Catalogue: WORKFLOW_XID_48. An uncorrectable ECC error: the row remap or page retirement that
  # follows it takes effect at the next GPU reset, so reset the GPU.
  - {xid: 48, action: RESET_GPU, name: Double Bit ECC Error}
  # Catalogue: CHECK_MECHANICALS (auxiliary power not connected): a person has to look.
  - {xid: 54, action: CONTACT_SUPPORT, name: Auxiliary power is not connected to the GPU board}
  - {xid: 61, action: CONTACT_SUPPORT, name: Internal micro-controller breakpoint (unused)}
  - {xid: 62, action: RESET_GPU, name: Internal micro-controller halt}
  - {xid: 63, action: IGNORE, name: GPU memory remapping event}
  - {xid: 64, action: RESET_GPU, name: GPU memory remapping failure}
  - {xid: 68, action: RESTART_APP, name: NVDEC0 Exception}
  - {xid: 69, action: RESTART_APP, name: Graphics Engine class error}
  # Catalogue: WORKFLOW_NVLINK_ERR (decode the register bits in the line; most outcomes are a link
  # check, field diagnostics or a bug report): a person has to look.
  - {xid: 74, action: CONTACT_SUPPORT, name: NVLINK Error}
  - {xid: 79, action: RESTART_BM, name: GPU has fallen off the bus}
  - {xid: 92, action: IGNORE, name: High single-bit ECC error rate}
  - {xid: 93, action: IGNORE, name: Non-fatal violation of provisioned InfoROM wear limit}
  - {xid: 94, action: RESTART_APP, name: Contained memory error}
  - {xid: 95, action: RESET_GPU, name: Uncontained memory error}
  - {xid: 109, action: RESET_GPU, name: Context Switch Timeout Error}
  - {xid: 110, action: RESET_GPU, name: Security Fault Error}
  - {xid: 119, action: RESET_GPU, name: GSP RPC Timeout}
  - {xid: 120, action: RESET_GPU, name: GSP Error}
  - {xid: 121, action: IGNORE, name: C2C Error}
  - {xid: 136, action: RESET_GPU, name: Link Training Failed}
  - {xid: 140, action: RESET_GPU, name: ECC Unrecovered Error}
  - {xid: 143, action: RESET_GPU, name: GPU Initialization Error}
  # Catalogue: WORKFLOW_NVLINK5_ERR for 144-150 (decode the line's registers): a person has to look.
  - {xid: 144, action: CONTACT_SUPPORT, name: "NVLINK: SAW Error"}
  - {xid: 145, action: CONTACT_SUPPORT, name: "NVLINK: RLW Error"}
  - {xid: 146, action: CONTACT_SUPPORT, name: "NVLINK: TLW Error"}
  - {xid: 147, action: CONTACT_SUPPORT, name: "NVLINK: TREX Error"}
  - {xid: 148, action: CONTACT_SUPPORT, name: "NVLINK: NVLPW_CTRL Error"}
  - {xid: 149, action: CONTACT_SUPPORT, name: "NVLINK: NETIR Error"}
  - {xid: 150, action: CONTACT_SUPPORT, name: "NVLINK: MSE Error"}
  # Catalogue: XID_154. The line itself names the new recovery action ("GPU recovery action changed
  # from 0x0 (None) to 0x1 (GPU Reset Required)"), which a number-keyed table cannot read.
  - {xid: 154, action: CONTACT_SUPPORT, name: GPU Recovery Action Changed}
  - {xid: 155, action: RESET_GPU, name: "NVLINK: SW Defined Error"}
  - {xid: 156, action: RESET_GPU, name: Resource Retirement Event}
  - {xid: 158, action: RESET_GPU, name: GPU Fatal Timeout}
)yaml";
}

}  // namespace shepherd::health
