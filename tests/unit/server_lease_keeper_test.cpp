// The leader's LeaseKeeper against a Leadership whose answers the test sets: it renews, it says
// the lease is lost once a renewal says so or once renewals failed for a whole ttl, and holds()
// is false from then on.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "server/lease_keeper.hpp"
#include "store/store.hpp"

namespace shepherd::server {
namespace {

using namespace std::chrono_literals;

class ScriptedLeadership final : public Leadership {
 public:
  std::atomic<int> renewals{0};
  std::atomic<bool> granted{true}, reachable{true};
  std::optional<std::int64_t> try_lead() override { return 1; }
  bool renew() override {
    ++renewals;
    if (!reachable) throw StoreError("the database does not answer");
    return granted;
  }
  void resign() override {}
  ClusterView view() override { return {}; }
  std::chrono::milliseconds ttl() const override { return 1s; }
};

TEST(LeaseKeeper, RenewsWhileTheLeaseIsGranted) {
  ScriptedLeadership lease;
  std::atomic<int> lost{0};
  LeaseKeeper keeper(lease, [&](const std::string&) { ++lost; });
  std::this_thread::sleep_for(1500ms);  // a lease of 1 s, renewed every third of it
  EXPECT_GE(lease.renewals, 2);
  EXPECT_TRUE(keeper.holds());
  EXPECT_EQ(lost, 0);
}

TEST(LeaseKeeper, ARefusedRenewalLosesTheLeaseAtOnce) {
  ScriptedLeadership lease;
  lease.granted = false;
  std::promise<std::string> why;
  LeaseKeeper keeper(lease, [&](const std::string& w) { why.set_value(w); });
  auto said = why.get_future();
  ASSERT_EQ(said.wait_for(5s), std::future_status::ready);
  EXPECT_NE(said.get().find("another controller"), std::string::npos);
  EXPECT_FALSE(keeper.holds());
}

// The store unreachable: the lease is kept while it surely holds, and lost when it may have
// lapsed (another controller may lead by then).
TEST(LeaseKeeper, RenewalsThatFailForATtlLoseTheLease) {
  ScriptedLeadership lease;
  lease.reachable = false;
  std::promise<std::string> why;
  LeaseKeeper keeper(lease, [&](const std::string& w) { why.set_value(w); });
  auto said = why.get_future();
  ASSERT_EQ(said.wait_for(5s), std::future_status::ready);
  EXPECT_NE(said.get().find("lapsed"), std::string::npos);
  EXPECT_GE(lease.renewals, 2);  // it tried more than once before it gave up
  EXPECT_FALSE(keeper.holds());
}

// Alone on its store (ttl 0): it always holds, and no thread renews anything.
TEST(LeaseKeeper, ASoleControllerAlwaysHolds) {
  ManualClock clock;
  SoleLeadership sole({"c1", "https://c1:8443", "test"}, clock);
  LeaseKeeper keeper(sole,
                     [](const std::string&) { FAIL() << "a sole controller lost its lease"; });
  EXPECT_TRUE(keeper.holds());
  EXPECT_EQ(sole.view().lease->holder, "c1");
}

}  // namespace
}  // namespace shepherd::server
