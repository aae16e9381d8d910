// TaskRunner on real processes and files: what a task sees, what its end reports, stopping a
// process group, the spool across runners, and recovery after an agent restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "agent/task_runner.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using shepherd::test::TempDir;

// Results as on_exit reports them.
class Results {
 public:
  TaskRunner::ExitCallback callback() {
    return [this](const TaskResult& r) {
      std::lock_guard lock(mu_);
      results_[r.task_id] = r;
      cv_.notify_all();
    };
  }
  std::optional<TaskResult> wait(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return results_.count(id) > 0; })) return std::nullopt;
    return results_.at(id);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, TaskResult> results_;
};

using shepherd::test::read_file;

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Running: there and not a zombie (an orphan's zombie may wait for a busy init).
bool alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  return stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

pid_t pid_in_file(const std::string& path) {
  pid_t pid = 0;
  EXPECT_TRUE(eventually([&] {
    std::ifstream in(path);
    return static_cast<bool>(in >> pid) && pid > 0;
  })) << path;
  return pid;
}

pid_t recorded_pid(const TempDir& dir, const std::string& id) {
  const auto doc = nlohmann::json::parse(read_file(dir / ("tasks/" + id + ".json")));
  EXPECT_GT(doc.at("start_time").get<std::uint64_t>(), 0u);
  EXPECT_EQ(doc.at("task_id"), id);
  return doc.at("pid").get<pid_t>();
}

TaskSpec sh(const std::string& id, const std::string& script) {
  TaskSpec spec;
  spec.task_id = id;
  spec.job_id = "job-1";
  spec.command = {"sh", "-c", script};
  return spec;
}

TEST(TaskRunner, PassesEnvironmentAndWorkingDirectory) {
  TempDir dir;
  fs::create_directories(dir / "work");
  ::setenv("SHEPHERD_AGENT_TEST_KEPT", "from-agent", 1);
  ::setenv("SHEPHERD_AGENT_TEST_OVERRIDDEN", "from-agent", 1);
  Results results;
  TaskRunner runner(dir / "state", results.callback());
  auto spec = sh("t1",
                 "echo \"$FOO $SHEPHERD_X $SHEPHERD_AGENT_TEST_KEPT "
                 "$SHEPHERD_AGENT_TEST_OVERRIDDEN\" > out; pwd >> out; echo to-log; "
                 "echo err-to-log >&2");
  spec.env = {{"FOO", "bar"}, {"SHEPHERD_X", "42"}, {"SHEPHERD_AGENT_TEST_OVERRIDDEN", "task"}};
  spec.working_dir = dir / "work";
  ASSERT_TRUE(runner.start(spec));
  const auto r = results.wait("t1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->signal, 0);
  EXPECT_EQ(read_file(dir / "work/out"),
            "bar 42 from-agent task\n" + fs::canonical(dir / "work").string() + "\n");
  EXPECT_EQ(read_file(runner.log_path("t1")), "to-log\nerr-to-log\n");
  EXPECT_EQ(runner.log_path("t1"), fs::absolute(dir / "state/logs/t1.log").string());
}

TEST(TaskRunner, ReportsExitCodeAndSpoolsTheResult) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  ASSERT_TRUE(runner.start(sh("t-exit", "exit 3")));
  const auto r = results.wait("t-exit");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (TaskResult{"t-exit", 3, 0, ""}));
  EXPECT_FALSE(runner.running("t-exit"));
  EXPECT_FALSE(fs::exists(dir / "tasks/t-exit.json"));
  EXPECT_EQ(runner.unacked_results(), std::vector<TaskResult>{*r});
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "results/t-exit.json")).get<TaskResult>(), *r);
  EXPECT_FALSE(runner.stop("t-exit"));
}

TEST(TaskRunner, StopReportsTheSignal) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  TaskSpec spec{"t-sleep", "job-1", {"sleep", "100"}, {}, ""};
  ASSERT_TRUE(runner.start(spec));
  EXPECT_TRUE(runner.running("t-sleep"));
  const pid_t pid = recorded_pid(dir, "t-sleep");
  EXPECT_TRUE(runner.stop("t-sleep"));
  const auto r = results.wait("t-sleep");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->signal, SIGTERM);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->note, "stopped");
  EXPECT_FALSE(alive(pid));
  EXPECT_FALSE(runner.stop("t-sleep"));
  EXPECT_FALSE(runner.stop("never-started"));
}

TEST(TaskRunner, StopKillsTheWholeProcessGroup) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  auto spec = sh("t-group", "sleep 100 & echo $! > bg.pid; sleep 100; wait");
  spec.working_dir = dir.path();
  ASSERT_TRUE(runner.start(spec));
  const pid_t leader = recorded_pid(dir, "t-group");
  const pid_t background = pid_in_file(dir / "bg.pid");
  ASSERT_TRUE(alive(background));
  EXPECT_EQ(::getpgid(background), leader);  // the task leads a group of its own
  EXPECT_TRUE(runner.stop("t-group"));
  ASSERT_TRUE(results.wait("t-group"));
  EXPECT_TRUE(eventually([&] { return !alive(background); }));
  EXPECT_FALSE(alive(leader));
}

TEST(TaskRunner, KillsWhatTheLeaderLeftBehindWhenItExits) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  auto spec = sh("t-orphan", "sleep 100 & echo $! > bg.pid; exit 0");
  spec.working_dir = dir.path();
  ASSERT_TRUE(runner.start(spec));
  const auto r = results.wait("t-orphan");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 0);
  const pid_t background = pid_in_file(dir / "bg.pid");
  EXPECT_TRUE(eventually([&] { return !alive(background); }));
}

TEST(TaskRunner, TermIgnoredGetsKillAfterTheGrace) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback(), 300ms);
  auto spec = sh("t-trap", "trap '' TERM; touch ready; sleep 100");
  spec.working_dir = dir.path();
  ASSERT_TRUE(runner.start(spec));
  ASSERT_TRUE(eventually([&] { return fs::exists(dir / "ready"); }));
  const auto stopped_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(runner.stop("t-trap"));
  EXPECT_TRUE(runner.stop("t-trap"));  // again: the grace is not extended
  const auto r = results.wait("t-trap");
  ASSERT_TRUE(r);
  EXPECT_GE(std::chrono::steady_clock::now() - stopped_at, 300ms);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->note, "stopped: killed after a grace of 300 ms");
}

TEST(TaskRunner, RefusesWhatCannotStart) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  TaskSpec missing{"t-missing", "job-1", {"shepherd-no-such-command"}, {}, ""};
  EXPECT_THROW(runner.start(missing), TaskStartError);
  EXPECT_FALSE(runner.running("t-missing"));
  EXPECT_FALSE(fs::exists(dir / "tasks/t-missing.json"));

  std::ofstream(dir / "not-executable") << "#!/bin/sh\nexit 0\n";
  TaskSpec not_executable{"t-noexec", "job-1", {dir / "not-executable"}, {}, ""};
  try {
    runner.start(not_executable);
    ADD_FAILURE() << "started";
  } catch (const TaskStartError& e) {
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }

  auto bad_dir = sh("t-baddir", "exit 0");
  bad_dir.working_dir = dir / "no-such-dir";
  EXPECT_THROW(runner.start(bad_dir), TaskStartError);
  EXPECT_THROW(runner.start(TaskSpec{"t-empty", "job-1", {}, {}, ""}), TaskStartError);
  auto bad_env = sh("t-badenv", "exit 0");
  bad_env.env = {{"A=B", "c"}};
  EXPECT_THROW(runner.start(bad_env), TaskStartError);
  EXPECT_TRUE(fs::is_empty(dir / "tasks"));
  EXPECT_TRUE(runner.unacked_results().empty());
}

TEST(TaskRunner, RefusesUnsafeTaskIds) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  for (const std::string& id : std::vector<std::string>{
           "", ".", "..", "../escape", "a/b", "a..b", "a b", "a\nb", "é", std::string(201, 'a')}) {
    EXPECT_FALSE(safe_task_id(id)) << id;
    EXPECT_THROW(runner.start(sh(id, "touch " + dir.path() + "/ran")), TaskStartError) << id;
  }
  EXPECT_FALSE(fs::exists(dir / "ran"));
  EXPECT_TRUE(safe_task_id("job-1:task.0_A"));
  EXPECT_TRUE(safe_task_id(std::string(200, 'a')));
}

TEST(TaskRunner, StartIsIdempotent) {
  TempDir dir;
  Results results;
  {
    TaskRunner runner(dir.path(), results.callback());
    auto spec = sh("t-once", "echo ran >> count; sleep 100");
    spec.working_dir = dir.path();
    ASSERT_TRUE(runner.start(spec));
    EXPECT_FALSE(runner.start(spec));  // running
    ASSERT_TRUE(eventually([&] { return read_file(dir / "count") == "ran\n"; }));
    ASSERT_TRUE(runner.stop("t-once"));
    ASSERT_TRUE(results.wait("t-once"));
    EXPECT_FALSE(runner.start(spec));  // ended, result spooled
    runner.acknowledge("t-once");
    EXPECT_FALSE(runner.start(spec));  // ended and acknowledged, in this runner's life
    EXPECT_EQ(read_file(dir / "count"), "ran\n");
  }
  auto spec = sh("t-spooled", "exit 0");
  {
    TaskRunner runner(dir.path(), results.callback());
    ASSERT_TRUE(runner.start(spec));
    ASSERT_TRUE(results.wait("t-spooled"));
  }
  TaskRunner next(dir.path(), results.callback());
  EXPECT_FALSE(next.start(spec));  // its result is still in the spool
}

TEST(TaskRunner, TheSpoolSurvivesANewRunnerUntilAcknowledged) {
  TempDir dir;
  Results results;
  {
    TaskRunner runner(dir.path(), results.callback());
    ASSERT_TRUE(runner.start(sh("t-a", "exit 3")));
    ASSERT_TRUE(runner.start(sh("t-b", "exit 0")));
    ASSERT_TRUE(results.wait("t-a"));
    ASSERT_TRUE(results.wait("t-b"));
  }
  const std::vector<TaskResult> both = {{"t-a", 3, 0, ""}, {"t-b", 0, 0, ""}};
  {
    TaskRunner runner(dir.path(), results.callback());
    EXPECT_EQ(runner.recover(), both);
    EXPECT_EQ(runner.unacked_results(), both);
    runner.acknowledge("t-a");
    runner.acknowledge("t-unknown");  // harmless
    runner.acknowledge("../t-b");     // not a task id: nothing removed
    EXPECT_EQ(runner.unacked_results(), std::vector<TaskResult>{both[1]});
  }
  TaskRunner runner(dir.path(), results.callback());
  EXPECT_EQ(runner.recover(), std::vector<TaskResult>{both[1]});
  runner.acknowledge("t-b");
  EXPECT_TRUE(runner.unacked_results().empty());
}

TEST(TaskRunner, RecoverKillsATaskLeftRunningByTheLastRunner) {
  TempDir dir;
  Results results;
  pid_t leader = 0;
  pid_t background = 0;
  {
    TaskRunner runner(dir.path(), results.callback());
    auto spec = sh("t-left", "sleep 100 & echo $! > bg.pid; wait");
    spec.working_dir = dir.path();
    ASSERT_TRUE(runner.start(spec));
    leader = recorded_pid(dir, "t-left");
    background = pid_in_file(dir / "bg.pid");
  }  // destroyed without a stop: the agent went away
  ASSERT_TRUE(alive(leader));
  ASSERT_TRUE(alive(background));
  EXPECT_FALSE(results.wait("t-left", 200ms));

  TaskRunner runner(dir.path(), results.callback(), 500ms);
  const auto recovered = runner.recover();
  EXPECT_EQ(recovered,
            (std::vector<TaskResult>{
                {"t-left", 0, SIGKILL, "killed: the agent restarted while it ran", true}}));
  EXPECT_FALSE(alive(leader));
  EXPECT_TRUE(eventually([&] { return !alive(background); }));
  EXPECT_FALSE(fs::exists(dir / "tasks/t-left.json"));
  EXPECT_FALSE(runner.start(sh("t-left", "exit 0")));  // a resent start does not run it again
  EXPECT_FALSE(results.wait("t-left", 100ms));         // reported by recover(), not on_exit
}

TEST(TaskRunner, RecoverReportsATaskThatEndedUnwatchedAsLost) {
  TempDir dir;
  Results results;
  pid_t pid = 0;
  {
    TaskRunner runner(dir.path(), results.callback());
    ASSERT_TRUE(runner.start(TaskSpec{"t-gone", "job-1", {"sleep", "0.3"}, {}, ""}));
    pid = recorded_pid(dir, "t-gone");
  }
  ASSERT_TRUE(eventually([&] { return !alive(pid); }));
  TaskRunner runner(dir.path(), results.callback());
  EXPECT_EQ(
      runner.recover(),
      (std::vector<TaskResult>{
          {"t-gone", kLostExitCode, 0,
           "lost: the agent restarted and the task had ended; its exit code is unknown", true}}));
  ::waitpid(pid, nullptr, WNOHANG);  // (this test process is its parent)

  // A record whose pid is now someone else's: that process is left alone.
  nlohmann::json other = {
      {"task_id", "t-reused"}, {"job_id", "j"}, {"pid", ::getpid()}, {"start_time", 1}};
  std::ofstream(dir / "tasks/t-reused.json") << other.dump();
  std::ofstream(dir / "tasks/t-garbled.json") << "{not json";
  const auto recovered = runner.recover();
  ASSERT_EQ(recovered.size(), 3u);
  EXPECT_EQ(recovered[0].task_id, "t-garbled");
  EXPECT_EQ(recovered[0].exit_code, kLostExitCode);
  EXPECT_EQ(recovered[2].task_id, "t-reused");
  EXPECT_EQ(recovered[2].exit_code, kLostExitCode);
  EXPECT_TRUE(fs::is_empty(dir / "tasks"));
}

TEST(TaskRunner, ReadsTheLogInPieces) {
  TempDir dir;
  Results results;
  TaskRunner runner(dir.path(), results.callback());
  ASSERT_TRUE(runner.start(sh("t-log", "printf hello; printf world >&2")));
  ASSERT_TRUE(results.wait("t-log"));
  std::uint64_t next = 0;
  EXPECT_EQ(runner.read_log("t-log", 0, 5, &next), "hello");
  EXPECT_EQ(next, 5u);
  EXPECT_EQ(runner.read_log("t-log", next, 100, &next), "world");
  EXPECT_EQ(next, 10u);
  EXPECT_EQ(runner.read_log("t-log", next, 100, &next), "");
  EXPECT_EQ(next, 10u);
  EXPECT_EQ(runner.read_log("t-none", 7, 100, &next), "");
  EXPECT_EQ(next, 7u);
  EXPECT_EQ(runner.read_log("../t-log", 0, 100, &next), "");
}

TEST(TaskRunner, TheExitCallbackMayCallTheRunner) {
  TempDir dir;
  Results results;
  std::unique_ptr<TaskRunner> runner;
  runner = std::make_unique<TaskRunner>(dir.path(), [&](const TaskResult& r) {
    if (r.task_id == "first") runner->start(sh("second", "exit 4"));
    results.callback()(r);
  });
  ASSERT_TRUE(runner->start(sh("first", "exit 0")));
  const auto second = results.wait("second");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->exit_code, 4);
  ASSERT_TRUE(runner->start(sh("third", "exit 0")));  // joins the finished watchers
  ASSERT_TRUE(results.wait("third"));
}

TEST(TaskResult, JsonRoundTrip) {
  const TaskResult r{"t", 0, 9, "why", true};
  const nlohmann::json j = r;
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"({"task_id":"t","exit_code":0,"signal":9,"note":"why","interrupted":true})"));
  EXPECT_EQ(j.get<TaskResult>(), r);
  // A result spooled by an older agent (no "interrupted") reads as not interrupted.
  EXPECT_EQ(nlohmann::json::parse(R"({"task_id":"t"})").get<TaskResult>(),
            (TaskResult{"t", 0, 0, "", false}));
  EXPECT_THROW(nlohmann::json::parse(R"({"exit_code":1})").get<TaskResult>(),
               nlohmann::json::exception);
}

}  // namespace
}  // namespace shepherd::agent
