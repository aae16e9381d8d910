#include "domain/decision.hpp"

#include <array>
#include <utility>

#include "common/enum_names.hpp"
#include "domain/events.hpp"

namespace shepherd {
namespace {
constexpr EnumNames<Entity, 3> kEntityNames{{
    {Entity::Job, "job"},
    {Entity::Task, "task"},
    {Entity::Node, "node"},
}};

constexpr EnumNames<RejectionCode, 3> kRejectionNames{{
    {RejectionCode::Invalid, "invalid"},
    {RejectionCode::NotFound, "not_found"},
    {RejectionCode::Conflict, "conflict"},
}};

constexpr EnumNames<ActionKind, 5> kActionNames{{
    {ActionKind::StartTask, "start_task"},
    {ActionKind::StopTask, "stop_task"},
    {ActionKind::RunDiagnostic, "run_diagnostic"},
    {ActionKind::Reboot, "reboot"},
    {ActionKind::Notify, "notify"},
}};
}  // namespace

std::string notify_payload(std::string_view kind, const std::string& job_id,
                           const std::vector<std::string>& nodes, const std::string& reason,
                           int attempt) {
  return nlohmann::json{
      {"kind", kind}, {"job", job_id}, {"nodes", nodes}, {"reason", reason}, {"attempt", attempt}}
      .dump();
}

nlohmann::json payload_json(const Action& action) {
  auto p = nlohmann::json::parse(action.payload, nullptr, /*allow_exceptions=*/false);
  return p.is_object() ? p : nlohmann::json::object();
}

std::string_view to_string(Entity e) {
  return name_of(kEntityNames, e);
}

std::optional<Entity> parse_entity(std::string_view s) {
  return value_of(kEntityNames, s);
}

std::string_view to_string(RejectionCode c) {
  return name_of(kRejectionNames, c);
}

std::string_view to_string(ActionKind k) {
  return name_of(kActionNames, k);
}

std::optional<ActionKind> parse_action_kind(std::string_view s) {
  return value_of(kActionNames, s);
}

std::string_view event_kind(const EventBody& body) {
  struct Names {
    std::string_view operator()(const JobSubmitted&) const { return "job_submitted"; }
    std::string_view operator()(const JobStopRequested&) const { return "job_stop_requested"; }
    std::string_view operator()(const TaskStarted&) const { return "task_started"; }
    std::string_view operator()(const TaskExited&) const { return "task_exited"; }
    std::string_view operator()(const DiagnosticStarted&) const { return "diagnostic_started"; }
    std::string_view operator()(const DiagnosticFinished&) const { return "diagnostic_finished"; }
    std::string_view operator()(const NodeRegistered&) const { return "node_registered"; }
    std::string_view operator()(const NodeLost&) const { return "node_lost"; }
    std::string_view operator()(const OperationTimedOut&) const { return "operation_timed_out"; }
    std::string_view operator()(const NodeRepaired&) const { return "node_repaired"; }
    std::string_view operator()(const ActionFailed&) const { return "action_failed"; }
    std::string_view operator()(const XidReported&) const { return "xid_reported"; }
  };
  return std::visit(Names{}, body);
}

}  // namespace shepherd
