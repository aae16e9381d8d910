#pragma once
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace shepherd {

// How long the event keys (the idempotency record) and the timeline are kept. Ages count back
// from the newest row, not from a clock: the store needs none, and a simulation's virtual times
// prune the same way. A repeat of an event older than its key's retention is no longer recognised
// as a repeat (the engine still ignores results of operations that are over).
struct RetentionPolicy {
  double events_max_age = 30 * 86400.0;  // seconds
  std::int64_t events_max_rows = 5'000'000;
  double timeline_max_age = 90 * 86400.0;  // seconds
  std::int64_t timeline_max_rows = 5'000'000;
  int interval_ms = 60'000;  // between background passes (0: no background pruning)
  int chunk_rows = 2000;     // rows per delete transaction: how long a commit may wait for one
};

struct PruneCounts {
  std::int64_t events = 0;
  std::int64_t timeline = 0;
};

// One pass on `db`: deletes what the policy no longer keeps, oldest first, `chunk_rows` rows per
// transaction, so a commit on another connection waits at most one chunk.
// `stop`, when given and set, ends the pass between chunks.
PruneCounts prune_sqlite(SQLite::Database& db, const RetentionPolicy& policy,
                         const std::atomic<bool>* stop = nullptr);

// Prunes a file database on a thread and connection of its own, every interval_ms.
class RetentionPruner {
 public:
  RetentionPruner(const std::string& path, RetentionPolicy policy, int busy_timeout_ms);
  ~RetentionPruner();
  RetentionPruner(const RetentionPruner&) = delete;
  RetentionPruner& operator=(const RetentionPruner&) = delete;

  PruneCounts pruned() const;  // in total so far
  long passes() const;

 private:
  void run();

  SQLite::Database connection_;
  RetentionPolicy policy_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<bool> stopping_{false};  // read between chunks, without the lock
  PruneCounts pruned_;
  long passes_ = 0;
  std::thread thread_;  // last: started when the rest is ready
};

}  // namespace shepherd
