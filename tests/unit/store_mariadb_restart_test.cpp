// MariaDB restarted under a running store. It restarts the server every MariaDB test shares, so
// ctest runs it alone (RUN_SERIAL, tests/CMakeLists.txt). Needs SHEPHERD_TEST_MYSQL_RESTART.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

using Mariadb = MariadbTest;

// MariaDB restarted during a burst of events, committed the way the runtime does (a failed commit
// is given back and its events are decided again, their keys saying which were written): every
// event is stored once, none twice. Needs SHEPHERD_TEST_MYSQL_RESTART (scripts/test sets it).
TEST_F(Mariadb, RestartedDuringABurstLosesNothingAndRepeatsNothing) {
  const char* restart = std::getenv("SHEPHERD_TEST_MYSQL_RESTART");
  if (!restart || !*restart) GTEST_SKIP() << "SHEPHERD_TEST_MYSQL_RESTART is not set";
  MariadbOptions options;
  auto store = db->open(options);
  constexpr int kEvents = 300;
  std::atomic<bool> restarted{false};
  std::thread restarter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(std::system(restart), 0);
    restarted = true;
  });
  int failures = 0;
  int events = 0;  // at least kEvents, and on until the restart is over: it happens mid-burst
  for (int i = 0; i < kEvents || !restarted;) {
    const std::string key = "burst-" + std::to_string(i);
    try {
      if (!store->has_event(key))
        store->commit({event(key, typical("job-" + std::to_string(i), i))});
      events = ++i;
    } catch (const StoreError&) {
      ++failures;  // given back: decided again on the next turn
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  restarter.join();
  EXPECT_GE(store->reconnects(), 1u);  // the restart did cut the store off
  const auto n = static_cast<std::size_t>(events);
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM shepherd_events"),
            std::vector<std::string>{std::to_string(n)});
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM training_jobs"),
            std::vector<std::string>{std::to_string(n)});
  EXPECT_EQ(store->timeline(0, 10 * n).size(), 2u * n);
  EXPECT_EQ(store->pending_actions(1'000'000, 10 * n).size(), n);
  RecordProperty("failed_commits", failures);
  RecordProperty("reconnects", static_cast<int>(store->reconnects()));
}

}  // namespace
}  // namespace shepherd::test
