#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
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

// Runs a store's retention pass on a thread of its own, every interval_ms; the pass gets a flag
// that is set when the pruner stops (it checks it between chunks).
class RetentionPruner {
 public:
  using Pass = std::function<PruneCounts(const std::atomic<bool>& stop)>;
  RetentionPruner(RetentionPolicy policy, Pass pass);
  ~RetentionPruner();
  RetentionPruner(const RetentionPruner&) = delete;
  RetentionPruner& operator=(const RetentionPruner&) = delete;

  PruneCounts pruned() const;  // in total so far
  long passes() const;

 private:
  void run();

  RetentionPolicy policy_;
  Pass pass_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<bool> stopping_{false};  // read between chunks, without the lock
  PruneCounts pruned_;
  long passes_ = 0;
  std::thread thread_;  // last: started when the rest is ready
};

}  // namespace shepherd
