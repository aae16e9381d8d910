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
  // Unblocks the signals again; one that arrives in between is delivered as usual.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // While it lives, each SIGINT or SIGTERM calls `stop` on the waiting thread (one call at a
  // time); a signal that came before is remembered and calls it at once. Its destructor waits for
  // a call in flight, so declare it after the daemon it stops: it is gone before the daemon is,
  // on every path out, exceptions included.
  class Registration {
   public:
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    friend class StopSignals;
    explicit Registration(StopSignals& owner) : owner_(owner) {}
    StopSignals& owner_;
  };
  [[nodiscard]] Registration on_stop(std::function<void()> stop);

 private:
  void wait_loop();
  void set(std::function<void()> stop);

  sigset_t set_{};
  sigset_t previous_{};
  std::mutex mu_;       // stop_ and signalled_
  std::mutex call_mu_;  // held while stop_ runs: clearing it waits for the call to end
  std::function<void()> stop_;
  bool signalled_ = false;
  std::atomic<bool> closing_{false};
  std::thread waiter_;
};

}  // namespace shepherd
