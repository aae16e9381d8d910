#include "common/stop_signals.hpp"

#include <pthread.h>

#include <mutex>

namespace shepherd {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  waiter_ = std::thread([this] { wait_loop(); });
}

StopSignals::~StopSignals() {
  closing_ = true;
  pthread_kill(waiter_.native_handle(), SIGTERM);  // wakes its sigwait; it sees closing_
  waiter_.join();
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

void StopSignals::on_stop(std::function<void()> stop) {
  std::unique_lock lock(mu_);
  stop_ = std::move(stop);
  if (!signalled_ || !stop_) return;
  auto run = stop_;
  lock.unlock();
  run();
}

void StopSignals::wait_loop() {
  while (true) {
    int signal = 0;
    if (sigwait(&set_, &signal) != 0) continue;
    if (closing_) return;
    std::function<void()> run;
    {
      std::lock_guard lock(mu_);
      signalled_ = true;
      run = stop_;
    }
    if (run) run();
  }
}

}  // namespace shepherd
