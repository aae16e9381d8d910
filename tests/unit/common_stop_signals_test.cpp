// SIGINT and SIGTERM reach a daemon's stop as ordinary code on their own thread, never inside a
// signal handler (where a stop() that locks a mutex could deadlock).
#include <gtest/gtest.h>
#include <pthread.h>

#include <chrono>
#include <condition_variable>

#include "common/stop_signals.hpp"

namespace shepherd {
namespace {

struct Stops {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  std::thread::id on;
  void stop() {
    std::lock_guard lock(mu);  // what a real stop() does, and a handler must not
    ++count;
    on = std::this_thread::get_id();
    cv.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return count >= n; });
  }
};

TEST(StopSignals, EachSignalRunsTheStopOnTheWaitingThread) {
  Stops stops;
  StopSignals signals;
  const auto stopping = signals.on_stop([&] { stops.stop(); });
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);  // the process, not a thread: as systemd sends it
  ASSERT_TRUE(stops.wait_for(1));
  EXPECT_NE(stops.on, std::this_thread::get_id());
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  ASSERT_TRUE(stops.wait_for(2));
}

TEST(StopSignals, ASignalBeforeTheDaemonExistsIsNotLost) {
  Stops stops;
  StopSignals signals;
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // taken by the waiter, held
  const auto stopping = signals.on_stop([&] { stops.stop(); });
  EXPECT_TRUE(stops.wait_for(1));
}

// The daemon is destroyed right after its registration: a stop still running on the waiting
// thread must have ended by then, or it would touch a destroyed object.
TEST(StopSignals, ARegistrationEndsOnlyAfterAStopInFlight) {
  std::atomic<bool> started{false}, finished{false};
  StopSignals signals;
  {
    const auto stopping = signals.on_stop([&] {
      started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      finished = true;
    });
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    for (int i = 0; i < 500 && !started; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(started);
  }
  EXPECT_TRUE(finished);
}

TEST(StopSignals, ThreadsStartedAfterItDoNotTakeTheSignal) {
  StopSignals signals;
  sigset_t mask;
  std::thread([&] { pthread_sigmask(SIG_SETMASK, nullptr, &mask); }).join();
  EXPECT_EQ(sigismember(&mask, SIGTERM), 1);
  EXPECT_EQ(sigismember(&mask, SIGINT), 1);
}

}  // namespace
}  // namespace shepherd
