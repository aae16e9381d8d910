// The leader lease on MariaDB (store/mariadb_lease.hpp) and the fence on the leader's store: one
// leader per database, a dead leader replaced at once, a silent one once its lease lapsed, and a
// deposed leader's store writing nothing. Needs SHEPHERD_TEST_MYSQL_URL; skipped without it.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include "store/mariadb_lease.hpp"
#include "store_fixtures.hpp"
#include "support/test_databases.hpp"

namespace shepherd::test {
namespace {

using namespace std::chrono_literals;
using Lease = MariadbTest;

std::unique_ptr<MariadbLease> lease(MariadbTestDatabase& db, const std::string& name,
                                    std::chrono::milliseconds ttl = 10s) {
  db.open(MariadbOptions{});  // migrated
  return std::make_unique<MariadbLease>(
      MariadbLeaseOptions{db.endpoint(), {name, "https://" + name + ":8443", "test"}, ttl});
}

std::unique_ptr<MariadbStore> writer(MariadbTestDatabase& db, std::int64_t epoch) {
  MariadbOptions o;
  o.fence_epoch = epoch;
  return db.open(o);
}

TEST_F(Lease, TheFirstCampaignLeadsAndTheOthersStandBy) {
  auto a = lease(*db, "a");
  auto b = lease(*db, "b");
  EXPECT_EQ(a->try_lead(), 1);
  EXPECT_EQ(a->try_lead(), 1);  // still leading: the same epoch
  EXPECT_EQ(b->try_lead(), std::nullopt);
  EXPECT_TRUE(a->renew());
  EXPECT_FALSE(b->renew());  // a standby has nothing to renew

  const ClusterView view = b->view();
  ASSERT_TRUE(view.lease);
  EXPECT_EQ(view.lease->holder, "a");
  EXPECT_EQ(view.lease->url, "https://a:8443");
  EXPECT_EQ(view.lease->epoch, 1);
  EXPECT_GT(view.lease->expires_at, view.now);
  ASSERT_EQ(view.controllers.size(), 2u);
  EXPECT_EQ(view.controllers[0].controller.name, "a");
  EXPECT_EQ(view.controllers[1].controller.name, "b");
  EXPECT_LE(view.controllers[1].seen_at, view.now);
}

// kill -9 of the leader: its connection closes and its lock with it. A standby takes the lock
// at once (so the old leader could not get the lease back) and leads when the lease ends.
TEST_F(Lease, ALeaderWhoseConnectionIsGoneIsReplacedWhenItsLeaseEnds) {
  auto a = lease(*db, "a", 1s);
  auto b = lease(*db, "b", 1s);
  ASSERT_EQ(a->try_lead(), 1);
  a.reset();
  std::optional<std::int64_t> epoch;
  for (int i = 0; i < 60 && !epoch; ++i) {
    epoch = b->try_lead();
    if (!epoch) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(epoch, 2);
  EXPECT_EQ(b->view().lease->holder, "b");
}

// Only the leader's lease connection dropped (a KILL, a proxy, a cut): the leader lives and may
// act until its lease ends. The standby that took the lock waits that out; the old leader cannot
// renew (the lock is the standby's now).
TEST_F(Lease, ALiveLeaderThatLostItsConnectionIsWaitedOut) {
  auto a = lease(*db, "a", 2s);
  auto b = lease(*db, "b", 2s);
  ASSERT_EQ(a->try_lead(), 1);
  mariadb::Connection admin(db->endpoint());
  admin.exec("KILL CONNECTION " + db->column("SELECT lease_session FROM shepherd_leader").at(0));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(b->try_lead(), std::nullopt);  // the lock is b's, the lease still a's
  EXPECT_FALSE(a->renew());
  EXPECT_EQ(b->view().lease->holder, "a");
  std::optional<std::int64_t> epoch;
  for (int i = 0; i < 60 && !epoch; ++i) {
    std::this_thread::sleep_for(50ms);
    epoch = b->try_lead();
  }
  EXPECT_EQ(epoch, 2);
  EXPECT_EQ(a->try_lead(), std::nullopt);
}

// A leader paused past its lease (SIGSTOP) keeps its connection and lock: once the lease lapsed
// on the database's clock, a standby ends its sessions and takes over. Woken, the old leader can
// renew nothing and its store writes nothing.
TEST_F(Lease, ASilentLeaderIsReplacedWhenItsLeaseLapsesAndThenWritesNothing) {
  auto a = lease(*db, "a", 1s);
  auto b = lease(*db, "b", 1s);
  ASSERT_EQ(a->try_lead(), 1);
  auto old_writer = writer(*db, 1);
  old_writer->commit({event("before", typical("job-1", 10))});
  EXPECT_EQ(b->try_lead(), std::nullopt);  // the lease holds yet

  std::optional<std::int64_t> epoch;
  for (int i = 0; i < 100 && !epoch; ++i) {
    std::this_thread::sleep_for(50ms);
    epoch = b->try_lead();
  }
  ASSERT_EQ(epoch, 2);
  EXPECT_FALSE(a->renew());
  EXPECT_THROW(old_writer->commit({event("late", typical("job-2", 20))}), StoreError);
  EXPECT_THROW(old_writer->commit({event("late", typical("job-2", 20))}), FencedOut);
  EXPECT_THROW(old_writer->mark_action_failed("x", "late", 30), FencedOut);
  EXPECT_THROW(old_writer->begin_incarnation(40), FencedOut);

  auto new_writer = writer(*db, 2);
  EXPECT_FALSE(new_writer->has_event("late"));
  EXPECT_TRUE(new_writer->has_event("before"));
  new_writer->commit({event("after", typical("job-3", 30))});
  EXPECT_TRUE(new_writer->has_event("after"));
}

// The fence in one transaction: a writer of an older epoch is refused even on a live connection,
// and a store cannot open for an epoch that is over.
TEST_F(Lease, AStoreOfAnEpochThatIsOverIsRefused) {
  auto a = lease(*db, "a");
  auto b = lease(*db, "b");
  ASSERT_EQ(a->try_lead(), 1);
  auto first = writer(*db, 1);
  a->resign();  // a clean stop: the standby need not wait
  ASSERT_EQ(b->try_lead(), 2);
  try {
    first->commit({event("e1", typical("job-1", 10))});
    FAIL() << "a deposed leader's store committed";
  } catch (const FencedOut& e) {
    EXPECT_NE(std::string(e.what()).find("b leads at epoch 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(first->mark_actions_done({"x"}), FencedOut);
  EXPECT_THROW(writer(*db, 1), FencedOut);
  auto second = writer(*db, 2);
  EXPECT_FALSE(second->has_event("e1"));
  EXPECT_EQ(second->begin_incarnation(10), 1);
}

TEST_F(Lease, RenewalsKeepTheLeaseFromLapsing) {
  auto a = lease(*db, "a", 1s);
  auto b = lease(*db, "b", 1s);
  ASSERT_EQ(a->try_lead(), 1);
  for (int i = 0; i < 8; ++i) {  // 2.4 s: the lease would have lapsed twice over
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(a->renew());
    EXPECT_EQ(b->try_lead(), std::nullopt);
  }
}

// MariaDB dropped the leader's connection (a restart, a cut) and nobody took over meanwhile: the
// leader gets its lease back on a new connection, at the same epoch.
TEST_F(Lease, ALostConnectionGetsTheLeaseBackIfNobodyTookIt) {
  auto a = lease(*db, "a");
  ASSERT_EQ(a->try_lead(), 1);
  auto w = writer(*db, 1);
  mariadb::Connection admin(db->endpoint());
  for (const auto& row : admin.query_with(
           "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
           db->endpoint().database))
    admin.exec("KILL CONNECTION " + *row.at(0));
  EXPECT_TRUE(a->renew());
  EXPECT_EQ(a->view().lease->epoch, 1);
  EXPECT_THROW(w->commit({event("lost", typical("job-1", 10))}), StoreError);  // unknown: lost
  w->commit({event("again", typical("job-2", 20))});  // on a new connection, same epoch
  EXPECT_TRUE(w->has_event("again"));
}

// Controllers started at once on an empty database: the migrations run once, one leads.
TEST_F(Lease, ControllersStartedAtOnceOnAnEmptyDatabaseElectOne) {
  constexpr int kControllers = 4;
  std::atomic<int> leaders{0}, failures{0};
  std::latch campaigned(kControllers);  // no lease ends (freeing the lock) before all campaigned
  std::vector<std::thread> threads;
  for (int i = 0; i < kControllers; ++i)
    threads.emplace_back([&, i] {
      std::unique_ptr<MariadbLease> l;
      try {
        auto store = db->open(MariadbOptions{});
        l = std::make_unique<MariadbLease>(MariadbLeaseOptions{
            db->endpoint(), {"c" + std::to_string(i), "https://c", "test"}, 10s});
        if (l->try_lead()) ++leaders;
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
      campaigned.arrive_and_wait();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(leaders, 1);
  EXPECT_EQ(db->column("SELECT epoch FROM shepherd_leader"), std::vector<std::string>{"1"});
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM shepherd_schema_migrations"),
            std::vector<std::string>{std::to_string(mariadb_migrations().size())});
  EXPECT_EQ(db->column("SELECT COUNT(*) FROM shepherd_controllers"),
            std::vector<std::string>{std::to_string(kControllers)});
}

}  // namespace
}  // namespace shepherd::test
