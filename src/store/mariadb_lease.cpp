#include "store/mariadb_lease.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

namespace shepherd {
namespace {

using mariadb::Connection;
using mariadb::Row;
using mariadb::RowReader;

// The database's clock in milliseconds: every controller compares expiries on the same clock.
const std::string kNow = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";
const std::string kLock = "CONCAT('shepherd_leader.', DATABASE())";

std::string scalar(Connection& db, const std::string& sql) {
  const auto rows = db.query_with(sql);
  return rows.empty() || rows[0].empty() ? "" : rows[0][0].value_or("");
}

// A lease's calls must end well within its ttl: a connection that hangs fails instead.
mariadb::Endpoint bounded(mariadb::Endpoint e, std::chrono::milliseconds ttl) {
  const int ttl_s = static_cast<int>(std::max<std::int64_t>(1, ttl.count() / 1000));
  e.io_timeout_s = std::clamp(ttl_s / 2, 1, e.io_timeout_s);
  e.connect_timeout_s = std::clamp(ttl_s / 2, 1, e.connect_timeout_s);
  e.reconnect_timeout_s = std::clamp(ttl_s / 2, 1, e.reconnect_timeout_s);
  return e;
}

// Ends a session of a controller that no longer leads; one already gone is fine.
void end_session(Connection& db, const std::string& id) {
  if (id.empty() || id == "0" || id.find_first_not_of("0123456789") != std::string::npos) return;
  // Only one of ours: same user, same database (an id recorded before a restart of MariaDB may
  // name someone else's session by now).
  if (db.query_with("SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ? AND DB = DATABASE() "
                    "AND USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1)",
                    static_cast<std::int64_t>(std::stoll(id)))
          .empty())
    return;
  try {
    db.exec("KILL CONNECTION " + id);  // digits only, checked above
  } catch (const mariadb::Error& e) {
    if (e.code != 1094) throw;  // ER_NO_SUCH_THREAD: it ended meanwhile
  }
}

}  // namespace

MariadbLease::MariadbLease(MariadbLeaseOptions options)
    : options_(std::move(options)),
      db_(std::make_unique<Connection>(bounded(options_.endpoint, options_.ttl))) {
  if (options_.ttl.count() < 1000)
    throw StoreError("leader lease: the ttl must be at least 1 s, not " +
                     std::to_string(options_.ttl.count()) + " ms");
  db_->exec("INSERT IGNORE INTO shepherd_leader (id) VALUES (1)");
  started_at_ = std::stoll(scalar(*db_, "SELECT " + kNow));
  seen();
}

MariadbLease::~MariadbLease() = default;

void MariadbLease::seen() {
  db_->run_with(
      "INSERT INTO shepherd_controllers (name, url, version, started_at, seen_at) VALUES (?, ?, "
      "?, ?, " +
          kNow +
          ") ON DUPLICATE KEY UPDATE url = VALUES(url), version = VALUES(version), "
          "started_at = VALUES(started_at), seen_at = VALUES(seen_at)",
      options_.me.name, options_.me.url, options_.me.version, started_at_);
}

std::optional<std::int64_t> MariadbLease::try_lead() {
  std::lock_guard lock(mu_);
  if (epoch_ != 0) return epoch_;
  try {
    return take_over();
  } catch (const mariadb::Error& e) {
    if (!e.connection_lost()) throw;
    db_->reconnect();
    holds_lock_ = false;  // the lock, if this connection had it, went with the old one
    return take_over();
  }
}

std::optional<std::int64_t> MariadbLease::take_over() {
  seen();
  if (!holds_lock_ && scalar(*db_, "SELECT GET_LOCK(" + kLock + ", 0)") == "1") holds_lock_ = true;
  if (!holds_lock_) {
    // Held: by a live leader, or by one that is silent (paused, stuck) and let its lease lapse.
    const auto rows =
        db_->query_with("SELECT lease_session, writer_session, holder, expires_at < " + kNow +
                        " FROM shepherd_leader WHERE id = 1");
    if (rows.empty() || rows[0][3].value_or("0") != "1") return std::nullopt;
    const std::string lease_session = rows[0][0].value_or("");
    // Only the lapsed leader's own session is ended, not a campaigner's that won a moment ago.
    if (scalar(*db_, "SELECT IS_USED_LOCK(" + kLock + ")") != lease_session) return std::nullopt;
    spdlog::warn("leader lease: {}'s lease lapsed; ending its sessions to take over",
                 rows[0][2].value_or("?"));
    end_session(*db_, lease_session);
    end_session(*db_, rows[0][1].value_or(""));
    // A killed session's lock is released a moment after the kill: a few quick tries, each well
    // within the connection's I/O timeout.
    for (int i = 0; i < 20 && !holds_lock_; ++i) {
      if (scalar(*db_, "SELECT GET_LOCK(" + kLock + ", 0)") == "1")
        holds_lock_ = true;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!holds_lock_) return std::nullopt;
  }
  // This connection holds the lock: no other controller can campaign, and the old leader cannot
  // get its lease back. But the old leader may still be alive (only its connection was lost, or
  // it renewed just before its sessions were ended) and may act until its lease's expiry: wait
  // that out, on the database's clock, before taking over.
  const auto lease =
      db_->query_with("SELECT holder, expires_at - " + kNow + " FROM shepherd_leader WHERE id = 1");
  const std::int64_t left = lease.empty() ? 0 : RowReader(lease[0], 1).i64();
  const std::string holder = lease.empty() ? "" : lease[0][0].value_or("");
  if (left > 0 && holder != options_.me.name) {
    if (waiting_for_ != holder)
      spdlog::warn("leader lease: {} lost the lock; taking over when its lease ends, in {} ms",
                   holder, left);
    waiting_for_ = holder;
    return std::nullopt;
  }
  waiting_for_.clear();
  // The update waits for a commit of the old leader under way (its shared lock on the row).
  db_->run_with(
      "UPDATE shepherd_leader SET epoch = epoch + 1, holder = ?, url = ?, "
      "lease_session = CONNECTION_ID(), writer_session = 0, acquired_at = " +
          kNow + ", renewed_at = " + kNow + ", expires_at = " + kNow + " + ? WHERE id = 1",
      options_.me.name, options_.me.url, static_cast<std::int64_t>(options_.ttl.count()));
  epoch_ = std::stoll(scalar(*db_, "SELECT epoch FROM shepherd_leader WHERE id = 1"));
  return epoch_;
}

bool MariadbLease::renew() {
  std::lock_guard lock(mu_);
  if (epoch_ == 0) return false;
  try {
    const auto matched =
        db_->run_with("UPDATE shepherd_leader SET renewed_at = " + kNow + ", expires_at = " + kNow +
                          " + ? WHERE id = 1 AND epoch = ? AND lease_session = "
                          "CONNECTION_ID()",
                      static_cast<std::int64_t>(options_.ttl.count()), epoch_);
    if (matched != 1) {
      epoch_ = 0;
      return false;
    }
    seen();
    return true;
  } catch (const mariadb::Error& e) {
    if (!e.connection_lost()) throw;
    db_->reconnect();
    return renew_on_new_connection();
  }
}

// The connection was lost (MariaDB restarted, a network cut) and the lock with it: the lease is
// still this controller's if nobody took the lock meanwhile and the lease did not lapse.
bool MariadbLease::renew_on_new_connection() {
  holds_lock_ = false;  // it went with the old connection
  if (scalar(*db_, "SELECT GET_LOCK(" + kLock + ", 0)") != "1") {
    epoch_ = 0;
    return false;
  }
  holds_lock_ = true;
  // writer_session is the store's old connection (gone too, or soon made again, which records
  // it): 0, so that no id from before a restart of MariaDB is ever ended.
  const auto matched = db_->run_with(
      "UPDATE shepherd_leader SET lease_session = CONNECTION_ID(), writer_session = 0, "
      "renewed_at = " +
          kNow + ", expires_at = " + kNow + " + ? WHERE id = 1 AND epoch = ? AND expires_at > " +
          kNow,
      static_cast<std::int64_t>(options_.ttl.count()), epoch_);
  if (matched != 1) {
    db_->exec("DO RELEASE_LOCK(" + kLock + ")");
    holds_lock_ = false;
    epoch_ = 0;
    return false;
  }
  seen();
  return true;
}

void MariadbLease::resign() {
  std::lock_guard lock(mu_);
  if (epoch_ == 0) return;
  try {
    db_->run_with(
        "UPDATE shepherd_leader SET expires_at = 0 WHERE id = 1 AND epoch = ? AND lease_session = "
        "CONNECTION_ID()",
        epoch_);
    db_->exec("DO RELEASE_LOCK(" + kLock + ")");
    holds_lock_ = false;
  } catch (const std::exception& e) {
    // The lease lapses on its own; a standby takes over then.
    spdlog::warn("leader lease: could not give it up at once: {}", e.what());
  }
  epoch_ = 0;
}

ClusterView MariadbLease::view() {
  std::lock_guard lock(mu_);
  auto read = [&] {
    ClusterView v;
    const auto lease =
        db_->query_with("SELECT holder, url, epoch, acquired_at, renewed_at, expires_at, " + kNow +
                        " FROM shepherd_leader WHERE id = 1");
    if (lease.empty()) throw StoreError("leader lease: no row in shepherd_leader");
    RowReader r(lease[0]);
    LeaderLease l;
    l.holder = r.text();
    l.url = r.text();
    l.epoch = r.i64();
    l.acquired_at = r.i64();
    l.renewed_at = r.i64();
    l.expires_at = r.i64();
    v.now = r.i64();
    if (l.epoch > 0) v.lease = l;
    for (const Row& row : db_->query_with(
             "SELECT name, url, version, started_at, seen_at FROM shepherd_controllers ORDER BY "
             "name")) {
      RowReader c(row);
      ControllerSeen s;
      s.controller.name = c.text();
      s.controller.url = c.text();
      s.controller.version = c.text();
      s.started_at = c.i64();
      s.seen_at = c.i64();
      v.controllers.push_back(std::move(s));
    }
    return v;
  };
  try {
    return read();
  } catch (const mariadb::Error& e) {
    if (!e.connection_lost()) throw;
    db_->reconnect();
    holds_lock_ = false;
    if (epoch_ != 0 && !renew_on_new_connection())
      spdlog::warn("leader lease: lost with the connection");
    return read();
  }
}

}  // namespace shepherd
