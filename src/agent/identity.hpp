#pragma once
// What a GPU node says about itself when it registers: read from the host (procfs, sysfs, the
// network interfaces) and from NVML, which is loaded at run time so that the agent runs, and
// reports no GPUs, on a node without the driver.
#include <string>

namespace shepherd::agent {

struct NodeIdentity {
  std::string name, boot_id, ip, ibdev;  // ibdev: list_ib_devices()
  int gpus = 0;
  std::string gpu_model, driver_version;
};

// The kernel's boot id (a new one each boot), trimmed. Throws std::runtime_error naming `path`.
std::string read_boot_id(const std::string& path = "/proc/sys/kernel/random/boot_id");

// The InfiniBand devices, sorted and comma-joined ("mlx5_0,mlx5_1"); "" when `sys_dir` is absent.
std::string list_ib_devices(const std::string& sys_dir = "/sys/class/infiniband");

// The first IPv4 address of an interface that is up and not loopback; "" when there is none.
std::string primary_ipv4();

struct GpuInventory {
  int count = 0;
  std::string model;           // the GPUs' names, distinct ones comma-joined in index order
  std::string driver_version;  // "550.54.15"
  std::string problem;         // why the count is 0 or partial; "" when NVML answered fully
};

// Asks NVML. Never throws: without the library the count is 0 and `problem` says
// "<library> not found"; an NVML call that fails is named in `problem`.
GpuInventory query_gpus(const std::string& library = "libnvidia-ml.so.1");

}  // namespace shepherd::agent
