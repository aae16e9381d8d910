#include "api/views.hpp"

namespace shepherd::api {

using nlohmann::json;

json to_json(const Job& j) {
  return {{"id", j.id},
          {"status", to_string(j.status)},
          {"retry", j.attempt},
          {"num_nodes", j.num_nodes},
          {"assigned_nodes", j.assigned_nodes},
          {"submitted_task_ids", j.submitted_task_ids},
          {"cluster_name", j.cluster_name},
          {"job_timestamp", j.job_timestamp},
          {"task_definition",
           {{"name", j.task_definition.name},
            {"revision", j.task_definition.revision},
            {"ref", j.task_definition.ref}}},
          {"reason", j.reason},
          {"updated_at", j.updated_at}};
}

json to_json(const Task& t) {
  return {{"id", t.id},
          {"job_id", t.job_id},
          {"node_name", t.node_name},
          {"node_index", t.node_index},
          {"retry", t.attempt},
          {"status", to_string(t.status)},
          {"started", t.started},
          {"exit_code", t.exit_code ? json(*t.exit_code) : json(nullptr)},
          {"reason", t.reason},
          {"updated_at", t.updated_at}};
}

json to_json(const Node& n) {
  json out = {{"name", n.name},
              {"status", to_string(n.status)},
              {"job_id", n.job_id},
              {"ip", n.ip},
              {"ibdev", n.ibdev},
              {"gpus", n.gpus},
              {"boot_id", n.boot_id},
              {"last_verdict", to_string(n.last_verdict)},
              {"last_diagnostic", nullptr},
              {"node_type", n.node_type},
              {"gpu_type", n.gpu_type},
              {"driver_version", n.driver_version},
              {"node_pool", n.node_pool},
              {"locked", n.locked},
              {"reason", n.reason},
              {"updated_at", n.updated_at}};
  // Kept as the agent's parsed report; shown as JSON, or null when none (or unreadable).
  if (!n.last_diagnostic.empty()) {
    json report = json::parse(n.last_diagnostic, nullptr, false);
    if (!report.is_discarded()) out["last_diagnostic"] = std::move(report);
  }
  return out;
}

json error_json(std::string_view code, const std::string& field, const std::string& message) {
  return {{"error", {{"code", code}, {"field", field}, {"message", message}}}};
}

json error_json(const Rejection& r) {
  return error_json(to_string(r.code), r.field, r.message);
}

int http_status(const Rejection& r) {
  if (r.code == RejectionCode::NotFound) return 404;
  if (r.code == RejectionCode::Conflict) return 409;
  return 400;
}

nlohmann::json to_json(const PendingAction& p) {
  const Action& a = p.action;
  return {{"id", a.id},
          {"kind", to_string(a.kind)},
          {"node", a.node},
          {"job_id", a.job_id},
          {"task_id", a.task_id},
          {"payload", payload_json(a)},
          {"created_at", a.created_at},
          {"attempts", p.attempts},
          {"last_error", p.last_error},
          {"dead_at", p.dead_at}};
}

}  // namespace shepherd::api
