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
// named lock `shepherd_leader.<database>`, which is bound to this connection. Only the holder of
// the lock campaigns, and a leader that lost it (its connection dropped) cannot renew. When the
// leader's connection is gone (its process died, or only the connection), a standby takes the
// lock at its next campaign and takes over once the old lease's expiry passed on the database's
// clock: until then the old leader, if alive, may still act. A leader that is alive but silent
// (paused, stuck) keeps the lock: once its lease lapsed, a standby first ends its sessions (its
// lease's and its store's, checked to be this database's), which also frees any row a half-done
// transaction of it held. The database must have been migrated (open a MariadbStore first).
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
  std::int64_t epoch_ = 0;   // 0: not leading
  bool holds_lock_ = false;  // this connection holds shepherd_leader.<db>
  std::string waiting_for_;  // the old leader whose lease this one waits out (said once)
};

}  // namespace shepherd
