#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "domain/status.hpp"

namespace shepherd {

// What a task runs. The seeds' ECS task definition (ARN, name, revision) becomes a named,
// revisioned spec; the simulator reads `runtime_seconds`, agents read the command.
struct TaskDefinition {
  std::string name;  // seed: task_def_name
  int revision = 1;  // seed: task_def_revision
  std::string
      ref;  // seed: task_def_arn, here "shepherd:<cluster>:task-definition/<name>:<revision>"
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string working_dir;
  double runtime_seconds = 0;  // simulated jobs only: how long the work takes
};

// Seed 000's ecs_job table.
// What began a job's recovery. A node-side cause whose node then passes its diagnostic restarts
// the job (it died of the node's absence, not of its code). Stored by name (`recovery_cause`).
enum class RecoveryCause {
  None,         // "" : no recovery in progress
  TaskFailed,   // "task_failed": a task exited or was killed on its own, or did not start
  NodeLost,     // "node_lost": its node lost its heartbeat under a running task
  NodeCrashed,  // "node_crashed": its node rebooted by itself (a new boot id) under a task
  GpuError,     // "gpu_error": its node's kernel logged a reboot- or reset-class Xid under a task
  AgentRestarted,  // "agent_restarted": its node's agent restarted under a task and ended it
};
std::string_view to_string(RecoveryCause c);
std::optional<RecoveryCause> parse_recovery_cause(std::string_view s);

struct Job {
  std::string id;                                   // job_id
  std::string cluster_name;                         // cluster_name
  TimeMs job_timestamp = 0;                         // job_timestamp: when it was submitted
  int num_nodes = 0;                                // num_nodes
  std::vector<std::string> assigned_nodes;          // assigned_nodes, by node index
  std::vector<std::string> submitted_instance_ids;  // submitted_container_inst_ids
  std::vector<std::string> submitted_task_ids;  // submitted_ecs_task_ids (the current attempt's)
  int attempt = 0;  // retry (the seeds' name, kept by the store and API): recoveries so far
  JobStatus status = JobStatus::InProgress;  // job_status
  TaskDefinition task_definition;
  std::string reason;                                  // why it is in its status
  TimeMs recovery_started_at = 0;                      // when the running recovery began (0: none)
  RecoveryCause recovery_cause = RecoveryCause::None;  // what began the recovery in progress
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::int64_t version = 0;  // 0: not stored yet
};

// Seed 000's ecs_task table. A task is one attempt of one node index of a job.
struct Task {
  std::string id;                    // ecs_task_id: "<job>.<attempt>.<node index>"
  std::string node_name;             // node_name
  int node_index = 0;                // node_index_in_job
  std::string job_id;                // job_id
  TimeMs job_timestamp = 0;          // job_timestamp
  int job_num_nodes = 0;             // job_num_nodes
  std::string task_definition_ref;   // task_def_arn
  std::string task_definition_name;  // task_def_name
  int task_definition_revision = 1;  // task_def_revision
  std::string cluster_name;          // cluster_name
  std::string instance_id;           // container_inst_id: the node agent instance it runs on
  std::string instance_ref;          // container_instance_arn
  int attempt = 0;                   // retry (as for Job): the job's attempt this task belongs to
  TaskStatus status = TaskStatus::InProgress;  // task_status
  bool started = false;                        // the node reported the process running
  bool stop_requested = false;                 // Shepherd asked the node to stop it
  std::optional<int> exit_code;
  std::string reason;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::int64_t version = 0;
};

// What a diagnostic concluded. Inconclusive (timeout, missing tool, unreadable output) is never a
// pass.
enum class Verdict { None, Pass, Fail, Inconclusive };
std::string_view to_string(Verdict v);
std::optional<Verdict> parse_verdict(std::string_view s);

// Seed 000's ecs_node table plus what recovery needs to remember about the node.
// A node is two records in one: its inventory facts (what it is: delivery will own them, seed 004's
// `nodes`) and its health state (what recovery knows of it now), each with its own version, so
// the two halves never conflict on one row. same_inventory/same_health say which one an edit
// changed.
struct Node {
  std::string name;  // node_name: the key of both
  // Inventory, versioned by inventory_version.
  std::string instance_ref;  // container_instance_arn
  std::string cluster_name;  // cluster_name
  std::string ip;            // ip
  std::string ibdev;         // ibdev
  int gpus = 0;
  std::string node_type;       // seed 004 node_type
  std::string gpu_type;        // seed 004 gpu_type (the GPU model)
  std::string node_pool;       // seed 004 node_pool_id ("" outside any pool)
  bool locked = false;         // seed 004 is_locked: no new job is placed on it
  TimeMs registered_at = 0;    // seed 004 registered_at
  std::string driver_version;  // the NVIDIA driver's, as the agent reported it
  TimeMs created_at = 0;
  std::int64_t inventory_version = 0;
  // Health, versioned by version.
  std::string instance_id;                    // container_instance_id
  NodeStatus status = NodeStatus::Available;  // node_status
  std::string boot_id;                        // as last registered; a new one proves a reboot
  std::string job_id;                         // the job holding the node ("" when free)
  std::string operation_id;                   // the diagnostic or reboot in flight
  TimeMs deadline_at = 0;                     // when the operation in flight times out (0: none)
  bool needs_diagnostic = false;              // lost while running a task: diagnose when it returns
  Verdict last_verdict = Verdict::None;
  // The last diagnostic's parsed report (JSON text, health::DiagReport::to_json; "" if none).
  std::string last_diagnostic;
  std::string reason;
  TimeMs updated_at = 0;
  std::int64_t version = 0;
};
bool same_inventory(const Node& a, const Node& b);  // versions aside
bool same_health(const Node& a, const Node& b);

// The recovery policy. Defaults are the seeds' values.
// What a task exit with a code other than 0, 1 or policy.app_exit_codes gets.
enum class OtherExitCodes {
  Diagnose,  // like exit 1 (Shepherd's default: a GPU fault often surfaces as a crash)
  Ignore,    // seed 003's "no action": the task ends, the job waits for a person
};
std::string_view to_string(OtherExitCodes v);
std::optional<OtherExitCodes> parse_other_exit_codes(std::string_view s);

struct Policy {
  int max_retries = 1;              // seed: "run time = 1"
  int diag_level = 1;               // dcgmi diag -r LEVEL
  double diag_timeout = 900;        // seconds
  double reboot_timeout = 1200;     // seconds; also how long a lost node may take to return
  double heartbeat_timeout = 60;    // seconds without a heartbeat before a node is UNKNOWN
  double start_timeout = 600;       // seconds for a task to report running after it was started
  std::vector<int> app_exit_codes;  // exit codes that mean the application failed: no diagnostic
  OtherExitCodes other_exit_codes = OtherExitCodes::Diagnose;
};

// The one rule for each policy value, whoever read it (config file, environment, scenario): the
// problem with `field` of `p` ("max_retries", "diag_level", "diag_timeout", "reboot_timeout",
// "heartbeat_timeout", "start_timeout", "app_exit_codes"), if any, e.g. "must be > 0, got 0".
std::optional<std::string> policy_problem(std::string_view field, const Policy& p);
// The first problem of the whole policy, as "field: problem".
std::optional<std::string> policy_problem(const Policy& p);

// Job ids and node names: 1-128 letters, digits, '-', '_' or '.'. They end up in task ids, file
// names and commands, so every reader (API, scenario, config) checks them with this one rule.
inline constexpr std::string_view kIdRule = "1-128 letters, digits, '-', '_' or '.'";
bool valid_id(std::string_view id);

}  // namespace shepherd
