// The runtime's outbox: what flush() commits is delivered from memory, in order; a failed
// delivery waits out its backoff and is tried again; what is owed survives a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "notify/sinks.hpp"
#include "runtime/runtime.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd {
namespace {

struct FlakyDriver final : ImmediateClusterDriver {
  void carry_out(const Action& a) override {
    tried.push_back(a.id);
    if (refuse == a.id) throw PermanentDeliveryError("payload refused");
    if (buggy) throw std::logic_error("driver bug");
    if (down) throw DeliveryError("node agent unreachable");
    delivered.push_back(a.id);
  }
  bool down = false, buggy = false;
  std::string refuse;  // this action id fails permanently
  std::vector<std::string> tried, delivered;
};

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shepherd-outbox-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    boot();
  }
  void TearDown() override {
    runtime_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void boot() {
    runtime_.reset();
    store_ = std::make_unique<SqliteStore>((dir_ / "state.db").string());
    runtime_ = std::make_unique<Runtime>(*store_, driver_, notifier_, Engine(Policy{}));
    runtime_->start();
  }
  void send(const std::string& key, TimeMs at, EventBody body) {
    runtime_->enqueue(Event{key, at, std::move(body)});
    runtime_->flush();
  }
  void submit_two_node_job() {
    send("n1", 0, NodeRegistered{"node-1", "boot-a", "10.0.0.1", "mlx5_0", 8, {}, {}});
    send("n2", 0, NodeRegistered{"node-2", "boot-a", "10.0.0.2", "mlx5_0", 8, {}, {}});
    TaskDefinition def;
    def.command = {"python", "train.py"};
    send("submit", 0, JobSubmitted{"train", {"node-1", "node-2"}, 0, def});
  }
  std::vector<PendingAction> stored_pending() {
    return store_->pending_actions(std::numeric_limits<TimeMs>::max(), 100);
  }

  std::filesystem::path dir_;
  FlakyDriver driver_;
  FanoutNotifier notifier_{std::vector<std::shared_ptr<NotificationSink>>{}};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(OutboxTest, CommittedActionsAreDeliveredInOrderAndMarkedDone) {
  submit_two_node_job();
  EXPECT_EQ(runtime_->undelivered(), 2u);
  EXPECT_EQ(stored_pending().size(), 2u);
  EXPECT_EQ(runtime_->dispatch(0), 2u);
  EXPECT_EQ(driver_.delivered, (std::vector<std::string>{"submit/0", "submit/1"}));
  EXPECT_EQ(runtime_->undelivered(), 0u);
  EXPECT_EQ(runtime_->dispatch(0), 0u);  // nothing twice
  // Marked done with the next commit: here, one with nothing else to write.
  EXPECT_EQ(runtime_->unwritten_acks(), 2u);
  EXPECT_EQ(stored_pending().size(), 2u);
  runtime_->flush();
  EXPECT_EQ(runtime_->unwritten_acks(), 0u);
  EXPECT_TRUE(stored_pending().empty());
}

TEST_F(OutboxTest, AcknowledgementsRideWithTheNextEventsCommit) {
  submit_two_node_job();
  runtime_->dispatch(0);
  send("start", 10, TaskStarted{"train.0.0", {}});
  EXPECT_TRUE(stored_pending().empty());
}

// Lost with the process before it was written, an acknowledgement costs a second delivery of the
// same action id, which the node recognises.
TEST_F(OutboxTest, AnUnwrittenAcknowledgementMeansOneMoreDeliveryAfterARestart) {
  submit_two_node_job();
  runtime_->dispatch(0);
  boot();
  EXPECT_EQ(runtime_->undelivered(), 2u);
  runtime_->dispatch(0);
  runtime_->flush();
  EXPECT_EQ(driver_.delivered,
            (std::vector<std::string>{"submit/0", "submit/1", "submit/0", "submit/1"}));
  boot();
  EXPECT_EQ(runtime_->undelivered(), 0u);
}

TEST_F(OutboxTest, FailedDeliveryWaitsForItsBackoffThenIsRetried) {
  submit_two_node_job();
  driver_.down = true;
  EXPECT_EQ(runtime_->dispatch(0), 0u);
  EXPECT_EQ(driver_.tried.size(), 2u);
  auto pending = stored_pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].attempts, 1);
  EXPECT_EQ(pending[0].last_error, "node agent unreachable");
  // 1 s after the first failure, less up to half of it in jitter.
  EXPECT_EQ(pending[0].next_attempt_at, retry_backoff("submit/0", 0));
  EXPECT_GE(pending[0].next_attempt_at, 500);
  EXPECT_LE(pending[0].next_attempt_at, 1000);

  driver_.down = false;
  EXPECT_EQ(runtime_->dispatch(499), 0u);
  EXPECT_EQ(driver_.tried.size(), 2u);  // not due: not even tried
  EXPECT_EQ(runtime_->dispatch(1000), 2u);
  EXPECT_EQ(driver_.delivered, (std::vector<std::string>{"submit/0", "submit/1"}));
  runtime_->flush();
  EXPECT_TRUE(stored_pending().empty());
  EXPECT_EQ(runtime_->counters().delivery_failures, 2u);
}

TEST_F(OutboxTest, WhatIsOwedSurvivesARestartWithItsBackoff) {
  submit_two_node_job();
  driver_.down = true;
  runtime_->dispatch(0);  // both fail: due again at 1000
  boot();                 // a new process on the same file
  EXPECT_EQ(runtime_->undelivered(), 2u);
  driver_.down = false;
  EXPECT_EQ(runtime_->dispatch(500), 0u);
  EXPECT_EQ(runtime_->dispatch(1000), 2u);
  runtime_->flush();
  EXPECT_TRUE(stored_pending().empty());
  boot();
  EXPECT_EQ(runtime_->undelivered(), 0u);  // done is done
}

TEST(RetryBackoff, GrowsIsCappedAndJittered) {
  EXPECT_LE(retry_backoff("a", 0), 1000);
  EXPECT_GE(retry_backoff("a", 3), 4000);
  EXPECT_LE(retry_backoff("a", 3), 8000);
  for (int attempts : {9, 30, 1000}) {  // no overflow however many attempts
    EXPECT_LE(retry_backoff("a", attempts), kMaxRetryBackoff);
    EXPECT_GE(retry_backoff("a", attempts), kMaxRetryBackoff / 2);
  }
  EXPECT_EQ(retry_backoff("a", 5), retry_backoff("a", 5));  // the same in every replay
  std::set<TimeMs> spread;  // actions that failed together do not retry together
  for (int i = 0; i < 20; ++i) spread.insert(retry_backoff("act/" + std::to_string(i), 4));
  EXPECT_GT(spread.size(), 10u);
}

// A permanent failure is not retried: it becomes a dead letter, kept across restarts, that holds
// back nothing, until an operator retries it. The engine hears of it (ActionFailed) and ends the
// operation the action began, with the node's answer as the reason.
TEST_F(OutboxTest, PermanentFailureBecomesDeadLetterUntilAnOperatorRetries) {
  submit_two_node_job();
  driver_.refuse = "submit/0";
  EXPECT_EQ(runtime_->dispatch(7), 1u);
  EXPECT_EQ(driver_.delivered, (std::vector<std::string>{"submit/1"}));
  EXPECT_EQ(runtime_->counters().dead_letters, 1u);
  EXPECT_EQ(runtime_->counters().delivery_failures, 0u);
  ASSERT_EQ(runtime_->queued(), 1u);  // the ActionFailed event
  runtime_->flush();
  const Job& job = *runtime_->state().job("train");
  EXPECT_EQ(job.status, JobStatus::PendingHealthcheck);
  EXPECT_NE(job.reason.find("refused by the node: payload refused"), std::string::npos)
      << job.reason;
  auto dead = runtime_->dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].action.id, "submit/0");
  EXPECT_EQ(dead[0].last_error, "payload refused");
  EXPECT_EQ(dead[0].dead_at, 7);
  EXPECT_EQ(dead[0].attempts, 1);

  boot();  // a restart does not send it again
  EXPECT_TRUE(runtime_->dead_letters().size() == 1u);
  const auto owed_after_restart = runtime_->undelivered();
  EXPECT_FALSE(runtime_->retry_dead_letter("nosuch", 5));
  driver_.refuse.clear();
  EXPECT_TRUE(runtime_->retry_dead_letter("submit/0", 5));
  EXPECT_TRUE(runtime_->dead_letters().empty());
  EXPECT_EQ(runtime_->undelivered(), owed_after_restart + 1);
  // Owed again, but its start was given up on meanwhile: dropped, not delivered late.
  // A node's actions go one per pass, in order: node-1's stop and diagnostic come first.
  for (int pass = 0; pass < 4; ++pass) runtime_->dispatch(7);

  EXPECT_EQ(std::count(driver_.delivered.begin(), driver_.delivered.end(), "submit/0"), 0);
  EXPECT_EQ(runtime_->counters().superseded, 1u);
  runtime_->flush();
  for (const auto& p : stored_pending()) EXPECT_NE(p.action.id, "submit/0");
}

// A driver's unexpected exception is a transient failure, not a jam of the whole outbox.
TEST_F(OutboxTest, UnexpectedDriverErrorIsRetriedNotJammed) {
  submit_two_node_job();
  driver_.buggy = true;
  EXPECT_EQ(runtime_->dispatch(0), 0u);
  EXPECT_EQ(driver_.tried.size(), 2u);  // both tried: the first one's error stopped nothing
  EXPECT_EQ(runtime_->counters().delivery_failures, 2u);
  EXPECT_EQ(stored_pending()[0].last_error, "unexpected error: driver bug");
  driver_.buggy = false;
  EXPECT_EQ(runtime_->dispatch(1000), 2u);
}

// A stop must not reach a node before the start it stops; other nodes are not held up.
TEST_F(OutboxTest, ANodesActionsKeepTheirOrderWhileOneWaits) {
  submit_two_node_job();
  send("n3", 0, NodeRegistered{"node-3", "boot-a", "10.0.0.3", "mlx5_0", 8, {}, {}});
  driver_.down = true;
  runtime_->dispatch(0);  // both starts fail: due again at 1000
  driver_.down = false;
  send("stop", 20, JobStopRequested{"train", "tester"});
  TaskDefinition def;
  send("other", 20, JobSubmitted{"other", {"node-3"}, 0, def});
  EXPECT_EQ(runtime_->dispatch(20), 1u);  // only node-3's start
  EXPECT_EQ(driver_.delivered, (std::vector<std::string>{"other/0"}));
  // The starts of the stopped job are dropped (their operation is over); the stops go in order.
  EXPECT_EQ(runtime_->dispatch(1000), 2u);
  EXPECT_EQ(driver_.delivered, (std::vector<std::string>{"other/0", "stop/0", "stop/1"}));
  EXPECT_EQ(runtime_->counters().superseded, 2u);
}

}  // namespace
}  // namespace shepherd
