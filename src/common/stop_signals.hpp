#pragma once
// SIGINT and SIGTERM for a daemon, handled on a thread of their own: the signals are blocked in
// every thread and one thread waits for them (sigwait), so the stop runs as ordinary code. A
// signal handler may not lock a mutex or wake a condition variable; a stop() does both.
#include <atomic>
#include <csignal>
#include <functional>
#include <mutex>
#include <thread>

namespace shepherd {

class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in this thread and so in every thread it starts afterwards:
  // construct it before the daemon starts any thread. Processes spawned later must unblock them
  // (the agent's spawns do: init_own_group_spawn).
  StopSignals();
  // Unblocks the signals again; a signal that arrived and found no callback is then delivered as
  // usual.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Called on the waiting thread at each SIGINT or SIGTERM (one at a time). Set it once the
  // daemon exists; a signal before that is remembered and runs it as soon as it is set.
  void on_stop(std::function<void()> stop);

 private:
  void wait_loop();

  sigset_t set_{};
  sigset_t previous_{};
  std::mutex mu_;
  std::function<void()> stop_;
  bool signalled_ = false;
  std::atomic<bool> closing_{false};
  std::thread waiter_;
};

}  // namespace shepherd
