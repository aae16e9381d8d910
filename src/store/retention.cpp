#include "store/retention.hpp"

#include <spdlog/spdlog.h>

namespace shepherd {

RetentionPruner::RetentionPruner(RetentionPolicy policy, Pass pass)
    : policy_(policy), pass_(std::move(pass)), thread_([this] { run(); }) {}

RetentionPruner::~RetentionPruner() {
  stopping_ = true;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

PruneCounts RetentionPruner::pruned() const {
  std::lock_guard lock(mutex_);
  return pruned_;
}

long RetentionPruner::passes() const {
  std::lock_guard lock(mutex_);
  return passes_;
}

void RetentionPruner::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (wake_.wait_for(lock, std::chrono::milliseconds(policy_.interval_ms),
                       [this] { return stop_; }))
      return;
    lock.unlock();
    PruneCounts n;
    try {
      n = pass_(stopping_);
      if (n.events + n.timeline > 0)
        spdlog::debug("retention: {} event keys and {} timeline entries removed", n.events,
                      n.timeline);
    } catch (const std::exception& e) {
      spdlog::warn("retention pass failed (tried again at the next): {}", e.what());
    }
    lock.lock();
    pruned_.events += n.events;
    pruned_.timeline += n.timeline;
    ++passes_;
  }
}

}  // namespace shepherd
