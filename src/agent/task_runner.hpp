#pragma once
// Runs training tasks as process groups and keeps their results until the server has them.
//
// State under `state_dir` (the only memory that outlives the agent):
//   tasks/<id>.json    {task_id, job_id, pid, start_time}: a task this agent started and has not
//                      seen end. start_time is field 22 of /proc/<pid>/stat, so a pid reused by
//                      another process is never mistaken for the task.
//   results/<id>.json  TaskResult: the spool, kept across server outages and agent restarts
//                      until acknowledge(id).
//   logs/<id>.log      the task's stdout and stderr, appended to; never removed here.
// Each file is written whole (temp file, fsync, rename, fsync of the directory).
//
// A task is a process group of its own (its leader is the command), so a stop reaches torchrun's
// workers too. When the leader ends, whatever it left running in its group is killed with
// SIGKILL: a leftover worker would hold the GPUs of the next attempt. A process that leaves the
// group (setsid, setpgid) is not followed.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace shepherd::agent {

struct TaskSpec {
  std::string task_id, job_id;
  std::vector<std::string> command;        // argv; argv[0] is looked up on PATH
  std::map<std::string, std::string> env;  // over the agent's own environment
  std::string working_dir;                 // "" for the agent's own
};

struct TaskResult {
  std::string task_id;
  int exit_code = 0;         // 0 when a signal ended it
  int signal = 0;            // the signal that ended it, 0 when it exited
  std::string note;          // why, when the agent stopped it or lost track of it
  bool interrupted = false;  // ended (or found ended) by recover(): no fault of the task's code
  bool operator==(const TaskResult&) const = default;
};
void to_json(nlohmann::json& j, const TaskResult& r);
void from_json(const nlohmann::json& j, TaskResult& r);  // throws nlohmann::json::exception

// The task cannot be started and never will be (a bad id, a command not found or not
// executable, a missing working directory): a permanent failure for the caller.
class TaskStartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// [A-Za-z0-9._:-]{1,200}, and neither "." nor containing "..": usable as a file name.
bool safe_task_id(const std::string& id);

inline constexpr int kLostExitCode = 255;

class TaskRunner {
 public:
  using ExitCallback = std::function<void(const TaskResult&)>;

  // Creates the state directories (std::filesystem::filesystem_error when it cannot). on_exit is
  // called on the task's watcher thread once its result is spooled, for several tasks at once
  // possibly; it may call back into the runner.
  TaskRunner(std::string state_dir, ExitCallback on_exit,
             std::chrono::milliseconds stop_grace = std::chrono::seconds(10));
  // Stops watching and leaves the tasks running: their records stay in tasks/, and the next
  // runner's recover() kills them. Waits for on_exit calls in progress.
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // Starts the task; false (and nothing done) when this task id is running or has ended (its
  // result spooled, or acknowledged during this runner's life): the server may send a start
  // again. Also false, with a warning, while a record of an earlier agent's run is in tasks/
  // (recover() not called). Throws TaskStartError; std::system_error when the state directory
  // cannot be written.
  bool start(const TaskSpec& spec);

  // SIGTERM to the task's group now, SIGKILL stop_grace later if the leader has not ended.
  // Returns at once (the result comes through on_exit); false when the task is not running.
  bool stop(const std::string& task_id);

  // Call once, before any start(). Each task of tasks/ without a result was running when the
  // agent went away; its attempt is over (the server restarts it as a new one), and it must not
  // run beside the next attempt. So:
  //  - still running (same pid and start time): its group gets SIGTERM, SIGKILL after stop_grace;
  //    result {signal 9, note "killed: the agent restarted while it ran"};
  //  - gone: its exit status is lost; what is left of its group is killed; result {exit_code 255,
  //    note "lost: the agent restarted and the task had ended; its exit code is unknown"}.
  // Returns every result not yet acknowledged (these and the older ones), for the caller to send.
  std::vector<TaskResult> recover();

  std::vector<TaskResult> unacked_results() const;  // in task id order
  void acknowledge(const std::string& task_id);     // the server has it: dropped from the spool

  std::string log_path(const std::string& task_id) const;
  // Up to max_bytes (at most 16 MiB) of the log from offset; *next_offset is where the next read
  // starts. "" (and next_offset = offset) when there is nothing more or no log.
  std::string read_log(const std::string& task_id, std::uint64_t offset, std::size_t max_bytes,
                       std::uint64_t* next_offset) const;
  bool running(const std::string& task_id) const;

 private:
  struct Running;
  void watch(std::shared_ptr<Running> task);
  void finish(const std::shared_ptr<Running>& task, int status);
  void join_finished_watchers();
  std::string path(const char* dir, const std::string& task_id, const char* ext) const;

  std::string state_dir_;
  ExitCallback on_exit_;
  std::chrono::milliseconds stop_grace_;
  int stop_fd_ = -1;  // an eventfd, readable once the runner is going away

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Running>> running_;
  std::set<std::string> ended_;  // ended during this runner's life, acknowledged or not
  std::map<std::string, std::thread> watchers_;
  std::vector<std::string> finished_watchers_;  // returned or about to: join them
};

}  // namespace shepherd::agent
