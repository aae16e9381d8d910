#pragma once
#include <stdexcept>
#include <string>

#include "domain/decision.hpp"

namespace shepherd {

// Why an action could not be carried out now; it stays in the outbox and is tried again, with a
// backoff.
class DeliveryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why an action will never be carried out however often it is tried (a webhook's 4xx, a payload
// its receiver refuses): it becomes a dead letter, kept for an operator.
class PermanentDeliveryError : public DeliveryError {
 public:
  using DeliveryError::DeliveryError;
};

// The cluster side: real node agents, or the simulator. Every call must be safe to repeat with the
// same action id (the dispatcher sends again after a crash): a repeat of an id already carried out
// is acknowledged and does nothing.
class ClusterDriver {
 public:
  virtual ~ClusterDriver() = default;
  // start_task, stop_task, run_diagnostic or reboot. Throws DeliveryError if it could not be
  // delivered.
  virtual void execute(const Action& action) = 0;
};

// Where notify actions go (the seeds' SNS). Throws DeliveryError if no sink took it.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const Action& action) = 0;
};

}  // namespace shepherd
