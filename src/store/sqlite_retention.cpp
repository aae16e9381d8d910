#include "store/sqlite_retention.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "common/clock.hpp"

namespace shepherd {
namespace {

std::optional<std::int64_t> one_integer(SQLite::Database& db, const char* sql, std::int64_t arg = 0,
                                        bool bind = false) {
  SQLite::Statement q(db, sql);
  if (bind) q.bind(1, arg);
  if (!q.executeStep() || q.getColumn(0).isNull()) return std::nullopt;
  return q.getColumn(0).getInt64();
}

// Deletes in chunks with `sql` (bound: ?1 the bound, ?2 the chunk size) until a chunk comes back
// short; each chunk is its own transaction.
std::int64_t delete_in_chunks(SQLite::Database& db, const char* sql, std::int64_t bound, int chunk,
                              const std::atomic<bool>* stop) {
  std::int64_t total = 0;
  SQLite::Statement del(db, sql);
  while (!(stop && *stop)) {
    del.reset();
    del.bind(1, bound);
    del.bind(2, chunk);
    const int n = del.exec();  // autocommit: one transaction per chunk
    total += n;
    if (n < chunk) return total;
  }
  return total;
}

std::int64_t prune_events(SQLite::Database& db, const RetentionPolicy& p,
                          const std::atomic<bool>* stop) {
  const auto newest = one_integer(db, "SELECT MAX(at) FROM events");
  if (!newest) return 0;
  std::int64_t cutoff = *newest - seconds(p.events_max_age);  // delete at < cutoff
  // The oldest row the count keeps; rows tied with it are kept too.
  if (const auto oldest_kept =
          one_integer(db, "SELECT at FROM events ORDER BY at DESC LIMIT 1 OFFSET ?1",
                      std::max<std::int64_t>(0, p.events_max_rows - 1), true))
    cutoff = std::max(cutoff, *oldest_kept);
  return delete_in_chunks(db,
                          "DELETE FROM events WHERE key IN "
                          "(SELECT key FROM events WHERE at < ?1 ORDER BY at LIMIT ?2)",
                          cutoff, p.chunk_rows, stop);
}

std::int64_t prune_timeline(SQLite::Database& db, const RetentionPolicy& p,
                            const std::atomic<bool>* stop) {
  const auto last = one_integer(db, "SELECT MAX(seq) FROM timeline");
  if (!last) return 0;
  // The first seq kept: by count, and by age (entries are in time order, so the first one young
  // enough is found from the oldest end, and that end is short once pruned).
  std::int64_t keep_from = *last - p.timeline_max_rows + 1;
  const auto newest_at = one_integer(db, "SELECT at FROM timeline WHERE seq = ?1", *last, true);
  if (newest_at) {
    const std::int64_t cutoff = *newest_at - seconds(p.timeline_max_age);
    const auto young = one_integer(
        db, "SELECT seq FROM timeline WHERE at >= ?1 ORDER BY seq LIMIT 1", cutoff, true);
    keep_from = std::max(keep_from, young.value_or(*last));
  }
  return delete_in_chunks(db,
                          "DELETE FROM timeline WHERE seq < MIN(?1, "
                          "(SELECT MIN(seq) FROM timeline) + ?2)",
                          keep_from, p.chunk_rows, stop);
}

}  // namespace

PruneCounts prune_sqlite(SQLite::Database& db, const RetentionPolicy& policy,
                         const std::atomic<bool>* stop) {
  PruneCounts out;
  out.events = prune_events(db, policy, stop);
  out.timeline = prune_timeline(db, policy, stop);
  return out;
}

std::unique_ptr<RetentionPruner> sqlite_pruner(const std::string& path, RetentionPolicy policy,
                                               int busy_timeout_ms) {
  auto db = std::make_shared<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                               busy_timeout_ms);
  return std::make_unique<RetentionPruner>(policy, [db, policy](const std::atomic<bool>& stop) {
    return prune_sqlite(*db, policy, &stop);
  });
}

}  // namespace shepherd
