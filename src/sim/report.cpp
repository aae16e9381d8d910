// The simulator's outputs: the --json report and the readable timeline.
#include <cstdio>

#include "notify/sinks.hpp"
#include "sim/simulation.hpp"

namespace shepherd {

nlohmann::json Simulation::report() const {
  using nlohmann::json;
  const Snapshot& s = runtime().state();
  json jobs = json::object(), nodes = json::object(), tasks = json::array();
  double productive = 0, held = 0;  // node-seconds, for the effective training time ratio
  const TimeMs end = now_;
  for (const Job* j : s.jobs_by_id()) {  // ordered: the sums below must not depend on hashing
    const Job& job = *j;
    const std::string& id = job.id;
    jobs[id] = {{"status", to_string(job.status)},
                {"retry", job.attempt},
                {"nodes", job.assigned_nodes},
                {"reason", job.reason}};
    auto work = work_done_.find(id);
    double done = work == work_done_.end() ? 0.0 : work->second;
    if (auto since = running_since_.find(id); since != running_since_.end())
      done += static_cast<double>(end - since->second) / 1000.0;
    auto ended = ended_at_.find(id);
    const double wall =
        static_cast<double>((ended == ended_at_.end() ? end : ended->second) - job.job_timestamp) /
        1000.0;
    productive += std::min(done, job.task_definition.runtime_seconds) * job.num_nodes;
    held += wall * job.num_nodes;
  }
  for (const auto& [name, node] : s.nodes()) nodes[name] = to_string(node.status);
  for (const Task* t : s.tasks_by_id()) {
    tasks.push_back({{"id", t->id},
                     {"job", t->job_id},
                     {"node", t->node_name},
                     {"node_index", t->node_index},
                     {"attempt", t->attempt},
                     {"status", to_string(t->status)},
                     {"exit_code", t->exit_code ? json(*t->exit_code) : json(nullptr)}});
  }
  json notifications = json::array();
  for (const auto& n : notifications_->sent())
    notifications.push_back({{"t", n.at / 1000.0},
                             {"kind", n.kind},
                             {"job", n.job},
                             {"node", n.nodes.empty() ? "" : n.nodes.front()},
                             {"reason", n.reason}});
  auto count = [this](const char* kind) {
    auto it = action_counts_.find(kind);
    return it == action_counts_.end() ? 0 : it->second;
  };
  json stats = {{"diagnostics", count("run_diagnostic")},
                {"reboots", count("reboot")},
                {"restarts", restarts_},
                {"recoveries", recoveries_},
                {"events", totals().events},
                {"duplicate_events", totals().duplicates},
                {"refused_decisions", totals().refused},
                {"virtual_seconds", end / 1000.0},
                {"ettr", held > 0 ? productive / held : 0.0}};
  json out = {{"jobs", jobs},          {"nodes", nodes},       {"tasks", tasks},
              {"timeline", timeline_}, {"actions", actions_},  {"notifications", notifications},
              {"stats", stats},        {"rejected", rejected_}};
  if (scenario_.chaos.any())
    out["chaos"] = {{"controller_crashes", crash_log_}, {"dropped_reports", dropped_reports_}};
  if (options_.check_invariants) out["violations"] = violations_;
  return out;
}

std::string Simulation::timeline_text() const {
  std::string out;
  char line[64];
  for (const auto& t : timeline_) {
    std::snprintf(line, sizeof line, "%9.1f s  ", t["t"].get<double>());
    out += line;
    out += t["kind"].get<std::string>() + " " + t["id"].get<std::string>() + ": ";
    const std::string from = t["from"];
    out += (from.empty() ? "(new)" : from) + " -> " + t["to"].get<std::string>();
    const std::string reason = t["reason"];
    if (!reason.empty()) out += "  (" + reason + ")";
    out += "\n";
  }
  return out;
}

}  // namespace shepherd
