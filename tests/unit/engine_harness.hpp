#pragma once
// A small world for engine tests: decides events against a Snapshot and applies the decisions, as
// the runtime would, while recording every transition and action.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "engine/engine.hpp"

namespace shepherd::testing {

class EngineHarness {
 public:
  explicit EngineHarness(Policy policy = {}) : engine_(policy) {}

  Decision send(EventBody body) {
    Event e{"e" + std::to_string(++seq_), now, std::move(body)};
    return send_event(e);
  }
  Decision send_event(const Event& e) {
    Decision d = engine_.decide(e, state);
    EXPECT_TRUE(d.refused.empty()) << d.refused.front();
    for (Job j : d.jobs) ++j.version, state.put(j);
    for (Task t : d.tasks) ++t.version, state.put(t);
    for (Node n : d.nodes) ++n.version, state.put(n);
    for (const auto& t : d.transitions)
      transitions.insert(std::string(to_string(t.entity)) + ":" + t.from + ">" + t.to);
    for (const auto& a : d.actions) actions.push_back(a);
    return d;
  }

  void add_nodes(int count) {
    for (int i = 1; i <= count; ++i)
      send(NodeRegistered{"node-" + std::to_string(i),
                          "boot-a",
                          "10.0.0." + std::to_string(i),
                          "mlx5_0",
                          8,
                          {},
                          {}});
  }
  Decision submit(const std::string& job, std::vector<std::string> nodes) {
    TaskDefinition def;
    def.command = {"python", "train.py"};
    def.runtime_seconds = 3600;
    return send(JobSubmitted{job, std::move(nodes), 0, def});
  }
  // Submits and reports every task running: the job is IN_PROGRESS with its nodes IN_PROGRESS.
  void run(const std::string& job, std::vector<std::string> nodes) {
    submit(job, std::move(nodes));
    start_all(job);
  }
  void start_all(const std::string& job) {
    for (const auto& id : this->job(job).submitted_task_ids) send(TaskStarted{id, {}});
  }
  Decision exit(const std::string& job, int index, int code, int signal = 0) {
    return send(TaskExited{task(job, index).id, code, signal, {}, false});
  }
  std::string op(const std::string& node) { return this->node(node).operation_id; }
  Decision diag(const std::string& node, Verdict v) {
    send(DiagnosticStarted{node, op(node)});
    return send(DiagnosticFinished{node, op(node), v, "test", {}});
  }
  Decision rebooted(const std::string& node, const std::string& boot = "boot-b") {
    return send(NodeRegistered{node, boot, "", "", 0, {}, {}});
  }
  Decision timeout(const std::string& node) { return send(OperationTimedOut{node, op(node)}); }

  const Job& job(const std::string& id) const { return *state.job(id); }
  const Node& node(const std::string& name) const { return *state.node(name); }
  const Task& task(const std::string& job_id, int index) const {
    const Job& j = job(job_id);
    return *state.task(task_id_for(job_id, j.attempt, index));
  }
  JobStatus job_status(const std::string& id) const { return job(id).status; }
  NodeStatus node_status(const std::string& name) const { return node(name).status; }
  std::size_t count(ActionKind kind) const {
    std::size_t n = 0;
    for (const auto& a : actions) n += a.kind == kind;
    return n;
  }
  std::size_t notifications(std::string_view kind) const {
    std::size_t n = 0;
    for (const auto& a : actions)
      n += a.kind == ActionKind::Notify && payload_json(a)["kind"] == kind;
    return n;
  }

  Snapshot state;
  TimeMs now = 0;
  std::vector<Action> actions;
  std::set<std::string> transitions;  // "entity:FROM>TO"

 private:
  Engine engine_;
  int seq_ = 0;
};

}  // namespace shepherd::testing
