#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "domain/decision.hpp"

namespace shepherd {

// What an operator is told: the payload of a notify action, flattened. The id is the action's id,
// stable across repeats, so receivers can drop a notification they have already seen.
struct Notification {
  std::string id;
  std::string kind;  // job_failed, node_failed or reboot_timeout
  std::string job;   // "" when no job is involved
  std::vector<std::string> nodes;
  std::string reason;
  int attempt = 0;
  TimeMs at = 0;
};

// Throws std::invalid_argument if the action is not a notify action: retrying would not help.
// Missing payload keys take their empty values; a key of the wrong type is treated as missing.
Notification from_action(const Action& action);

// The webhook body: {"id","kind","job","nodes","reason","attempt","at"}, "at" in milliseconds.
nlohmann::json to_json(const Notification& n);

// Where notifications go. send() throws DeliveryError (domain/ports.hpp) when it could not deliver.
class NotificationSink {
 public:
  virtual ~NotificationSink() = default;
  virtual void send(const Notification& n) = 0;
  // Used in logs and errors; never contains a secret.
  virtual std::string_view name() const = 0;
};

}  // namespace shepherd
