#pragma once
// The agent protocol, version 1 (docs/agent-protocol.md): JSON text frames over one TLS WebSocket
// per agent at kAgentPath. Pure: encoding and strict decoding, no I/O.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace shepherd::protocol {

inline constexpr int kVersion = 1;
inline constexpr std::string_view kAgentPath = "/agent/v1";
inline constexpr std::string_view kEnrolPath = "/agent/v1/enrol";
// A standby controller refuses an agent with 503 and names the leader's URL in this header.
inline constexpr std::string_view kLeaderHeader = "X-Shepherd-Leader";
// A frame larger than this is refused (a diagnostic report is the largest message).
inline constexpr std::size_t kMaxFrameBytes = 1u << 20;

// A message that is not valid JSON, names an unknown type or version, or lacks a field.
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(std::string field, const std::string& message)
      : std::runtime_error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// ---- agent to server ----

// The first frame on every connection: who the node is, as it is now.
struct Hello {
  std::string node;
  std::string boot_id;
  std::string ip;
  std::string ibdev;  // InfiniBand devices, comma-separated
  int gpus = 0;
  std::string gpu_type;
  std::string driver_version;
  std::string agent_version;
};

enum class ReportKind { TaskStarted, TaskExited, DiagnosticStarted, DiagnosticFinished, Xid };
std::string_view to_string(ReportKind k);

// Something that happened on the node. `id` is the agent's, unique and kept with the report until
// the server acknowledges it, so a report sent twice (after a reconnect) is recognised.
struct Report {
  std::string id;
  ReportKind kind = ReportKind::TaskStarted;
  std::string task_id;        // task_started, task_exited
  int exit_code = 0;          // task_exited
  int signal = 0;             // task_exited: the signal that ended it, 0 if it exited
  bool interrupted = false;   // task_exited: the agent restarted under it (sent only when true)
  std::string operation_id;   // diagnostic_*: the run_diagnostic action's id
  std::string verdict;        // diagnostic_finished: pass, fail, inconclusive
  std::string detail;         // diagnostic_finished: one line for the timeline
  nlohmann::json diagnostic;  // diagnostic_finished: the parsed report (health::DiagReport)
  int xid = 0;                // xid
  std::string pci;            // xid: the GPU's PCI address
  std::string xid_action;     // xid: the catalogue's resolution (RESTART_BM, ...)
  std::string message;        // xid: the kernel's line
  std::string boot_id;        // xid: the boot it was logged in (a spooled one may be older)
};

struct Heartbeat {};

// The agent's answer to an action: accepted (ok), or refused, for now or for good (`permanent`:
// no such command on this node, a payload it cannot run).
struct ActionAck {
  std::string action_id;
  bool ok = true;
  bool permanent = false;
  std::string error;
};

// The answer to a LogRequest: a piece of a task's log (bytes that are not UTF-8 are replaced).
struct LogData {
  std::string request_id;
  std::string data;
  std::uint64_t next_offset = 0;
  bool ended = false;  // the task is not running: nothing more will be written
  std::string error;   // no such log
};

using AgentMessage = std::variant<Hello, Report, Heartbeat, ActionAck, LogData>;

// ---- server to agent ----

struct Welcome {
  std::string node;
  int heartbeat_seconds = 10;
};

// An action of the engine's outbox (domain Action), for this node. Its id is stable: a repeat is
// recognised by the agent and acknowledged without being carried out again.
struct ActionRequest {
  std::string id;
  std::string kind;  // start_task, stop_task, run_diagnostic, reboot
  std::string job_id;
  std::string task_id;
  nlohmann::json payload = nlohmann::json::object();
};

// The server committed a report: the agent may forget it.
struct ReportAck {
  std::string report_id;
};

// Asks for up to max_bytes of a task's log from offset.
struct LogRequest {
  std::string request_id;
  std::string task_id;
  std::uint64_t offset = 0;
  std::uint64_t max_bytes = 64 << 10;
};

using ServerMessage = std::variant<Welcome, ActionRequest, ReportAck, LogRequest>;

std::string encode(const AgentMessage& m);
std::string encode(const ServerMessage& m);
// Throw ProtocolError naming the field at fault.
AgentMessage decode_agent_message(std::string_view text);
ServerMessage decode_server_message(std::string_view text);

}  // namespace shepherd::protocol
