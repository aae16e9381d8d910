#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "domain/ports.hpp"

namespace shepherd {

// Delivers notifications on a thread of its own, one at a time in the order they were handed
// over, so a slow receiver (a webhook's timeouts and retries) never holds up the controller's loop.
// notify() only queues. What is queued when it is destroyed is not reported: those actions are
// still owed in the store's outbox and delivered by the next start.
class BackgroundNotifier final : public Notifier {
 public:
  explicit BackgroundNotifier(std::shared_ptr<ImmediateNotifier> inner);
  ~BackgroundNotifier() override;
  BackgroundNotifier(const BackgroundNotifier&) = delete;
  BackgroundNotifier& operator=(const BackgroundNotifier&) = delete;

  void notify(const Action& action, DeliveryCallback done) override;
  std::size_t queued() const;

 private:
  void work(std::stop_token stop);

  std::shared_ptr<ImmediateNotifier> inner_;
  mutable std::mutex mu_;
  std::condition_variable_any ready_;
  std::deque<std::pair<Action, DeliveryCallback>> queue_;
  std::jthread worker_;  // last: stopped and joined before the rest goes
};

}  // namespace shepherd
