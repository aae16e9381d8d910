#include "notify/background_notifier.hpp"

#include <spdlog/spdlog.h>

namespace shepherd {

BackgroundNotifier::BackgroundNotifier(std::shared_ptr<ImmediateNotifier> inner)
    : inner_(std::move(inner)), worker_([this](std::stop_token stop) { work(stop); }) {}

BackgroundNotifier::~BackgroundNotifier() {
  worker_.request_stop();
  ready_.notify_all();
}

void BackgroundNotifier::notify(const Action& action, DeliveryCallback done) {
  {
    std::lock_guard lock(mu_);
    // Handed over again while still queued (a retry after a restart): one send, the newest answer.
    for (auto& queued : queue_)
      if (queued.first.id == action.id) {
        queued.second = std::move(done);
        return;
      }
    queue_.emplace_back(action, std::move(done));
  }
  ready_.notify_one();
}

std::size_t BackgroundNotifier::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void BackgroundNotifier::work(std::stop_token stop) {
  while (true) {
    std::pair<Action, DeliveryCallback> next;
    {
      std::unique_lock lock(mu_);
      if (!ready_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      if (stop.stop_requested()) return;  // what is queued stays owed in the outbox
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      report_now([&] { inner_->deliver(next.first); }, next.second);
    } catch (const std::exception& e) {
      // A sink's bug: reported as a transient failure so the action is tried again, not lost.
      spdlog::error("notification {}: unexpected error: {}", next.first.id, e.what());
      next.second(DeliveryResult::failed(std::string("unexpected error: ") + e.what()));
    }
  }
}

}  // namespace shepherd
