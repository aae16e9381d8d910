#include "common/stop_signals.hpp"

#include <pthread.h>

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

StopSignals::Registration StopSignals::on_stop(std::function<void()> stop) {
  set(std::move(stop));
  return Registration(*this);
}

StopSignals::Registration::~Registration() {
  owner_.set(nullptr);
}

void StopSignals::set(std::function<void()> stop) {
  std::lock_guard call(call_mu_);  // a call in flight ends first
  bool run_now = false;
  {
    std::lock_guard lock(mu_);
    stop_ = std::move(stop);
    run_now = signalled_ && stop_;
  }
  if (run_now) stop_();
}

void StopSignals::wait_loop() {
  while (true) {
    int signal = 0;
    if (sigwait(&set_, &signal) != 0) continue;
    if (closing_) return;
    std::lock_guard call(call_mu_);
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
