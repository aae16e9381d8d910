// The controller's loop: heartbeat losses it decides itself, keys unique across restarts,
// asynchronous delivery (results come back later, from another thread; a hand-over nobody answers
// is handed over again), commands from other threads.
#include "controller/controller.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "notify/background_notifier.hpp"
#include "store/sqlite_store.hpp"
#include "support/doubles.hpp"

namespace shepherd {
namespace {

TEST(HeartbeatTracker, SilenceIsReportedOnceAfterTheTimeout) {
  HeartbeatTracker hb(60'000);
  hb.connected("a", 0);
  hb.heard_from("b", 0);
  EXPECT_EQ(hb.next_loss_at(), 60'000);  // b: heartbeats only, no connection
  EXPECT_TRUE(hb.lost(59'999).empty());
  EXPECT_EQ(hb.lost(60'000), std::vector<std::string>{"b"});
  EXPECT_TRUE(hb.lost(120'000).empty());  // once per silence
  hb.disconnected("a", 10'000);
  hb.heard_from("b", 130'000);  // b is back: a new silence may begin
  EXPECT_EQ(hb.lost(70'000), std::vector<std::string>{"a"});
  EXPECT_TRUE(hb.lost(189'999).empty());
  EXPECT_EQ(hb.lost(190'000), std::vector<std::string>{"b"});
}

TEST(HeartbeatTracker, AReconnectBeforeTheTimeoutIsNoLoss) {
  HeartbeatTracker hb(60'000);
  hb.connected("a", 0);
  hb.disconnected("a", 1000);
  hb.connected("a", 30'000);
  EXPECT_FALSE(hb.next_loss_at());
  EXPECT_TRUE(hb.lost(1'000'000).empty());
}

// A driver that answers later, from another thread, as a network agent does.
struct LateDriver final : ClusterDriver {
  void execute(const Action& a, DeliveryCallback done) override {
    std::lock_guard lock(mu);
    handed.push_back(a.id);
    waiting.push_back(std::move(done));
  }
  void answer_all(DeliveryResult r) {
    std::vector<DeliveryCallback> now;
    {
      std::lock_guard lock(mu);
      now.swap(waiting);
    }
    std::thread([&] {
      for (auto& cb : now) cb(r);
    }).join();
  }
  std::vector<std::string> handed_over() {
    std::lock_guard lock(mu);
    return handed;
  }
  std::mutex mu;
  std::vector<std::string> handed;
  std::vector<DeliveryCallback> waiting;
};

using test::QuietNotifier;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("shepherd-controller-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
    std::filesystem::remove(path_);
    boot();
  }
  void TearDown() override {
    controller_.reset();
    store_.reset();
    std::filesystem::remove(path_);
  }
  void boot() {
    controller_.reset();
    store_ = std::make_unique<SqliteStore>(path_.string());
    policy_.heartbeat_timeout = 60;
    controller_ =
        std::make_unique<Controller>(*store_, driver_, notifier_, Engine(policy_), clock_, policy_);
    controller_->start();
  }
  void register_nodes() {
    for (const char* n : {"node-1", "node-2"}) {
      controller_->node_connected(n);
      controller_->post(Event{std::string("reg-") + n, clock_.now(),
                              NodeRegistered{n, "boot-a", "", "", 8, {}, {}}});
    }
    controller_->settle();
  }
  const Node& node(const std::string& name) { return *controller_->runtime().state().node(name); }

  std::filesystem::path path_;
  ManualClock clock_;
  Policy policy_;
  LateDriver driver_;
  QuietNotifier notifier_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(ControllerTest, DecidesHeartbeatLossItself) {
  register_nodes();
  controller_->node_disconnected("node-2");
  clock_.set(59'000);
  controller_->settle();
  EXPECT_EQ(node("node-2").status, NodeStatus::Available);
  EXPECT_EQ(controller_->next_wakeup(), 60'000);
  clock_.set(60'000);
  controller_->settle();
  EXPECT_EQ(node("node-2").status, NodeStatus::Unknown);
  EXPECT_EQ(node("node-1").status, NodeStatus::Available);  // its connection is up
}

TEST_F(ControllerTest, MadeUpKeysAreUniqueAcrossRestarts) {
  const std::int64_t first = controller_->incarnation();
  const std::string key = controller_->make_key("x");
  boot();  // a restart on the same store
  EXPECT_GT(controller_->incarnation(), first);
  EXPECT_NE(controller_->make_key("x"), key);
  // The first made-up key of the new start is not a duplicate of the old start's first.
  register_nodes();
  const Outcome o = controller_->decide(JobStopRequested{"none", "t"}, "stop");
  EXPECT_FALSE(o.duplicate);
}

TEST_F(ControllerTest, DeliveryIsAsynchronousAndAnUnansweredHandOverIsRepeated) {
  register_nodes();
  TaskDefinition def;
  ASSERT_FALSE(controller_->decide(JobSubmitted{"train", {"node-1", "node-2"}, 0, def}).rejection);
  controller_->settle();  // hands both starts over; the driver has not answered
  EXPECT_EQ(driver_.handed_over().size(), 2u);
  EXPECT_EQ(controller_->runtime().in_flight(), 2u);
  EXPECT_EQ(controller_->runtime().undelivered(), 2u);
  EXPECT_EQ(controller_->next_wakeup(), kDeliveryTimeout);  // every wait has a deadline
  clock_.set(kDeliveryTimeout);
  controller_->settle();  // nobody answered: handed over again (the ids make that harmless)
  EXPECT_EQ(driver_.handed_over().size(), 2u);  // backoff first
  clock_.set(kDeliveryTimeout + 1000);
  controller_->settle();
  EXPECT_EQ(driver_.handed_over().size(), 4u);
  EXPECT_EQ(controller_->runtime().counters().delivery_timeouts, 2u);
  driver_.answer_all(DeliveryResult::done());
  controller_->settle();
  EXPECT_EQ(controller_->runtime().undelivered(), 0u);
  EXPECT_EQ(controller_->runtime().counters().delivered, 2u);
  boot();  // what was confirmed is not owed after a restart
  EXPECT_EQ(controller_->runtime().undelivered(), 0u);
}

TEST_F(ControllerTest, AnAnswerToAHandOverGivenUpOnIsIgnored) {
  register_nodes();
  TaskDefinition def;
  controller_->decide(JobSubmitted{"train", {"node-1"}, 0, def});
  controller_->settle();
  std::vector<DeliveryCallback> stale;
  {
    std::lock_guard lock(driver_.mu);
    stale.swap(driver_.waiting);
  }
  clock_.set(kDeliveryTimeout + 1000);
  controller_->settle();  // given up on; handed over again after its backoff
  clock_.set(kDeliveryTimeout + 3000);
  controller_->settle();
  stale.front()(DeliveryResult::failed_permanently("late and wrong"));
  controller_->settle();
  EXPECT_EQ(controller_->runtime().counters().dead_letters, 0u);
  EXPECT_EQ(controller_->runtime().in_flight(), 1u);
}

TEST_F(ControllerTest, CommandsFromOtherThreadsRunOnTheLoop) {
  register_nodes();
  std::thread loop([&] { controller_->run(std::chrono::milliseconds(5)); });
  const std::thread::id loop_id = loop.get_id();
  std::atomic<bool> on_loop{false};
  const Outcome o = controller_->call([&on_loop, loop_id](Controller& c) {
    on_loop = std::this_thread::get_id() == loop_id;
    TaskDefinition def;
    return c.decide(JobSubmitted{"train", {"node-1"}, 0, def});
  });
  EXPECT_FALSE(o.rejection);
  EXPECT_TRUE(on_loop);
  controller_->stop();
  loop.join();
  EXPECT_THROW(controller_->call([](Controller&) { return 1; }), ControllerBusy);
}

// A notifier whose receiver takes its time does not hold up whoever hands notifications over.
TEST(BackgroundNotifier, ASlowReceiverDoesNotBlockTheCaller) {
  struct SlowSink final : ImmediateNotifier {
    void deliver(const Action&) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (fail) throw PermanentDeliveryError("refused");
    }
    bool fail = true;
  };
  auto sink = std::make_shared<SlowSink>();
  BackgroundNotifier notifier(sink);
  std::atomic<int> results{0};
  std::atomic<bool> permanent{false};
  Action a;
  a.id = "n1";
  const auto start = std::chrono::steady_clock::now();
  notifier.notify(a, [&](DeliveryResult r) {
    permanent = r.status == DeliveryResult::Status::FailedPermanently;
    ++results;
  });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  for (int i = 0; i < 200 && results == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(results, 1);
  EXPECT_TRUE(permanent);
}

}  // namespace
}  // namespace shepherd
