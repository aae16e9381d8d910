#pragma once
// Follows the kernel log on a thread of its own and reports the NVIDIA driver's Xid lines, one
// event per burst of the same Xid on one GPU.
//
// Sources:
//  - /dev/kmsg (any character device): one record per read, "PRI,SEQ,USEC,FLAGS;MESSAGE". When
//    records were overwritten before they were read (EPIPE) the follower goes on with the oldest
//    one left.
//  - a regular file (syslog, or records written by a test): appended lines are read as `tail -F`
//    does: a file that does not exist yet is waited for and read from its start, one truncated
//    or replaced (a new inode) is read again from its start.
// Lines may carry any prefix parse_xid_line reads (a kmsg record header, dmesg, syslog, journal).
//
// Where it starts (StartAt::End, the default): after what the log held at start(). The records
// already in the ring buffer were there before this agent ran; the last agent reported them, or
// they came before the node's last boot check. Reading them again after every agent restart
// would report old Xids as new ones. An Xid logged while no agent ran is not reported; the
// diagnostic run before the node is used again is what finds a GPU that broke then.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "health/xid.hpp"

namespace shepherd::agent {

struct XidEvent {
  std::string pci;  // "0000:3b:00"
  int xid = 0;
  health::XidAction action = health::XidAction::ContactSupport;  // from the catalogue
  std::string message;            // the driver's text after the Xid number
  std::string process;            // the name= field, "" when not given
  std::int64_t kernel_usec = -1;  // microseconds since boot, -1 when the line has none
  std::string line;               // the line as read (a kmsg record with its header)
};

class KernelLogFollower {
 public:
  enum class StartAt { End, Beginning };
  using Callback = std::function<void(const XidEvent&)>;

  // on_xid is called on the follower's thread. Every Xid is reported, IGNORE ones too: the
  // caller decides what each action means.
  KernelLogFollower(std::string source, health::XidCatalogue catalogue,
                    std::chrono::milliseconds burst_window, Callback on_xid,
                    StartAt start_at = StartAt::End);
  ~KernelLogFollower();  // stop()
  KernelLogFollower(const KernelLogFollower&) = delete;
  KernelLogFollower& operator=(const KernelLogFollower&) = delete;

  // Fixes the start position and starts the thread. Throws std::system_error when a character
  // device (/dev/kmsg) cannot be opened (dmesg_restrict without CAP_SYSLOG); a missing regular
  // file is waited for. Throws std::logic_error when already started.
  void start();
  // Prompt (the thread waits on an eventfd beside the log); the callback is not called after.
  void stop();

  // Lines read, Xid lines among them (before the burst filter): for tests and status.
  std::uint64_t lines_read() const { return lines_read_; }
  std::uint64_t xid_lines() const { return xid_lines_; }

 private:
  void follow_device(int fd);
  void follow_file(std::int64_t start_offset, std::uint64_t start_inode);
  void handle_line(std::string_view line);
  bool wait(int fd, int timeout_ms);  // false once stop() was called

  std::string source_;
  health::XidCatalogue catalogue_;
  health::XidBurstFilter filter_;
  Callback on_xid_;
  StartAt start_at_;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<std::uint64_t> lines_read_{0}, xid_lines_{0};
};

}  // namespace shepherd::agent
