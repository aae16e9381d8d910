#include "notify/sinks.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace shepherd {
namespace {

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

}  // namespace

void LogSink::send(const Notification& n) {
  std::string line = "notification " + n.kind;
  if (!n.job.empty()) line += " job=" + n.job;
  if (!n.nodes.empty()) line += " nodes=" + join(n.nodes, ",");
  line += " attempt=" + std::to_string(n.attempt);
  if (!n.reason.empty()) line += " reason=\"" + n.reason + "\"";
  line += " (id " + n.id + ", at " + std::to_string(n.at) + " ms)";
  spdlog::warn("{}", line);
}

void RecordingSink::send(const Notification& n) {
  std::lock_guard lock(mu_);
  if (failing_) throw DeliveryError(name_ + ": failing on purpose");
  sent_.push_back(n);
}

std::vector<Notification> RecordingSink::sent() const {
  std::lock_guard lock(mu_);
  return sent_;
}

void RecordingSink::clear() {
  std::lock_guard lock(mu_);
  sent_.clear();
}

void RecordingSink::set_failing(bool failing) {
  std::lock_guard lock(mu_);
  failing_ = failing;
}

FanoutNotifier::FanoutNotifier(std::vector<std::shared_ptr<NotificationSink>> sinks) {
  for (auto& sink : sinks) add(std::move(sink));
}

void FanoutNotifier::add(std::shared_ptr<NotificationSink> sink) {
  if (!sink) throw std::invalid_argument("FanoutNotifier: null sink");
  sinks_.push_back(std::move(sink));
}

void FanoutNotifier::deliver(const Action& action) {
  const Notification n = from_action(action);
  std::vector<std::string> failed;
  bool all_permanent = true;
  for (const auto& sink : sinks_) {
    // Every sink gets its try even after one fails, so one broken receiver does not silence the
    // others. Sinks keep secrets out of their messages, so what() is safe to pass on.
    try {
      sink->send(n);
    } catch (const std::exception& e) {
      all_permanent = all_permanent && dynamic_cast<const PermanentDeliveryError*>(&e);
      spdlog::warn("notification {}: sink {} failed: {}", n.id, sink->name(), e.what());
      failed.push_back(std::string(sink->name()) + " (" + e.what() + ")");
    }
  }
  if (failed.empty()) return;
  // Retried while any sink may yet take it (the others see the same id again, harmlessly).
  const std::string what = "notification " + n.id + " not delivered by " + join(failed, ", ");
  if (all_permanent) throw PermanentDeliveryError(what);
  throw DeliveryError(what);
}

}  // namespace shepherd
