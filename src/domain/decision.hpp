#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "domain/model.hpp"

namespace shepherd {

enum class ActionKind { StartTask, StopTask, RunDiagnostic, Reboot, Notify };
std::string_view to_string(ActionKind k);
std::optional<ActionKind> parse_action_kind(std::string_view s);

// Something the engine asks the world to do. The id is unique and stable, so a repeat is harmless:
// the driver (or the receiver of a notification) recognises an id it has already carried out.
struct Action {
  std::string id;
  ActionKind kind = ActionKind::Notify;
  std::string node;
  std::string job_id;
  std::string task_id;
  // The body the driver or the notification receiver gets: the text of a JSON object. Kept as
  // text from the engine to the wire, so the outbox stores it and the dispatcher sends it unparsed.
  std::string payload = "{}";
  TimeMs created_at = 0;
};

// The payload as JSON; an empty object when it is not a JSON object (it comes from the store: a
// reader is lenient with it rather than fail an action forever).
nlohmann::json payload_json(const Action& action);

// A notify action's payload; the one shape every notification has (NotificationSink reads it).
std::string notify_payload(std::string_view kind, const std::string& job_id,
                           const std::vector<std::string>& nodes, const std::string& reason,
                           int attempt);

// Notification kinds (payload "kind").
inline constexpr std::string_view kNotifyJobFailed = "job_failed";
inline constexpr std::string_view kNotifyNodeFailed = "node_failed";
inline constexpr std::string_view kNotifyRebootTimeout = "reboot_timeout";
inline constexpr std::string_view kNotifyDecisionRefused = "decision_refused";

// What a transition is of; its name ("job", "task", "node") is the timeline's `entity` column and
// the API's `kind`.
enum class Entity { Job, Task, Node };
std::string_view to_string(Entity e);
std::optional<Entity> parse_entity(std::string_view s);

struct Transition {
  Entity entity = Entity::Job;
  std::string id;
  std::string from;  // "" when the record is created
  std::string to;
  std::string reason;
  TimeMs at = 0;
};

// A command refused, with the field at fault (for an HTTP 4xx or a CLI message).
enum class RejectionCode {
  Invalid,   // "invalid": the command is malformed (HTTP 400)
  NotFound,  // "not_found": it names something that does not exist (404)
  Conflict,  // "conflict": it contradicts the current state (409)
};
std::string_view to_string(RejectionCode c);

struct Rejection {
  RejectionCode code = RejectionCode::Invalid;
  std::string field;
  std::string message;
};

// What the engine decided for one event: the records to write (each carrying the version it was
// read at, so the store can refuse a concurrent write), the transitions for the timeline, the
// actions for the outbox. Written in one transaction, or not at all.
struct Decision {
  std::vector<Job> jobs;
  std::vector<Task> tasks;
  std::vector<Node> nodes;
  std::vector<Transition> transitions;
  std::vector<Action> actions;
  std::optional<Rejection> rejection;
  // Illegal transitions the rules asked for. Not empty: the decision writes nothing else (all or
  // nothing), and the runtime counts it, logs it as an error and notifies a person.
  std::vector<std::string> refused;
  std::string note;  // why nothing changed, for the log

  bool changes_state() const { return !jobs.empty() || !tasks.empty() || !nodes.empty(); }
};

}  // namespace shepherd
