#pragma once
#include <string>
#include <variant>
#include <vector>

#include "domain/decision.hpp"
#include "domain/model.hpp"

namespace shepherd {

// A user (API, CLI, scenario) submits a job: either named nodes or a count of free ones.
struct JobSubmitted {
  std::string job_id;
  std::vector<std::string> nodes;
  int node_count = 0;
  TaskDefinition task_definition;
};

struct JobStopRequested {
  std::string job_id;
  std::string requested_by;
};

// `node` is who reported it ("" from a source that cannot be wrong about it, the simulator): an
// agent's report about a task that is not its node's is ignored.
struct TaskStarted {
  std::string task_id;
  std::string node;
};

struct TaskExited {
  std::string task_id;
  int exit_code = 0;
  int signal = 0;  // the signal that ended the process, 0 if it exited
  std::string node;
  // The node's agent restarted under the task and ended it (or found it ended, its exit code
  // unseen): no verdict on the task's code.
  bool interrupted = false;
};

struct DiagnosticStarted {
  std::string node;
  std::string operation_id;
};

struct DiagnosticFinished {
  std::string node;
  std::string operation_id;
  Verdict verdict = Verdict::Inconclusive;
  std::string detail;  // e.g. "gpu 3: Diagnostic/memtest: fail (DCGM error 83)"
  std::string report;  // the parsed report, JSON text (per GPU and test); "" if none
};

// A node agent (re)registers. A boot id other than the last one proves the node rebooted.
struct NodeRegistered {
  std::string node;
  std::string boot_id;
  std::string ip;
  std::string ibdev;
  int gpus = 0;
  std::string gpu_type;        // "" : not reported (the simulator)
  std::string driver_version;  // "" : not reported
};

// Heartbeats stopped for longer than the policy's heartbeat_timeout.
struct NodeLost {
  std::string node;
};

// The deadline of a node's operation in flight passed: a diagnostic, a reboot, or a lost node's
// return.
struct OperationTimedOut {
  std::string node;
  std::string operation_id;
};

// An operator returns a FAILED node to service after repairing it.
struct NodeRepaired {
  std::string node;
  std::string requested_by;
};

// A node refused an action for good (its agent answered that it cannot carry it out: no dcgmi, a
// command that cannot be executed). The action is a dead letter; the engine decides what its
// operation becomes instead of waiting out the operation's deadline.
struct ActionFailed {
  std::string node;
  std::string action_id;  // the operation id of a start, diagnostic or reboot
  ActionKind kind = ActionKind::Notify;
  std::string error;
};

// The kernel logged an NVIDIA Xid on the node (its agent follows the kernel log), classified by
// the Xid catalogue. A reboot- or reset-class Xid under a running task starts the job's recovery
// at once: the task would crash or hang on that GPU anyway.
struct XidReported {
  std::string node;
  int xid = 0;
  std::string pci;     // the GPU's PCI address
  std::string action;  // the catalogue's resolution: RESTART_BM, RESET_GPU, RESTART_APP, ...
  std::string message;
  std::string boot_id;  // the boot the line was logged in; "" if not known
};

using EventBody = std::variant<JobSubmitted, JobStopRequested, TaskStarted, TaskExited,
                               DiagnosticStarted, DiagnosticFinished, NodeRegistered, NodeLost,
                               OperationTimedOut, NodeRepaired, ActionFailed, XidReported>;

struct Event {
  std::string key;  // idempotency key: a second event with the same key is recorded and ignored
  TimeMs at = 0;
  EventBody body;
};

std::string_view event_kind(const EventBody& body);

}  // namespace shepherd
