#pragma once
// Kernel Xid reports of the NVIDIA driver: reading a log line, the catalogue of what each Xid
// calls for, and a filter that turns a burst of the same Xid into one event. Pure: the caller
// reads the log and the clock.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shepherd::health {

// One Xid report, e.g.
//   NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.
struct XidLine {
  std::string pci_bus;  // "0000:3b:00", as printed ("PCI:" dropped), lower case
  int xid = 0;
  std::string pid;      // as printed without quotes ("1234", "<unknown>"); empty when not given
  std::string process;  // the name= field; empty when not given
  std::string message;  // the rest of the line
  // Microseconds since boot, from a /dev/kmsg record ("4,1234,5678901,-;NVRM: ...") or a dmesg
  // "[  219.470994]" prefix; -1 when the line has neither (syslog and journal times are not read).
  std::int64_t kernel_usec = -1;
  bool operator==(const XidLine&) const = default;
};

// The Xid report in `line` (any prefix: /dev/kmsg, dmesg, syslog, journal), or nullopt for any
// other line, including a malformed Xid report. Never throws.
std::optional<XidLine> parse_xid_line(std::string_view line);

// What an Xid calls for: NVIDIA's catalogue's immediate resolution buckets.
enum class XidAction {
  Ignore,
  RestartApp,
  ResetGpu,
  RestartBm,  // reboot the node ("bare metal")
  ContactSupport,
};
std::string_view to_string(XidAction a);  // "IGNORE", "RESTART_APP", "RESET_GPU", ...
std::optional<XidAction> parse_xid_action(std::string_view s);

// Xid number -> action, kept as data (src/health/xid_catalogue.yaml) that an operator file of the
// same shape overrides:
//   unknown_action: CONTACT_SUPPORT     # optional: what an Xid not listed calls for
//   xids:
//     - {xid: 79, action: RESTART_BM, name: GPU has fallen off the bus}   # name optional
class XidCatalogue {
 public:
  struct Entry {
    int xid = 0;
    XidAction action = XidAction::ContactSupport;
    std::string name;
    bool operator==(const Entry&) const = default;
  };

  // Throws std::invalid_argument naming `source_name`:line and the field on bad input. Empty
  // text is a catalogue with no entries.
  static XidCatalogue from_yaml(std::string_view text, std::string_view source_name);
  // The shipped catalogue: the text of src/health/xid_catalogue.yaml built into the program.
  static const XidCatalogue& built_in();

  // This catalogue with each entry of `operator_file` (and its unknown_action, if it sets one)
  // put in place of this one's.
  XidCatalogue with_overrides(const XidCatalogue& operator_file) const;

  // An Xid not in the catalogue gets unknown_action(): ContactSupport unless a file says
  // otherwise. NVIDIA's catalogue marks its unused and unexplained Xids CONTACT_SUPPORT, and an
  // Xid nobody has classified needs a person before anything automatic happens.
  XidAction action(int xid) const;
  const Entry* find(int xid) const;
  XidAction unknown_action() const { return unknown_.value_or(XidAction::ContactSupport); }
  const std::map<int, Entry>& entries() const { return entries_; }

 private:
  std::map<int, Entry> entries_;
  std::optional<XidAction> unknown_;
};

// The YAML text built_in() reads (kept equal to src/health/xid_catalogue.yaml by a test).
std::string_view built_in_xid_catalogue_yaml();

// Groups bursts: a driver often logs the same Xid for a GPU many times in a row. One event per
// (pci_bus, xid) is reported per window: a repeat less than `window_ms` after the last reported
// one is dropped; once the window has passed it is reported again. Memory is bounded: entries
// older than the window are forgotten (at the latest one window later), and at most
// `max_entries` are kept (the oldest goes first). A clock that goes back reports the line.
class XidBurstFilter {
 public:
  explicit XidBurstFilter(std::int64_t window_ms, std::size_t max_entries = 4096);

  // True when the line should be reported.
  bool admit(const XidLine& line, std::int64_t now_ms);
  std::size_t size() const { return last_reported_.size(); }

 private:
  void forget_old(std::int64_t now_ms);

  std::int64_t window_ms_;
  std::size_t max_entries_;
  std::map<std::pair<std::string, int>, std::int64_t> last_reported_;
  std::optional<std::int64_t> last_sweep_;
};

}  // namespace shepherd::health
