// The runtime killed between commit and dispatch, and between dispatch and acknowledgement, then
// started again on the same SQLite file: the recovery finishes exactly once.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "notify/sinks.hpp"
#include "runtime/runtime.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd {
namespace {

struct SimulatedCrash {};

// The node side: outlives the controller's crashes and, like a real agent, does an action id once.
struct NodeSide final : ImmediateClusterDriver {
  void carry_out(const Action& a) override {
    ++received[a.kind];
    if (seen.insert(a.id).second) ++carried_out[a.kind];
  }
  std::map<ActionKind, int> received, carried_out;
  std::set<std::string> seen;
};

class Controller {
 public:
  Controller(const std::string& path, NodeSide& nodes, std::function<void(CrashPoint)> crash)
      : store_(path), notifier_(std::vector<std::shared_ptr<NotificationSink>>{}) {
    RuntimeHooks hooks;
    hooks.crash_point = std::move(crash);
    runtime_ = std::make_unique<Runtime>(store_, nodes, notifier_, Engine(Policy{}), hooks);
    runtime_->start();
  }
  Runtime& rt() { return *runtime_; }

 private:
  SqliteStore store_;
  FanoutNotifier notifier_;
  std::unique_ptr<Runtime> runtime_;
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shepherd-crash-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Controller> boot(std::function<void(CrashPoint)> crash = {}) {
    return std::make_unique<Controller>(path_, nodes_, std::move(crash));
  }
  // Sends one event and delivers what it implies; a crash propagates as SimulatedCrash.
  void send(Controller& c, EventBody body) {
    c.rt().apply(Event{"ev" + std::to_string(++seq_), ++now_, std::move(body)});
    c.rt().dispatch(now_);
  }
  // Runs a 2-node job to the point where node-1's diagnostic is about to report a GPU fault.
  void run_until_fault(Controller& c) {
    send(c, NodeRegistered{"node-1", "boot-a", "10.0.0.1", "", 8, {}, {}});
    send(c, NodeRegistered{"node-2", "boot-a", "10.0.0.2", "", 8, {}, {}});
    send(c, JobSubmitted{"train", {"node-1", "node-2"}, 0, {}});
    send(c, TaskStarted{"train.0.0", {}});
    send(c, TaskStarted{"train.0.1", {}});
    send(c, TaskExited{"train.0.0", 1, 0, {}, false});
    diag_op_ = c.rt().state().node("node-1")->operation_id;
    send(c, DiagnosticStarted{"node-1", diag_op_});
  }
  void finish_recovery(Controller& c) {
    send(c, NodeRegistered{"node-1", "boot-b", "", "", 0, {}, {}});
    send(c, TaskStarted{"train.1.0", {}});
    send(c, TaskStarted{"train.1.1", {}});
  }
  void expect_recovered_once(Controller& c) {
    const Job* job = c.rt().state().job("train");
    ASSERT_NE(job, nullptr);
    EXPECT_EQ(job->status, JobStatus::InProgress);
    EXPECT_EQ(job->attempt, 1);
    EXPECT_EQ(nodes_.carried_out[ActionKind::Reboot], 1) << "no lost reboot, no double reboot";
    EXPECT_EQ(nodes_.carried_out[ActionKind::StartTask], 4) << "2 first starts + 2 restarts";
    EXPECT_EQ(nodes_.carried_out[ActionKind::RunDiagnostic], 1);
  }

  std::filesystem::path dir_;
  std::string path_;
  NodeSide nodes_;
  std::string diag_op_;
  int seq_ = 0;
  TimeMs now_ = 0;
};

TEST_F(CrashTest, BetweenCommitAndDispatchTheRebootIsSentAfterRestart) {
  bool armed = false;
  auto first = boot([&](CrashPoint p) {
    if (armed && p == CrashPoint::AfterCommit) throw SimulatedCrash{};
  });
  run_until_fault(*first);
  armed = true;
  EXPECT_THROW(send(*first, DiagnosticFinished{"node-1", diag_op_, Verdict::Fail, "gpu 0", {}}),
               SimulatedCrash);
  EXPECT_EQ(nodes_.received[ActionKind::Reboot], 0);  // committed, never sent
  first.reset();                                      // the process is gone

  auto second = boot();
  EXPECT_EQ(second->rt().state().job("train")->status, JobStatus::PendingRestart);
  second->rt().dispatch(now_);
  EXPECT_EQ(nodes_.received[ActionKind::Reboot], 1);
  second->rt().dispatch(now_);  // nothing left pending
  EXPECT_EQ(nodes_.received[ActionKind::Reboot], 1);
  finish_recovery(*second);
  expect_recovered_once(*second);
}

TEST_F(CrashTest, BetweenDispatchAndAcknowledgementTheRepeatIsHarmless) {
  bool armed = false;
  auto first = boot([&](CrashPoint p) {
    if (armed && p == CrashPoint::AfterDeliver) throw SimulatedCrash{};
  });
  run_until_fault(*first);
  armed = true;
  EXPECT_THROW(send(*first, DiagnosticFinished{"node-1", diag_op_, Verdict::Fail, "gpu 0", {}}),
               SimulatedCrash);
  EXPECT_EQ(nodes_.carried_out[ActionKind::Reboot], 1);  // delivered, not acknowledged
  first.reset();

  auto second = boot();
  second->rt().dispatch(now_);
  EXPECT_EQ(nodes_.received[ActionKind::Reboot], 2);     // sent again after the crash...
  EXPECT_EQ(nodes_.carried_out[ActionKind::Reboot], 1);  // ...and recognised by its id
  finish_recovery(*second);
  expect_recovered_once(*second);
}

TEST_F(CrashTest, DuringTheRestartNoTaskStartsTwice) {
  bool armed = false;
  auto first = boot([&](CrashPoint p) {
    if (armed && p == CrashPoint::AfterDeliver) throw SimulatedCrash{};
  });
  run_until_fault(*first);
  send(*first, DiagnosticFinished{"node-1", diag_op_, Verdict::Fail, "gpu 0", {}});
  armed = true;  // dies after delivering the first restarted task's start
  EXPECT_THROW(send(*first, NodeRegistered{"node-1", "boot-b", "", "", 0, {}, {}}), SimulatedCrash);
  first.reset();

  auto second = boot();
  EXPECT_EQ(second->rt().state().job("train")->status, JobStatus::Restarting);
  second->rt().dispatch(now_);
  // The node that was rebooted re-registers again after our restart: not a second reboot.
  send(*second, NodeRegistered{"node-1", "boot-b", "", "", 0, {}, {}});
  send(*second, TaskStarted{"train.1.0", {}});
  send(*second, TaskStarted{"train.1.1", {}});
  expect_recovered_once(*second);
}

TEST_F(CrashTest, DuplicateEventAfterRestartIsRecognised) {
  auto first = boot();
  run_until_fault(*first);
  first.reset();
  auto second = boot();
  // ev6 was the task's exit 1: replayed by an agent after the controller restarted.
  Outcome o = second->rt().apply(Event{"ev6", now_, TaskExited{"train.0.0", 1, 0, {}, false}});
  EXPECT_TRUE(o.duplicate);
  EXPECT_EQ(second->rt().counters().duplicates, 1u);
  EXPECT_EQ(nodes_.carried_out[ActionKind::RunDiagnostic], 1);
}

}  // namespace
}  // namespace shepherd
