#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "domain/ports.hpp"
#include "notify/notification.hpp"

namespace shepherd {

// One readable warn-level line per notification through spdlog's default logger: the operator
// sees failures in the server log even when no webhook is configured.
class LogSink final : public NotificationSink {
 public:
  void send(const Notification& n) override;
  std::string_view name() const override { return "log"; }
};

// Keeps what it was sent, for the simulator and tests. set_failing(true) makes send() throw
// DeliveryError (without recording) so callers can exercise their retry paths.
class RecordingSink final : public NotificationSink {
 public:
  explicit RecordingSink(std::string name = "recording") : name_(std::move(name)) {}
  void send(const Notification& n) override;
  std::string_view name() const override { return name_; }

  std::vector<Notification> sent() const;  // a copy: send() may run on another thread
  void clear();
  void set_failing(bool failing);

 private:
  std::string name_;
  mutable std::mutex mu_;
  std::vector<Notification> sent_;
  bool failing_ = false;
};

// The Notifier port over a set of sinks, on the caller's thread (BackgroundNotifier moves it off
// the controller's). deliver() succeeds only if every sink took the
// notification; otherwise it throws DeliveryError naming the sinks that failed, and the action
// stays in the outbox. The retry then goes to *every* sink again, so sinks that already took it
// see a repeat: they get the same notification id (the webhook sends it as Idempotency-Key) and
// receivers drop what they have seen. A log sink simply logs the line twice.
// With no sinks, deliver() has nothing to do and succeeds.
class FanoutNotifier final : public ImmediateNotifier {
 public:
  FanoutNotifier() = default;
  explicit FanoutNotifier(std::vector<std::shared_ptr<NotificationSink>> sinks);
  void add(std::shared_ptr<NotificationSink> sink);
  const std::vector<std::shared_ptr<NotificationSink>>& sinks() const { return sinks_; }

  // Throws std::invalid_argument if the action is not a notify action.
  void deliver(const Action& action) override;

 private:
  std::vector<std::shared_ptr<NotificationSink>> sinks_;
};

}  // namespace shepherd
