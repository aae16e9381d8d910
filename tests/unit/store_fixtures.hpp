#pragma once
// Records and helpers shared by the store tests (both stores: tests/support/test_databases.hpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <tuple>

#include "store/sqlite_store.hpp"

namespace shepherd::test {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("shepherd_store_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Every field set to something other than its default.
inline Job full_job(const std::string& id) {
  Job j;
  j.id = id;
  j.cluster_name = "cluster-a";
  j.job_timestamp = 1'700'000'000'123;
  j.num_nodes = 2;
  j.assigned_nodes = {"node-1", "node-2"};
  j.submitted_instance_ids = {"inst-1", "inst \"quoted\" \\ back\nslash"};
  j.submitted_task_ids = {id + ".1.0", id + ".1.1", "ünïcödé"};
  j.attempt = 1;
  j.status = JobStatus::PendingHealthcheck;
  j.task_definition.name = "train";
  j.task_definition.revision = 7;
  j.task_definition.ref = "shepherd:cluster-a:task-definition/train:7";
  j.task_definition.command = {"python", "train.py", "--epochs=3"};
  j.task_definition.env = {{"A", "1"}, {"PATH", "/usr/bin"}};
  j.task_definition.working_dir = "/work";
  j.task_definition.runtime_seconds = 12.625;
  j.reason = "task exited with 137";
  j.recovery_started_at = 1'700'000'000'999;
  j.recovery_cause = RecoveryCause::NodeLost;
  j.created_at = 1000;
  j.updated_at = 2000;
  return j;
}

inline Task full_task(const std::string& id, const std::string& job_id) {
  Task t;
  t.id = id;
  t.node_name = "node-2";
  t.node_index = 1;
  t.job_id = job_id;
  t.job_timestamp = 1'700'000'000'123;
  t.job_num_nodes = 2;
  t.task_definition_ref = "shepherd:cluster-a:task-definition/train:7";
  t.task_definition_name = "train";
  t.task_definition_revision = 7;
  t.cluster_name = "cluster-a";
  t.instance_id = "inst-2";
  t.instance_ref = "shepherd:cluster-a:instance/inst-2";
  t.attempt = 1;
  t.status = TaskStatus::Terminated;
  t.started = true;
  t.stop_requested = true;
  t.exit_code = -9;
  t.reason = "stopped";
  t.created_at = 3000;
  t.updated_at = 4000;
  return t;
}

inline Node full_node(const std::string& name) {
  Node n;
  n.name = name;
  n.instance_id = "inst-" + name;
  n.instance_ref = "shepherd:cluster-a:instance/inst-" + name;
  n.cluster_name = "cluster-a";
  n.status = NodeStatus::PendingHealthcheck;
  n.ip = "10.0.0.7";
  n.ibdev = "mlx5_0";
  n.gpus = 8;
  n.boot_id = "boot-42";
  n.job_id = "job-1";
  n.operation_id = "diag-9";
  n.deadline_at = 99'000;
  n.needs_diagnostic = true;
  n.last_verdict = Verdict::Inconclusive;
  n.reason = "lost heartbeat";
  n.created_at = 5000;
  n.updated_at = 6000;
  return n;
}

inline Transition transition(const std::string& id, const std::string& from, const std::string& to,
                             TimeMs at) {
  return Transition{Entity::Job, id, from, to, "because " + to, at};
}

inline Action action(const std::string& id, TimeMs created_at) {
  Action a;
  a.id = id;
  a.kind = ActionKind::RunDiagnostic;
  a.node = "node-1";
  a.job_id = "job-1";
  a.task_id = "job-1.1.0";
  a.payload = nlohmann::json{{"level", 3}, {"note", "x"}}.dump();
  a.created_at = created_at;
  return a;
}

inline Commit event(const std::string& key, Decision d = {}, TimeMs at = 10) {
  Commit c;
  c.event_key = key;
  c.event_kind = "TaskExited";
  c.at = at;
  c.decision = std::move(d);
  return c;
}

inline Decision writes(Job job) {
  Decision d;
  d.jobs.push_back(std::move(job));
  return d;
}

inline SqliteOptions sync(std::string synchronous) {
  SqliteOptions o;
  o.synchronous = std::move(synchronous);
  return o;
}

inline Snapshot loaded(Store& store) {
  Snapshot s;
  store.load(s);
  return s;
}

// Every field but the version, for comparing records (gtest prints the tuples on a mismatch).
inline auto fields(const Job& j) {
  const TaskDefinition& d = j.task_definition;
  return std::tie(j.id, j.cluster_name, j.job_timestamp, j.num_nodes, j.assigned_nodes,
                  j.submitted_instance_ids, j.submitted_task_ids, j.attempt, j.status, d.name,
                  d.revision, d.ref, d.command, d.env, d.working_dir, d.runtime_seconds, j.reason,
                  j.recovery_started_at, j.recovery_cause, j.created_at, j.updated_at);
}

inline auto fields(const Task& t) {
  return std::tie(t.id, t.node_name, t.node_index, t.job_id, t.job_timestamp, t.job_num_nodes,
                  t.task_definition_ref, t.task_definition_name, t.task_definition_revision,
                  t.cluster_name, t.instance_id, t.instance_ref, t.attempt, t.status, t.started,
                  t.stop_requested, t.exit_code, t.reason, t.created_at, t.updated_at);
}

inline auto fields(const Node& n) {
  return std::tie(n.name, n.instance_id, n.instance_ref, n.cluster_name, n.status, n.ip, n.ibdev,
                  n.gpus, n.boot_id, n.job_id, n.operation_id, n.deadline_at, n.needs_diagnostic,
                  n.last_verdict, n.reason, n.created_at, n.updated_at);
}

// A job with one task, one node, two transitions and an action: what a typical event writes.
inline Decision typical(const std::string& job_id, TimeMs at) {
  Decision d;
  d.jobs.push_back(full_job(job_id));
  d.tasks.push_back(full_task(job_id + ".1.0", job_id));
  d.nodes.push_back(full_node("node-of-" + job_id));
  d.transitions = {transition(job_id, "", "IN_PROGRESS", at),
                   transition(job_id, "IN_PROGRESS", "PENDING_HEALTHCHECK", at)};
  d.actions.push_back(action("act-" + job_id, at));
  return d;
}

// What a failed batch must have left untouched.
struct Counts {
  std::size_t jobs, tasks, nodes, timeline, pending;
  std::int64_t duplicates;
  bool operator==(const Counts&) const = default;
};

inline Counts counts(Store& store) {
  Snapshot s = loaded(store);
  return {s.jobs().size(),
          s.tasks().size(),
          s.nodes().size(),
          store.timeline(0, 1000).size(),
          store.pending_actions(1'000'000, 1000).size(),
          store.duplicate_events()};
}

}  // namespace shepherd::test
