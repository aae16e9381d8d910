#include "agent/task_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include "agent/diagnostic_runner.hpp"

extern char** environ;

namespace shepherd::agent {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct TaskRunner::Running {
  std::string task_id;
  pid_t pid = 0;
  // Under mu_:
  std::optional<Clock::time_point> kill_at;  // stop(): SIGKILL then
  bool stop_requested = false;
  bool killed = false;  // the grace ran out
  bool ended = false;   // the leader has exited; its pid is no longer ours to signal
};

namespace {

constexpr auto kWatchPoll = 100ms;  // how late a SIGKILL after the grace may come
constexpr auto kRecoverPoll = 20ms;
constexpr auto kKillWait = 1s;
constexpr std::size_t kMaxLogRead = 16 << 20;

// glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage, so the system call is made
// directly. -1 on a kernel before 5.3.
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno(errno, "open " + dir);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) throw_errno(error, "fsync " + dir);
}

// The file is either its old content or `content`, after a crash too.
void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(errno, "open " + tmp);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw_errno(error, "write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    throw_errno(error, "fsync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno(errno, "rename " + tmp);
  fsync_dir(fs::path(path).parent_path().string());
}

void remove_file_durably(const std::string& path) {
  std::error_code ec;
  if (fs::remove(path, ec)) fsync_dir(fs::path(path).parent_path().string());
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

struct ProcStat {
  bool found = false;  // (not std::optional: GCC 12 warns falsely on reading one)
  char state = '?';
  std::uint64_t start_time = 0;  // clock ticks after boot
};

// /proc/<pid>/stat: the name (field 2) is in parentheses and may hold anything, so fields are
// counted from the last ')'.
ProcStat read_proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return {};
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(text.substr(close + 1));
  ProcStat st;
  std::string skip;
  fields >> st.state;                           // field 3
  for (int f = 4; f < 22; ++f) fields >> skip;  // fields 4..21
  fields >> st.start_time;                      // field 22
  st.found = static_cast<bool>(fields);
  return st.found ? st : ProcStat{};
}

bool dead(const ProcStat& st, std::uint64_t start_time) {
  return !st.found || st.start_time != start_time || st.state == 'Z' || st.state == 'X';
}

// Waits (reaping it, where it is this process's child) until the process is gone or `until`.
bool wait_gone(pid_t pid, std::uint64_t start_time, Clock::time_point until) {
  while (true) {
    ::waitpid(pid, nullptr, WNOHANG);
    if (dead(read_proc_stat(pid), start_time)) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(kRecoverPoll);
  }
}

TaskResult result_of(const std::string& task_id, int status) {
  TaskResult r;
  r.task_id = task_id;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::vector<std::string> environment_with(const std::map<std::string, std::string>& overlay) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const std::string key(entry.substr(0, entry.find('=')));
    if (!overlay.count(key)) env.emplace_back(entry);
  }
  for (const auto& [key, value] : overlay) env.push_back(key + "=" + value);
  return env;
}

}  // namespace

void to_json(nlohmann::json& j, const TaskResult& r) {
  j = {{"task_id", r.task_id},
       {"exit_code", r.exit_code},
       {"signal", r.signal},
       {"note", r.note},
       {"interrupted", r.interrupted}};
}

void from_json(const nlohmann::json& j, TaskResult& r) {
  r.task_id = j.at("task_id").get<std::string>();
  r.exit_code = j.value("exit_code", 0);
  r.signal = j.value("signal", 0);
  r.note = j.value("note", "");
  r.interrupted = j.value("interrupted", false);
}

bool safe_task_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id == "." || id.find("..") != std::string::npos)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

TaskRunner::TaskRunner(std::string state_dir, ExitCallback on_exit,
                       std::chrono::milliseconds stop_grace)
    : state_dir_(fs::absolute(state_dir).lexically_normal().string()),
      on_exit_(std::move(on_exit)),
      stop_grace_(stop_grace) {
  for (const char* dir : {"tasks", "results", "logs"})
    fs::create_directories(state_dir_ + "/" + dir);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw_errno(errno, "eventfd");
}

TaskRunner::~TaskRunner() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);
  std::map<std::string, std::thread> watchers;
  {
    std::lock_guard lock(mu_);
    watchers.swap(watchers_);
  }
  for (auto& [id, thread] : watchers)
    if (thread.joinable()) thread.join();
  ::close(stop_fd_);
}

std::string TaskRunner::path(const char* dir, const std::string& task_id, const char* ext) const {
  return state_dir_ + "/" + dir + "/" + task_id + ext;
}

std::string TaskRunner::log_path(const std::string& task_id) const {
  return path("logs", task_id, ".log");
}

bool TaskRunner::start(const TaskSpec& spec) {
  const std::string& id = spec.task_id;
  if (!safe_task_id(id)) throw TaskStartError("task id '" + id + "' is not a safe file name");
  if (spec.command.empty() || spec.command[0].empty())
    throw TaskStartError("task " + id + " has no command");
  for (const auto& [key, value] : spec.env)
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos)
      throw TaskStartError("task " + id + ": bad environment variable '" + key + "'");
  join_finished_watchers();

  std::lock_guard lock(mu_);  // one start at a time: a resent start must not race the first
  if (running_.count(id) || ended_.count(id)) return false;
  if (fs::exists(path("results", id, ".json"))) {
    ended_.insert(id);
    return false;
  }
  const std::string record = path("tasks", id, ".json");
  if (fs::exists(record)) {
    spdlog::warn("task {}: a record of an earlier run is in {} (recover() first); not started", id,
                 record);
    return false;
  }
  if (!spec.working_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(spec.working_dir, ec))
      throw TaskStartError("task " + id + ": working directory " + spec.working_dir +
                           " is not a directory");
  }

  // The record comes first: an agent that dies during the spawn still reports the task.
  nlohmann::json doc = {{"task_id", id}, {"job_id", spec.job_id}, {"pid", 0}, {"start_time", 0}};
  write_file_atomic(record, doc.dump());

  const std::string log = log_path(id);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!spec.working_dir.empty())
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // the agent's sockets stay its own
  posix_spawnattr_t attr;
  // pgroup 0: a new group led by the task, so stop() reaches everything it starts.
  init_own_group_spawn(&attr);

  std::vector<char*> argv;
  for (const auto& a : spec.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const auto env_strings = environment_with(spec.env);
  std::vector<char*> envp;
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int rc =
      posix_spawnp(&pid, spec.command[0].c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {  // glibc returns the exec's (or a file action's) error
    remove_file_durably(record);
    throw TaskStartError("task " + id + ": cannot run " + spec.command[0] + ": " +
                         std::strerror(rc));
  }

  auto task = std::make_shared<Running>();
  task->task_id = id;
  task->pid = pid;
  try {
    // Not reaped yet, so /proc/<pid> is there even if the task has already ended.
    const auto st = read_proc_stat(pid);
    doc["pid"] = pid;
    doc["start_time"] = st.start_time;
    write_file_atomic(record, doc.dump());
    running_[id] = task;
    watchers_[id] = std::thread(&TaskRunner::watch, this, task);
  } catch (...) {
    running_.erase(id);
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    remove_file_durably(record);
    throw;
  }
  spdlog::info("task {} (job {}) started: pid {}", id, spec.job_id, pid);
  return true;
}

bool TaskRunner::stop(const std::string& task_id) {
  std::lock_guard lock(mu_);
  const auto it = running_.find(task_id);
  if (it == running_.end() || it->second->ended) return false;
  auto& task = *it->second;
  ::kill(-task.pid, SIGTERM);
  ::kill(-task.pid, SIGCONT);  // a stopped (SIGSTOP) process would hold the TERM until the KILL
  if (!task.stop_requested) {
    task.stop_requested = true;
    task.kill_at = Clock::now() + stop_grace_;
  }
  return true;
}

void TaskRunner::watch(std::shared_ptr<Running> task) {
  const int pidfd = open_pidfd(task->pid);  // -1 on an old kernel: waitid is polled
  while (true) {
    std::chrono::milliseconds wait = kWatchPoll;
    {
      std::lock_guard lock(mu_);
      if (task->kill_at) {
        const auto now = Clock::now();
        if (now >= *task->kill_at) {
          ::kill(-task->pid, SIGKILL);
          task->killed = true;
          task->kill_at.reset();
        } else {
          wait = std::min(
              wait,
              std::chrono::duration_cast<std::chrono::milliseconds>(*task->kill_at - now) + 1ms);
        }
      }
    }
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {pidfd, POLLIN, 0}};
    ::poll(fds, pidfd >= 0 ? 2 : 1, static_cast<int>(wait.count()));
    if (fds[0].revents & POLLIN) break;  // the runner is going away; the task keeps running

    // Seen without reaping: while the leader is a zombie its group id cannot be reused, so the
    // group can still be signalled safely.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(task->pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != task->pid)
      continue;
    ::kill(-task->pid, SIGKILL);  // what the leader left behind
    {
      std::lock_guard lock(mu_);
      task->ended = true;
      running_.erase(task->task_id);
      ended_.insert(task->task_id);
    }
    int status = 0;
    ::waitpid(task->pid, &status, 0);
    finish(task, status);
    break;
  }
  if (pidfd >= 0) ::close(pidfd);
  std::lock_guard lock(mu_);
  finished_watchers_.push_back(task->task_id);
}

void TaskRunner::finish(const std::shared_ptr<Running>& task, int status) {
  TaskResult r = result_of(task->task_id, status);
  {
    std::lock_guard lock(mu_);
    if (task->killed)
      r.note = "stopped: killed after a grace of " + std::to_string(stop_grace_.count()) + " ms";
    else if (task->stop_requested)
      r.note = "stopped";
  }
  spdlog::info("task {} ended: exit code {}, signal {}{}", r.task_id, r.exit_code, r.signal,
               r.note.empty() ? "" : ", " + r.note);
  try {
    write_file_atomic(path("results", r.task_id, ".json"), nlohmann::json(r).dump());
    remove_file_durably(path("tasks", r.task_id, ".json"));
  } catch (const std::exception& e) {
    spdlog::error("task {}: cannot spool its result: {}", r.task_id, e.what());
  }
  try {
    if (on_exit_) on_exit_(r);
  } catch (const std::exception& e) {
    spdlog::error("task {}: the exit callback threw: {}", r.task_id, e.what());
  }
}

void TaskRunner::join_finished_watchers() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    for (const auto& id : finished_watchers_) {
      const auto it = watchers_.find(id);
      if (it == watchers_.end() || it->second.get_id() == std::this_thread::get_id()) continue;
      done.push_back(std::move(it->second));
      watchers_.erase(it);
    }
    finished_watchers_.clear();
  }
  for (auto& t : done) t.join();
}

std::vector<TaskResult> TaskRunner::recover() {
  std::vector<std::string> records;
  for (const auto& entry : fs::directory_iterator(state_dir_ + "/tasks"))
    if (entry.path().extension() == ".json") records.push_back(entry.path().string());
  std::sort(records.begin(), records.end());

  for (const auto& record : records) {
    const std::string id = fs::path(record).stem().string();
    if (fs::exists(path("results", id, ".json"))) {  // ended just before the agent went away
      remove_file_durably(record);
      continue;
    }
    const auto doc = read_json(record);
    const pid_t pid = doc ? doc->value("pid", 0) : 0;
    const std::uint64_t start_time = doc ? doc->value("start_time", std::uint64_t{0}) : 0;
    const ProcStat st = pid > 0 ? read_proc_stat(pid) : ProcStat{};

    TaskResult r;
    r.task_id = id;
    r.interrupted = true;
    if (pid > 0 && !dead(st, start_time)) {
      ::kill(-pid, SIGTERM);
      ::kill(-pid, SIGCONT);
      wait_gone(pid, start_time, Clock::now() + stop_grace_);
      ::kill(-pid, SIGKILL);  // the leader if it is still there, and what it left in its group
      if (!wait_gone(pid, start_time, Clock::now() + kKillWait))
        spdlog::error("task {}: pid {} survives SIGKILL", id, pid);
      r.signal = SIGKILL;
      r.note = "killed: the agent restarted while it ran";
    } else {
      // No process has the pid: a group of that id can only be what the task left behind (Linux
      // keeps a group's id from being reused). A process with the pid is the task's zombie, or
      // someone else's whose group is not touched.
      if (pid > 0 && (!st.found || st.start_time == start_time)) ::kill(-pid, SIGKILL);
      if (pid > 0 && st.found && st.start_time == start_time) ::waitpid(pid, nullptr, WNOHANG);
      r.exit_code = kLostExitCode;
      r.note = "lost: the agent restarted and the task had ended; its exit code is unknown";
    }
    spdlog::warn("task {} (pid {}): {}", id, pid, r.note);
    write_file_atomic(path("results", id, ".json"), nlohmann::json(r).dump());
    remove_file_durably(record);
    std::lock_guard lock(mu_);
    ended_.insert(id);
  }
  return unacked_results();
}

std::vector<TaskResult> TaskRunner::unacked_results() const {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(state_dir_ + "/results"))
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  std::vector<TaskResult> results;
  for (const auto& file : files) {
    const auto doc = read_json(file);
    try {
      if (doc) {
        results.push_back(doc->get<TaskResult>());
        continue;
      }
    } catch (const nlohmann::json::exception&) {
    }
    spdlog::error("unreadable task result {}: left in place", file);
  }
  return results;
}

void TaskRunner::acknowledge(const std::string& task_id) {
  if (!safe_task_id(task_id)) return;
  remove_file_durably(path("results", task_id, ".json"));
  std::lock_guard lock(mu_);
  if (!running_.count(task_id)) ended_.insert(task_id);
}

std::string TaskRunner::read_log(const std::string& task_id, std::uint64_t offset,
                                 std::size_t max_bytes, std::uint64_t* next_offset) const {
  if (next_offset) *next_offset = offset;
  if (!safe_task_id(task_id)) return {};
  const int fd = ::open(log_path(task_id).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string data(std::min(max_bytes, kMaxLogRead), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n =
        ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  if (next_offset) *next_offset = offset + got;
  return data;
}

bool TaskRunner::running(const std::string& task_id) const {
  std::lock_guard lock(mu_);
  return running_.count(task_id) > 0;
}

}  // namespace shepherd::agent
