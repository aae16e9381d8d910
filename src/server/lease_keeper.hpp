#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "store/leadership.hpp"

namespace shepherd::server {

// Keeps the leader's lease: renews it every third of its ttl on a thread of its own, and tells by
// this machine's steady clock whether it surely still holds (the last renewal that succeeded was
// sent less than the ttl, less a margin for clock rates, ago). A pause of the process (SIGSTOP, a
// stalled VM) counts: after it, holds() is false until a renewal succeeds. When the lease is lost
// (another controller took it, or it lapsed), `on_lost` runs once, on the keeper's thread.
class LeaseKeeper {
 public:
  // `since`: when the lease was won (the campaign's send time): it holds for a ttl from then.
  LeaseKeeper(Leadership& leadership, std::function<void(const std::string& why)> on_lost,
              std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now());
  ~LeaseKeeper();  // stop()
  // No renewal after this, and holds() is false (a leader that is done, or being torn down).
  void stop();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Any thread: the leader may act (hand an action to an agent) now.
  bool holds() const;

 private:
  void keep();
  std::chrono::steady_clock::duration margin() const;

  Leadership& leadership_;
  std::function<void(const std::string&)> on_lost_;
  std::atomic<std::chrono::steady_clock::rep> valid_until_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace shepherd::server
