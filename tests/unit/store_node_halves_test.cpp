// A node's inventory and health are versioned apart (migration 0007): delivery's inventory edits
// and recovery's health edits of one node never conflict; two edits of the same half still do.
#include <gtest/gtest.h>

#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd {
namespace {

using test::event;
using test::full_node;
using test::loaded;

Commit edit(const std::string& key, const Node& n, NodeParts parts) {
  Decision d;
  d.nodes = {n};
  Commit c = event(key, d);
  c.node_parts = {parts};
  return c;
}

// Part of the conformance suite: on every store.
class NodeHalves : public test::StoreConformance {
 protected:
  void SetUp() override {
    StoreConformance::SetUp();
    if (IsSkipped()) return;
    Decision d;
    d.nodes = {full_node("node-1")};
    store->commit({event("create", d)});
  }
};

TEST_P(NodeHalves, InventoryAndHealthWritersDoNotConflict) {
  auto recovery_connection = reopen(), delivery_connection = reopen();
  Store &recovery = *recovery_connection, &delivery = *delivery_connection;
  const Node read_by_recovery = *loaded(recovery).node("node-1");
  Node read_by_delivery = *loaded(delivery).node("node-1");
  ASSERT_EQ(read_by_recovery.version, 1);
  ASSERT_EQ(read_by_recovery.inventory_version, 1);

  read_by_delivery.locked = true;  // an operator locks the node, through delivery
  read_by_delivery.node_pool = "spare";
  delivery.commit({edit("lock", read_by_delivery, {true, false})});

  Node health = read_by_recovery;  // recovery read before the lock, and does not know of it
  health.status = NodeStatus::Rebooting;
  health.reason = "diagnostic fail: rebooting";
  EXPECT_NO_THROW(recovery.commit({edit("reboot", health, {false, true})}));

  const Node now = *loaded(recovery).node("node-1");
  EXPECT_TRUE(now.locked);  // delivery's half kept
  EXPECT_EQ(now.node_pool, "spare");
  EXPECT_EQ(now.status, NodeStatus::Rebooting);  // recovery's half written
  EXPECT_EQ(now.version, 2);
  EXPECT_EQ(now.inventory_version, 2);
}

TEST_P(NodeHalves, TwoWritersOfOneHalfStillConflict) {
  auto a_connection = reopen(), b_connection = reopen();
  Store &a = *a_connection, &b = *b_connection;
  Node by_a = *loaded(a).node("node-1"), by_b = *loaded(b).node("node-1");
  by_a.reason = "a";
  a.commit({edit("a", by_a, {false, true})});
  by_b.reason = "b";
  EXPECT_THROW(b.commit({edit("b", by_b, {false, true})}), VersionConflict);
  by_a.gpus = 4;
  a.commit({edit("a2", by_a, {true, false})});
  by_b.gpus = 2;
  EXPECT_THROW(b.commit({edit("b2", by_b, {true, false})}), VersionConflict);
  EXPECT_EQ(loaded(a).node("node-1")->gpus, 4);
  EXPECT_EQ(loaded(a).node("node-1")->reason, "a");
}

TEST_P(NodeHalves, AnUnchangedHalfIsNotWritten) {
  Store& store = *this->store;
  Node n = *loaded(store).node("node-1");
  n.ip = "10.9.9.9";  // changed, but the edit says only health changed: the ip is not written
  n.reason = "health only";
  store.commit({edit("h", n, {false, true})});
  const Node now = *loaded(store).node("node-1");
  EXPECT_EQ(now.reason, "health only");
  EXPECT_NE(now.ip, "10.9.9.9");
  EXPECT_EQ(now.inventory_version, 1);
}

SHEPHERD_STORE_CONFORMANCE(NodeHalves);

}  // namespace
}  // namespace shepherd
