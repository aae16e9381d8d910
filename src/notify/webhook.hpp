#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "notify/notification.hpp"

namespace shepherd {

struct WebhookOptions {
  // http://host[:port][/path][?query], or https:// when httplib has OpenSSL support. A SECRET
  // (it often embeds a token): it never appears in a log line or an error message.
  std::string url;
  std::string display_name = "webhook";     // what logs and errors call this sink
  int attempts = 3;                         // per send(), at least 1
  std::chrono::milliseconds backoff{200};   // before the 2nd attempt; doubles after each
  std::chrono::milliseconds timeout{5000};  // connect, read and write, per request
  // How to wait between attempts; tests inject one that only records. Empty: sleep_for.
  std::function<void(std::chrono::milliseconds)> sleep;
};

// POSTs the notification as JSON with "Idempotency-Key: <notification id>": the outbox may send a
// notification again after a crash or a failed fan-out, and receivers use the key to drop repeats.
// 2xx: delivered. 4xx other than 408/429, and 3xx (redirects are not followed, so the body and
// key never go to a host that was not configured): refused, DeliveryError at once. 408, 429, 5xx
// and network errors: retried with backoff, then DeliveryError.
class WebhookSink final : public NotificationSink {
 public:
  // Throws std::invalid_argument for a malformed URL or bad options; the message never echoes
  // the URL.
  explicit WebhookSink(WebhookOptions options);
  void send(const Notification& n) override;
  std::string_view name() const override { return options_.display_name; }

 private:
  WebhookOptions options_;
  std::string origin_;  // scheme://host:port, for httplib
  std::string path_;    // path and query: the part that usually holds the token
};

}  // namespace shepherd
