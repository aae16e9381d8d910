#pragma once
#include <chrono>
#include <memory>
#include <mutex>

#include "store/leadership.hpp"
#include "store/mariadb_connection.hpp"

namespace shepherd {

struct MariadbLeaseOptions {
  mariadb::Endpoint endpoint;
  ControllerIdentity me;
  std::chrono::milliseconds ttl{10'000};
};

// The leader lease in the shepherd_leader row, on a connection of its own (so a renewal never
// waits behind the store's commits). A controller leads while it holds the row's epoch and the
// named lock `shepherd_leader.<database>`, which is bound to this connection: when the leader's
// process dies, MariaDB drops its connection and the lock with it, and a standby takes over at its
// next campaign without waiting out the lease. A leader that is alive but silent (paused, stuck)
// keeps the lock: a standby takes over once the lease's expiry passed on the database's clock, and
// first ends the old leader's sessions (its lease's and its store's), which also frees any row a
// half-done transaction of it held. The database must have been migrated (open a MariadbStore
// first).
class MariadbLease final : public Leadership {
 public:
  explicit MariadbLease(MariadbLeaseOptions options);
  ~MariadbLease() override;

  std::optional<std::int64_t> try_lead() override;
  bool renew() override;
  void resign() override;
  ClusterView view() override;
  std::chrono::milliseconds ttl() const override { return options_.ttl; }

 private:
  void seen();  // this controller's row in shepherd_controllers
  std::optional<std::int64_t> take_over();
  bool renew_on_new_connection();

  MariadbLeaseOptions options_;
  std::mutex mu_;
  std::unique_ptr<mariadb::Connection> db_;
  TimeMs started_at_ = 0;
  std::int64_t epoch_ = 0;  // 0: not leading
};

}  // namespace shepherd
