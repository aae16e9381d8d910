#include "scenario/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/enum_names.hpp"
#include "common/yaml_checks.hpp"
#include "common/yaml_reader.hpp"

namespace shepherd {
namespace {

using Kind = ScenarioEvent::Kind;
using yaml_reader::describe;
using yaml_reader::Field;
using yaml_reader::Map;
using yaml_reader::Reader;

constexpr EnumNames<Kind, 9> kKindWords{{
    {Kind::GpuFault, "gpu"},
    {Kind::GpuPersistentFault, "gpu_persistent"},
    {Kind::AppFault, "app"},
    {Kind::ExitCode, "exit_code"},
    {Kind::RebootHang, "reboot_hang"},
    {Kind::DiagHang, "diag_hang"},
    {Kind::AgentLost, "agent_lost"},
    {Kind::NodeCrash, "node_crash"},
    {Kind::StopJob, "stop_job"},
}};

constexpr int kMaxNodes = 100000;

class Parser : private Reader {
 public:
  using Reader::Reader;

  Scenario parse(const YAML::Node& root);

 private:
  void policy(const Field& f, Policy& p) const;
  void cluster(const Field& f, ClusterSpec& c);
  JobSpec job(const Field& f) const;
  ScenarioEvent event(const Field& f) const;
  void expect(const Field& f, Expectations& e) const;
  void chaos(const Field& f, Chaos& c) const;
  std::string name(const Field& f) const {  // a node name or job id the engine will accept
    std::string s = text(f);
    if (s.empty()) fail(f, "must not be empty");
    if (!valid_id(s))
      fail(f, "'" + yaml_reader::printable(s) + "' is not a valid name: " + std::string(kIdRule));
    return s;
  }
  std::string node_ref(const Field& f) const {
    std::string n = name(f);
    if (!node_set_.count(n)) fail(f, "'" + n + "' is not a node of the cluster");
    return n;
  }
  const JobSpec& job_ref(const Field& f) const {
    const std::string id = name(f);
    auto it = job_index_.find(id);
    if (it == job_index_.end()) fail(f, "'" + id + "' is not a job of the file");
    return jobs_[it->second];
  }

  std::unordered_set<std::string> node_set_;
  std::vector<JobSpec> jobs_;
  std::unordered_map<std::string, std::size_t> job_index_;
};

Scenario Parser::parse(const YAML::Node& root) {
  const Field top{root, "", root.Mark().is_null() ? 1 : root.Mark().line + 1};
  if (!root.IsMap()) {
    fail(top,
         "a scenario is a mapping with the keys seed, until, policy, cluster, jobs, events, "
         "expect; got " +
             describe(root));
  }
  const Map m(*this, top);
  m.allow({"seed", "until", "policy", "cluster", "jobs", "events", "expect", "chaos"});

  Scenario s;
  s.file = file();
  if (auto f = m.get("seed")) s.seed = unsigned64(*f);
  if (auto f = m.get("until")) s.until = seconds(*f, true);
  if (auto f = m.get("policy")) policy(*f, s.policy);
  cluster(m.need("cluster"), s.cluster);  // before jobs and events, which name its nodes
  // An empty `jobs:` or `events:` (everything commented out) is an empty list.
  if (auto f = m.get("jobs"); f && !f->node.IsNull()) {
    for (const Field& e : list(*f)) {
      JobSpec j = job(e);
      if (job_index_.count(j.id)) fail(Map(*this, e).need("id"), "duplicate job id '" + j.id + "'");
      job_index_.emplace(j.id, jobs_.size());
      jobs_.push_back(std::move(j));
    }
  }
  if (auto f = m.get("events"); f && !f->node.IsNull())
    for (const Field& e : list(*f)) s.events.push_back(event(e));
  if (auto f = m.get("expect"); f && !f->node.IsNull()) expect(*f, s.expect);
  if (auto f = m.get("chaos"); f && !f->node.IsNull()) chaos(*f, s.chaos);
  s.jobs = std::move(jobs_);
  return s;
}

void Parser::chaos(const Field& f, Chaos& c) const {
  const Map m(*this, f);
  m.allow({"duplicate_events", "reorder_window", "drop_started", "action_delay", "crashes",
           "crash_rate"});
  if (auto v = m.get("duplicate_events")) c.duplicate_events = boolean(*v);
  if (auto v = m.get("reorder_window")) c.reorder_window = seconds(*v, false);
  if (auto v = m.get("drop_started")) c.drop_started = fraction(*v);
  if (auto v = m.get("action_delay")) c.action_delay = seconds(*v, false);
  if (auto v = m.get("crashes")) c.crashes = integer(*v, 0, 1000);
  if (auto v = m.get("crash_rate")) c.crash_rate = fraction(*v);
}

void Parser::policy(const Field& f, Policy& p) const {
  const Map m(*this, f);
  m.allow({"max_retries", "diag_level", "diag_timeout", "reboot_timeout", "heartbeat_timeout",
           "start_timeout", "app_exit_codes", "other_exit_codes"});
  // Read as plain numbers; the range is the domain's one rule for every reader (policy_problem).
  auto check = [&](const Field& v, std::string_view field) {
    if (auto why = policy_problem(field, p)) fail(v, *why);
  };
  for (auto [field, member] : {std::pair{"max_retries", &Policy::max_retries},
                               std::pair{"diag_level", &Policy::diag_level}})
    if (auto v = m.get(field)) {
      p.*member = integer(*v, INT32_MIN, INT32_MAX);
      check(*v, field);
    }
  for (auto [field, member] : {std::pair{"diag_timeout", &Policy::diag_timeout},
                               std::pair{"reboot_timeout", &Policy::reboot_timeout},
                               std::pair{"heartbeat_timeout", &Policy::heartbeat_timeout},
                               std::pair{"start_timeout", &Policy::start_timeout}})
    if (auto v = m.get(field)) {
      p.*member = seconds(*v, false);
      check(*v, field);
    }
  if (auto v = m.get("app_exit_codes")) {
    p.app_exit_codes.clear();
    for (const Field& e : list(*v)) {
      p.app_exit_codes.push_back(integer(e, INT32_MIN, INT32_MAX));
      check(e, "app_exit_codes");
    }
  }
  if (auto v = m.get("other_exit_codes")) {
    const auto choice = parse_other_exit_codes(text(*v));
    if (!choice) fail(*v, "expected diagnose or ignore, got '" + v->node.Scalar() + "'");
    p.other_exit_codes = *choice;
  }
}

void Parser::cluster(const Field& f, ClusterSpec& c) {
  const Map m(*this, f);
  m.allow({"nodes", "gpus_per_node", "reboot_seconds", "diag_seconds", "task_start_seconds"});
  const Field nodes = m.need("nodes");
  if (nodes.node.IsSequence()) {
    for (const Field& e : list(nodes)) {
      std::string n = name(e);
      if (!node_set_.insert(n).second) fail(e, "duplicate node name '" + n + "'");
      c.nodes.push_back(std::move(n));
    }
    if (c.nodes.empty()) fail(nodes, "the cluster needs at least one node");
    if (c.nodes.size() > static_cast<std::size_t>(kMaxNodes))
      fail(nodes, "at most " + std::to_string(kMaxNodes) + " nodes");
  } else {
    const int n = integer(nodes, 1, kMaxNodes);
    for (int i = 1; i <= n; ++i) c.nodes.push_back("node-" + std::to_string(i));
    node_set_.insert(c.nodes.begin(), c.nodes.end());
  }
  if (auto v = m.get("gpus_per_node")) c.gpus_per_node = integer(*v, 1, 1024);
  if (auto v = m.get("reboot_seconds")) c.reboot_seconds = seconds(*v, false);
  if (auto v = m.get("diag_seconds")) c.diag_seconds = seconds(*v, false);
  if (auto v = m.get("task_start_seconds")) c.task_start_seconds = seconds(*v, false);
}

JobSpec Parser::job(const Field& f) const {
  const Map m(*this, f);
  m.allow({"id", "nodes", "runtime", "submit_at"});
  JobSpec j;
  j.id = name(m.need("id"));
  const Field nodes = m.need("nodes");
  if (nodes.node.IsSequence()) {
    std::unordered_set<std::string> seen;
    for (const Field& e : list(nodes)) {
      std::string n = node_ref(e);
      if (!seen.insert(n).second) fail(e, "node '" + n + "' is listed twice");
      j.nodes.push_back(std::move(n));
    }
    if (j.nodes.empty()) fail(nodes, "a job needs at least one node");
    j.node_count = static_cast<int>(j.nodes.size());
  } else {
    // A count the cluster can never satisfy would leave the job waiting forever.
    j.node_count = integer(nodes, 1, kMaxNodes);
    if (static_cast<std::size_t>(j.node_count) > node_set_.size()) {
      fail(nodes, "asks for " + std::to_string(j.node_count) + " nodes but the cluster has " +
                      std::to_string(node_set_.size()));
    }
  }
  if (auto v = m.get("runtime")) j.runtime = seconds(*v, true);
  if (auto v = m.get("submit_at")) j.submit_at = seconds(*v, false);
  return j;
}

ScenarioEvent Parser::event(const Field& f) const {
  const Map m(*this, f);
  ScenarioEvent ev;
  ev.line = f.line;
  const auto fault = m.get("fault");
  const auto action = m.get("action");
  if (fault && action) {
    fail(m.key_of("action"), "an event has either 'fault' or 'action', not both");
  }
  if (!fault && !action) fail(f, "an event needs 'fault' (a fault to inject) or 'action'");
  const std::string word = text(fault ? *fault : *action);
  const auto kind = parse_event_kind(word);
  if (fault && (!kind || *kind == Kind::StopJob)) {
    fail(*fault, "unknown fault '" + word +
                     "'; expected one of gpu, gpu_persistent, app, exit_code, reboot_hang, "
                     "diag_hang, agent_lost");
  }
  if (action && kind != Kind::StopJob)
    fail(*action, "unknown action '" + word + "'; expected stop_job");
  ev.kind = *kind;

  // Each kind takes only the keys it uses, so a misplaced key is not silently ignored.
  const std::string what = std::string(fault ? "fault '" : "action '") + word + "'";
  switch (ev.kind) {
    case Kind::AppFault:
      m.allow({"at", "fault", "node", "job"}, what);
      break;
    case Kind::ExitCode:
      m.allow({"at", "fault", "node", "job", "code"}, what);
      break;
    case Kind::AgentLost:
      m.allow({"at", "fault", "node", "duration"}, what);
      break;
    case Kind::StopJob:
      m.allow({"at", "action", "job"}, what);
      break;
    default:
      m.allow({"at", "fault", "node"}, what);
      break;
  }
  ev.at = seconds(m.need("at"), false);
  if (ev.is_fault()) ev.node = node_ref(m.need("node"));
  if (ev.kind == Kind::StopJob) {
    ev.job = job_ref(m.need("job")).id;
  } else if (auto j = m.get("job")) {
    const JobSpec& spec = job_ref(*j);
    ev.job = spec.id;
    if (!spec.any_nodes() &&
        std::find(spec.nodes.begin(), spec.nodes.end(), ev.node) == spec.nodes.end()) {
      fail(m.need("node"), "'" + ev.node + "' is not one of the nodes of job '" + ev.job + "'");
    }
  }
  if (ev.kind == Kind::ExitCode) ev.exit_code = integer(m.need("code"), 0, 255);
  if (auto d = m.get("duration")) ev.duration = seconds(*d, false);
  return ev;
}

void Parser::expect(const Field& f, Expectations& e) const {
  const Map m(*this, f);
  m.allow({"jobs", "nodes", "job_retries", "notifications", "stats"});
  // Each entry of a per-job / per-node map: the key must name a known job / node.
  auto each = [&](const char* key, auto&& on_entry) {
    auto sub = m.get(key);
    if (!sub || sub->node.IsNull()) return;
    const Map entries(*this, *sub);
    for (const auto& [name, v] : entries.entries()) on_entry(name, v, entries.key_of(name));
  };
  each("jobs", [&](const std::string& id, const Field& v, const Field& k) {
    if (!job_index_.count(id)) fail(k, "'" + id + "' is not a job of the file");
    const std::string s = text(v);
    if (!parse_job_status(s)) {
      fail(v, "unknown job status '" + s +
                  "'; expected one of IN_PROGRESS, PENDING_HEALTHCHECK, PENDING_RESTART, "
                  "RESTARTING, COMPLETE, FAILED, USER_STOPPED");
    }
    e.jobs[id] = s;
  });
  each("nodes", [&](const std::string& n, const Field& v, const Field& k) {
    if (!node_set_.count(n)) fail(k, "'" + n + "' is not a node of the cluster");
    const std::string s = text(v);
    if (!parse_node_status(s)) {
      fail(v, "unknown node status '" + s +
                  "'; expected one of AVAILABLE, UNKNOWN, ASSIGNED, IN_PROGRESS, PENDING, "
                  "PENDING_HEALTHCHECK, REBOOTING, FAILED");
    }
    e.nodes[n] = s;
  });
  each("job_retries", [&](const std::string& id, const Field& v, const Field& k) {
    if (!job_index_.count(id)) fail(k, "'" + id + "' is not a job of the file");
    e.job_retries[id] = count(v);
  });
  if (auto v = m.get("notifications")) e.notifications = count(*v);
  if (auto v = m.get("stats")) {
    const Map stats(*this, *v);
    stats.allow({"reboots", "diagnostics", "restarts"});
    if (auto s = stats.get("reboots")) e.reboots = count(*s);
    if (auto s = stats.get("diagnostics")) e.diagnostics = count(*s);
    if (auto s = stats.get("restarts")) e.restarts = count(*s);
  }
}

}  // namespace

std::string_view to_string(ScenarioEvent::Kind kind) {
  return name_of(kKindWords, kind);
}

std::optional<ScenarioEvent::Kind> parse_event_kind(std::string_view word) {
  return value_of(kKindWords, word);
}

Scenario parse_scenario(const std::string& yaml_text, const std::string& file_name_for_messages) {
  try {
    const YAML::Node root =
        yaml_reader::load_document(yaml_text, file_name_for_messages, "a scenario file");
    try {
      return Parser(file_name_for_messages).parse(root);
    } catch (const YAML::Exception& e) {  // not expected: the parser checks types before reading
      throw ScenarioError(file_name_for_messages, e.mark.is_null() ? 0 : e.mark.line + 1, "",
                          e.msg);
    }
  } catch (const ScenarioError&) {
    throw;
  } catch (const yaml_reader::YamlError& e) {
    throw ScenarioError(e);
  }
}

Scenario load_scenario(const std::string& path) {
  std::string text;
  try {
    text = yaml_reader::read_file_text(path);
  } catch (const yaml_reader::YamlError& e) {
    throw ScenarioError(e);
  }
  return parse_scenario(text, path);
}

}  // namespace shepherd
