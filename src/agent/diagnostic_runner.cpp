#include "agent/diagnostic_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <thread>

#include "common/clock.hpp"

extern char** environ;

namespace shepherd::agent {

void init_own_group_spawn(posix_spawnattr_t* attr) {
  posix_spawnattr_init(attr);
  posix_spawnattr_setflags(attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(attr, 0);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(attr, &defaults);
}
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kKillGrace = 2s;  // SIGTERM at the deadline, SIGKILL this much later
constexpr auto kDrain = 1s;      // after the exit: output still in the pipes, or a straggler's
constexpr auto kKillWait = 5s;   // after SIGKILL: a process stuck in the kernel is left behind
constexpr auto kNoPidfdPoll = 50ms;

// glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage, so the system call is made
// directly. -1 on a kernel before 5.3.
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  // Only the agent's end is non-blocking; the command gets ordinary blocking pipes.
  ::fcntl(fds[1], F_SETFL, 0);
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

// Reads what is there; false at end of file or on an error.
bool drain(int fd, std::string& into, std::size_t limit, bool* truncated) {
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      const std::size_t room = limit - std::min(limit, into.size());
      into.append(buffer, std::min(room, static_cast<std::size_t>(n)));
      if (static_cast<std::size_t>(n) > room && truncated) *truncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

std::string one_line(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  s.remove_prefix(first);
  s = s.substr(0, s.find('\n'));
  std::string line(s);
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// At most `limit` bytes, not cutting a UTF-8 sequence.
void cut(std::string& s, std::size_t limit) {
  if (s.size() <= limit) return;
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

}  // namespace

CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           std::size_t max_output, std::size_t max_error) {
  CommandOutcome o;
  if (argv.empty() || argv[0].empty()) {
    o.not_found = true;
    o.exit_code = 127;
    o.err = "empty command";
    return o;
  }
  Fd out_r, out_w, err_r, err_w;
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  // A group of its own, so a timeout stops whatever it started.
  init_own_group_spawn(&attr);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out_w.reset();
  err_w.reset();
  if (rc != 0) {
    // glibc reports a failed exec as the return value.
    o.not_found = rc == ENOENT || rc == ENOTDIR;
    o.exit_code = o.not_found ? 127 : 126;
    o.err = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return o;
  }

  const Fd pidfd(open_pidfd(pid));  // -1 on an old kernel: waitpid is polled instead
  const auto clamped = std::clamp(timeout, std::chrono::milliseconds(0),
                                  std::chrono::milliseconds(shepherd::seconds(kMaxSeconds)));
  const auto deadline = Clock::now() + clamped;
  std::optional<Clock::time_point> kill_at, given_up_at, drain_until;
  bool exited = false, out_open = true, err_open = true;
  int status = 0;
  while (true) {
    const auto now = Clock::now();
    if (!exited) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        exited = true;
        drain_until = now + kDrain;
      }
    }
    if (exited && ((!out_open && !err_open) || now >= *drain_until)) break;
    if (!exited && !o.timed_out && now >= deadline) {
      o.timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_at = now + kKillGrace;
    }
    if (!exited && kill_at && now >= *kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at.reset();
      given_up_at = now + kKillWait;
    }
    if (!exited && given_up_at && now >= *given_up_at) {
      // Stuck in the kernel (a hung GPU): reaped whenever it ends, by a thread that owns nothing.
      std::thread([pid] { ::waitpid(pid, nullptr, 0); }).detach();
      o.exit_code = 128 + SIGKILL;
      o.signal = SIGKILL;
      return o;
    }

    const auto wake = exited        ? *drain_until
                      : kill_at     ? *kill_at
                      : given_up_at ? *given_up_at
                                    : deadline;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now) + 1ms;
    if (!exited && pidfd.get() < 0) wait = std::min<std::chrono::milliseconds>(wait, kNoPidfdPoll);
    wait = std::clamp<std::chrono::milliseconds>(wait, 0ms, 1000ms);

    pollfd fds[3];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_open) fds[n++] = {err_r.get(), POLLIN, 0};
    if (!exited && pidfd.get() >= 0) fds[n++] = {pidfd.get(), POLLIN, 0};
    if (::poll(fds, n, static_cast<int>(wait.count())) < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "poll");
    if (out_open) out_open = drain(out_r.get(), o.out, max_output, &o.out_truncated);
    if (err_open) err_open = drain(err_r.get(), o.err, max_error, nullptr);
  }
  if (WIFEXITED(status)) {
    o.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
    o.exit_code = 128 + o.signal;
  }
  return o;
}

std::vector<std::string> diag_argv(const std::vector<std::string>& command_template, int level) {
  static constexpr std::string_view kPlaceholder = "{level}";
  const std::string value = std::to_string(level);
  std::vector<std::string> argv;
  for (std::string word : command_template) {
    for (auto at = word.find(kPlaceholder); at != std::string::npos;
         at = word.find(kPlaceholder, at + value.size()))
      word.replace(at, kPlaceholder.size(), value);
    argv.push_back(std::move(word));
  }
  return argv;
}

health::DiagReport run_diagnostic(const std::vector<std::string>& command_template, int level,
                                  double timeout_seconds) {
  const auto argv = diag_argv(command_template, level);
  const auto timeout = std::chrono::milliseconds(shepherd::seconds(std::max(0.0, timeout_seconds)));
  const CommandOutcome o = run_command(argv, timeout);
  if (o.not_found) return health::diag_command_missing(argv.empty() ? "" : argv[0]);
  if (o.timed_out) return health::diag_timed_out(timeout_seconds);
  health::DiagReport report = health::parse_dcgm_diag(o.out, o.exit_code);
  if (report.verdict == Verdict::Inconclusive) {
    if (const std::string line = one_line(o.err); !line.empty()) {
      report.detail += " (stderr: " + line + ")";
      cut(report.detail, health::kMaxDetail);
    }
  }
  return report;
}

}  // namespace shepherd::agent
