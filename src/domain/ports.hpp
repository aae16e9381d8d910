#pragma once
#include <functional>
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

// What became of one hand-over of an action.
struct DeliveryResult {
  enum class Status { Done, Failed, FailedPermanently };
  Status status = Status::Done;
  std::string error;  // why, when it failed

  static DeliveryResult done() { return {}; }
  static DeliveryResult failed(std::string why) { return {Status::Failed, std::move(why)}; }
  static DeliveryResult failed_permanently(std::string why) {
    return {Status::FailedPermanently, std::move(why)};
  }
};

// Called exactly once per hand-over, from any thread, possibly before execute() or notify() has
// returned. Calling it after the runtime is gone is harmless. For a node's action, done() means the
// node accepted it (a diagnostic started, a reboot began), not that it finished: its outcome comes
// back as an event (DiagnosticFinished, NodeRegistered). A node's action not answered within
// kDeliveryTimeout is handed over again; a notifier must answer every hand-over itself.
using DeliveryCallback = std::function<void(DeliveryResult)>;

// The cluster side: real node agents, or the simulator. execute() hands the action over and
// returns at once (no network round trip on the caller's thread); `done` reports what became of it.
// Every hand-over must be safe to repeat with the same action id (the dispatcher sends again after
// a crash or a missing answer): a repeat of an id already carried out is reported done and does
// nothing.
class ClusterDriver {
 public:
  virtual ~ClusterDriver() = default;
  // start_task, stop_task, run_diagnostic or reboot.
  virtual void execute(const Action& action, DeliveryCallback done) = 0;
};

// Where notify actions go (the seeds' SNS). Hands over and returns, like ClusterDriver::execute.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const Action& action, DeliveryCallback done) = 0;
};

// Runs `carry_out` now and reports its outcome: DeliveryError is a failure, PermanentDeliveryError
// a permanent one; any other exception propagates (the caller's bug). For drivers and notifiers
// that finish their work before they return (the simulator, tests, the sinks behind a background
// notifier).
template <class F>
void report_now(F&& carry_out, const DeliveryCallback& done) {
  DeliveryResult result;
  try {
    carry_out();
  } catch (const PermanentDeliveryError& e) {
    result = DeliveryResult::failed_permanently(e.what());
  } catch (const DeliveryError& e) {
    result = DeliveryResult::failed(e.what());
  }
  done(std::move(result));
}

// A driver that carries each action out before it returns: it implements carry_out() and throws
// DeliveryError (or PermanentDeliveryError) when it cannot.
class ImmediateClusterDriver : public ClusterDriver {
 public:
  void execute(const Action& action, DeliveryCallback done) final {
    report_now([&] { carry_out(action); }, done);
  }

 protected:
  virtual void carry_out(const Action& action) = 0;
};

class ImmediateNotifier : public Notifier {
 public:
  void notify(const Action& action, DeliveryCallback done) final {
    report_now([&] { deliver(action); }, done);
  }
  // Delivers before returning; throws DeliveryError (or PermanentDeliveryError) when it cannot.
  virtual void deliver(const Action& action) = 0;
};

}  // namespace shepherd
