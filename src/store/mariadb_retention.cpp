#include <algorithm>

#include "common/clock.hpp"
#include "store/mariadb_store.hpp"

namespace shepherd {
namespace {

using mariadb::Connection;
using mariadb::RowReader;

std::optional<std::int64_t> one_integer(Connection& db, const std::string& sql,
                                        std::vector<mariadb::Value> params = {}) {
  auto rows = db.query(sql, params);
  if (rows.empty() || !rows[0].at(0)) return std::nullopt;
  return RowReader(rows[0]).i64();
}

// Deletes `chunk` rows at a time (each statement its own transaction: autocommit) until one comes
// back short, so a commit on another connection waits at most one chunk.
std::int64_t delete_in_chunks(Connection& db, const std::string& sql, std::int64_t bound, int chunk,
                              const std::atomic<bool>* stop) {
  std::int64_t total = 0;
  while (!(stop && *stop)) {
    const auto n = static_cast<std::int64_t>(db.run_with(sql, bound, std::int64_t{chunk}));
    total += n;
    if (n < chunk) break;
  }
  return total;
}

}  // namespace

// The SQLite store's rules (sqlite_retention.cpp): ages count back from the newest row, the count
// keeps the newest rows, oldest deleted first.
PruneCounts prune_mariadb(Connection& db, const RetentionPolicy& p, const std::atomic<bool>* stop) {
  PruneCounts out;
  if (const auto newest = one_integer(db, "SELECT MAX(at) FROM shepherd_events")) {
    std::int64_t cutoff = *newest - seconds(p.events_max_age);
    if (const auto oldest_kept =
            one_integer(db, "SELECT at FROM shepherd_events ORDER BY at DESC LIMIT 1 OFFSET ?",
                        {std::max<std::int64_t>(0, p.events_max_rows - 1)}))
      cutoff = std::max(cutoff, *oldest_kept);
    out.events =
        delete_in_chunks(db, "DELETE FROM shepherd_events WHERE at < ? ORDER BY at LIMIT ?", cutoff,
                         p.chunk_rows, stop);
  }
  if (const auto last = one_integer(db, "SELECT MAX(seq) FROM shepherd_timeline")) {
    std::int64_t keep_from = *last - p.timeline_max_rows + 1;
    if (const auto newest_at =
            one_integer(db, "SELECT at FROM shepherd_timeline WHERE seq = ?", {*last})) {
      const std::int64_t cutoff = *newest_at - seconds(p.timeline_max_age);
      const auto young = one_integer(
          db, "SELECT seq FROM shepherd_timeline WHERE at >= ? ORDER BY seq LIMIT 1", {cutoff});
      keep_from = std::max(keep_from, young.value_or(*last));
    }
    out.timeline =
        delete_in_chunks(db, "DELETE FROM shepherd_timeline WHERE seq < ? ORDER BY seq LIMIT ?",
                         keep_from, p.chunk_rows, stop);
  }
  return out;
}

std::unique_ptr<RetentionPruner> mariadb_pruner(const mariadb::Endpoint& endpoint,
                                                RetentionPolicy policy) {
  auto db = std::make_shared<Connection>(endpoint);
  return std::make_unique<RetentionPruner>(policy, [db, policy](const std::atomic<bool>& stop) {
    try {
      return prune_mariadb(*db, policy, &stop);
    } catch (const mariadb::Error& e) {
      if (e.connection_lost()) db->reconnect();  // for the next pass
      throw;
    }
  });
}

}  // namespace shepherd
