#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/yaml_reader.hpp"
#include "domain/model.hpp"

namespace shepherd {

// A scenario file for `shepherd sim run`: a simulated cluster, the jobs submitted to it and the
// faults injected into it, all on a virtual clock in seconds. Format: examples/scenarios/README.md.

struct ClusterSpec {
  std::vector<std::string> nodes;  // `nodes: N` expands to node-1..node-N
  int gpus_per_node = 8;
  double reboot_seconds = 300;    // how long a reboot takes
  double diag_seconds = 120;      // how long a diagnostic takes
  double task_start_seconds = 5;  // from task placement to the process running
};

struct JobSpec {
  std::string id;
  std::vector<std::string> nodes;  // named nodes; empty when the file gave a count
  int node_count = 0;              // always set: nodes.size() for a list, else the count
  double runtime = 3600;           // seconds of work per attempt
  double submit_at = 0;            // virtual seconds

  bool any_nodes() const { return nodes.empty(); }  // the count form: any AVAILABLE nodes
};

struct ScenarioEvent {
  enum class Kind {
    GpuFault,  // fault: gpu — the GPU breaks, its task exits 1, diagnostics fail until reboot
    GpuPersistentFault,  // fault: gpu_persistent — the GPU stays broken after reboots
    AppFault,            // fault: app — the task exits 1 with healthy GPUs
    ExitCode,            // fault: exit_code — the task exits with `exit_code`
    RebootHang,          // fault: reboot_hang — the node's next reboot never finishes
    DiagHang,            // fault: diag_hang — the node's next diagnostic never finishes
    AgentLost,           // fault: agent_lost — heartbeats stop (for `duration` s, 0: forever)
    NodeCrash,  // fault: node_crash — the node reboots by itself: its task dies with it, and
                // it registers with a new boot id after the cluster's reboot_seconds
    StopJob,    // action: stop_job — a user stops `job`
  };

  double at = 0;  // virtual seconds
  Kind kind = Kind::GpuFault;
  std::string node;     // every fault names one; empty for actions
  std::string job;      // stop_job always; app and exit_code optionally (only that job's task)
  int exit_code = 1;    // the task's exit code (GpuFault, AppFault: 1; ExitCode: `code`)
  double duration = 0;  // agent_lost: 0 = never returns, else seconds until heartbeats resume
  int line = 0;         // 1-based line of the entry in the file, for the simulator's messages

  bool is_fault() const { return kind != Kind::StopJob; }
};

// The YAML word for a kind ("gpu", "stop_job", ...), and back.
std::string_view to_string(ScenarioEvent::Kind kind);
std::optional<ScenarioEvent::Kind> parse_event_kind(std::string_view word);

// The `expect:` block: final states the test suite checks after the run. Statuses are seed names
// (validated at load); every part is optional (nullopt / empty: not checked).
struct Expectations {
  std::map<std::string, std::string> jobs;   // job id -> JobStatus name
  std::map<std::string, std::string> nodes;  // node name -> NodeStatus name
  std::map<std::string, int> job_retries;    // job id -> Job::attempt (shown as retry) at the end
  std::optional<int> notifications;          // notifications sent
  std::optional<int> reboots;                // stats.reboots
  std::optional<int> diagnostics;            // stats.diagnostics
  std::optional<int> restarts;               // stats.restarts

  bool empty() const {
    return jobs.empty() && nodes.empty() && job_retries.empty() && !notifications && !reboots &&
           !diagnostics && !restarts;
  }
};

// Faults of the controller's world, not of the nodes (FoundationDB-style simulation testing), all
// drawn from the scenario's seed. Off by default; `shepherd sim run --chaos` and `sim sweep
// --chaos` turn on Chaos::standard().
struct Chaos {
  bool duplicate_events = false;  // every node report is delivered twice (the second one later)
  double reorder_window = 0;      // seconds: each node report is delayed by up to this much
  double drop_started = 0;        // probability that a "task started" report is lost
  double action_delay = 0;        // seconds: each node action is carried out up to this late
  int crashes = 0;                // controller crashes at most (each restarts on the same store)
  double crash_rate = 0.05;       // probability of a crash at each crash point, while crashes last

  bool any() const {
    return duplicate_events || reorder_window > 0 || drop_started > 0 || action_delay > 0 ||
           crashes > 0;
  }
  static Chaos standard() { return {true, 5, 0.1, 3, 3, 0.05}; }
};

struct Scenario {
  std::uint64_t seed = 1;  // for anything random: same seed, same output
  double until = 86400;    // virtual seconds to run at most
  Policy policy;
  ClusterSpec cluster;
  std::vector<JobSpec> jobs;
  std::vector<ScenarioEvent> events;  // in file order
  Expectations expect;
  Chaos chaos;
  std::string file;  // as given to the loader, for messages
};

// A scenario file that cannot be used. what() is "FILE:LINE: PATH: problem", e.g.
// "train.yaml:14: events[2].node: 'node-9' is not a node of the cluster" (PATH is omitted for
// problems of the whole file, LINE for a file that cannot be read).
class ScenarioError : public yaml_reader::YamlError {
 public:
  using YamlError::YamlError;
  explicit ScenarioError(const YamlError& e) : YamlError(e) {}
};

// Reads and validates a scenario file; throws ScenarioError.
Scenario load_scenario(const std::string& path);

// The same from text; `file_name_for_messages` prefixes every error and becomes Scenario::file.
Scenario parse_scenario(const std::string& yaml_text, const std::string& file_name_for_messages);

}  // namespace shepherd
