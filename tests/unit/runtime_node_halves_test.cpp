// The runtime tells the store which half of a node each decision changed: recovery's status changes
// leave the inventory version alone, a re-registration with new facts moves it.
#include <gtest/gtest.h>

#include "runtime/runtime.hpp"
#include "store/sqlite_store.hpp"
#include "support/doubles.hpp"

namespace shepherd {
namespace {

TEST(RuntimeNodeHalves, RecoveryWritesOnlyTheHealthHalf) {
  SqliteStore store(":memory:");
  test::AcceptingDriver driver;
  test::QuietNotifier notifier;
  Runtime runtime(store, driver, notifier, Engine(Policy{}));
  runtime.start();
  runtime.apply(
      Event{"r1", 0, NodeRegistered{"node-1", "boot-a", "10.0.0.1", "mlx5_0", 8, {}, {}}});
  TaskDefinition def;
  runtime.apply(Event{"s", 0, JobSubmitted{"train", {"node-1"}, 0, def}});
  Snapshot stored;
  store.load(stored);
  EXPECT_EQ(stored.node("node-1")->status, NodeStatus::Assigned);
  EXPECT_EQ(stored.node("node-1")->version, 2);            // registered, then assigned
  EXPECT_EQ(stored.node("node-1")->inventory_version, 1);  // as registered

  runtime.apply(Event{"r2", 0, NodeRegistered{"node-1", "boot-a", "10.0.0.9", "", 0, {}, {}}});
  Snapshot again;
  store.load(again);
  EXPECT_EQ(again.node("node-1")->ip, "10.0.0.9");
  EXPECT_EQ(again.node("node-1")->inventory_version, 2);
  EXPECT_EQ(runtime.state().node("node-1")->inventory_version, 2);  // the cache moves alike
}

}  // namespace
}  // namespace shepherd
