#include "agent/kernel_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace shepherd::agent {
namespace {

constexpr int kFilePollMs = 100;  // a regular file cannot be polled for appends
constexpr int kErrorPauseMs = 1000;
constexpr std::size_t kMaxLine = 64 << 10;  // a longer "line" is cut (no newline in sight)

std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

KernelLogFollower::KernelLogFollower(std::string source, health::XidCatalogue catalogue,
                                     std::chrono::milliseconds burst_window, Callback on_xid,
                                     StartAt start_at)
    : source_(std::move(source)),
      catalogue_(std::move(catalogue)),
      filter_(burst_window.count()),
      on_xid_(std::move(on_xid)),
      start_at_(start_at) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

KernelLogFollower::~KernelLogFollower() {
  stop();
  ::close(stop_fd_);
}

void KernelLogFollower::start() {
  if (thread_.joinable()) throw std::logic_error("kernel log follower already started");
  struct stat st {};
  const bool exists = ::stat(source_.c_str(), &st) == 0;
  if (exists && S_ISCHR(st.st_mode)) {
    const int fd = ::open(source_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + source_);
    if (start_at_ == StartAt::End) ::lseek(fd, 0, SEEK_END);  // /dev/kmsg: after the last record
    thread_ = std::thread(&KernelLogFollower::follow_device, this, fd);
    return;
  }
  const std::int64_t offset = exists && start_at_ == StartAt::End ? st.st_size : 0;
  thread_ = std::thread(&KernelLogFollower::follow_file, this, offset,
                        exists ? static_cast<std::uint64_t>(st.st_ino) : 0);
}

void KernelLogFollower::stop() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

bool KernelLogFollower::wait(int fd, int timeout_ms) {
  pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
  return !(fds[0].revents & POLLIN);
}

void KernelLogFollower::follow_device(int fd) {
  char record[16384];  // a kmsg record is at most about 8 KiB with its dictionary
  while (true) {
    const ssize_t n = ::read(fd, record, sizeof record);
    if (n > 0) {
      std::string_view text(record, static_cast<std::size_t>(n));
      handle_line(text.substr(0, text.find('\n')));  // dictionary lines (" KEY=value") follow
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) {  // overwritten before read: go on from the oldest left
      spdlog::warn("{}: kernel log records were lost before they could be read", source_);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      if (!wait(fd, -1)) break;
      continue;
    }
    spdlog::error("{}: read failed: {}", source_, n < 0 ? std::strerror(errno) : "end of file");
    if (!wait(-1, kErrorPauseMs)) break;
  }
  ::close(fd);
}

void KernelLogFollower::follow_file(std::int64_t offset, std::uint64_t inode) {
  int fd = -1;
  std::string partial;
  char buffer[65536];
  while (true) {
    if (fd < 0) {
      fd = ::open(source_.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st {};
      if (fd >= 0 && ::fstat(fd, &st) == 0) {
        // The file seen at start() goes on where it ended then; any other is new: from its start.
        if (static_cast<std::uint64_t>(st.st_ino) != inode) offset = 0;
        inode = static_cast<std::uint64_t>(st.st_ino);
        ::lseek(fd, offset, SEEK_SET);
      } else if (fd < 0) {
        inode = 0;
        if (!wait(-1, kFilePollMs)) break;
        continue;
      }
    }
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      offset += n;
      partial.append(buffer, static_cast<std::size_t>(n));
      std::size_t begin = 0;
      for (auto end = partial.find('\n'); end != std::string::npos;
           end = partial.find('\n', begin)) {
        handle_line(std::string_view(partial).substr(begin, end - begin));
        begin = end + 1;
      }
      partial.erase(0, begin);
      if (partial.size() > kMaxLine) {
        handle_line(partial);
        partial.clear();
      }
      continue;
    }
    // At the end: the file may have been replaced or truncated meanwhile.
    struct stat now {};
    if (::stat(source_.c_str(), &now) != 0 || static_cast<std::uint64_t>(now.st_ino) != inode) {
      ::close(fd);
      fd = -1;
      inode = 0;  // whatever comes next is a new file
      partial.clear();
      continue;
    }
    if (now.st_size < offset) {
      ::lseek(fd, 0, SEEK_SET);
      offset = 0;
      partial.clear();
      continue;
    }
    if (!wait(-1, kFilePollMs)) break;
  }
  if (fd >= 0) ::close(fd);
}

void KernelLogFollower::handle_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  ++lines_read_;
  auto xid = health::parse_xid_line(line);
  if (!xid) return;
  ++xid_lines_;
  if (!filter_.admit(*xid, steady_ms())) return;
  XidEvent event;
  event.pci = xid->pci_bus;
  event.xid = xid->xid;
  event.action = catalogue_.action(xid->xid);
  event.message = xid->message;
  event.process = xid->process;
  event.kernel_usec = xid->kernel_usec;
  event.line = std::string(line);
  try {
    if (on_xid_) on_xid_(event);
  } catch (const std::exception& e) {
    spdlog::error("the Xid callback threw: {}", e.what());
  }
}

}  // namespace shepherd::agent
