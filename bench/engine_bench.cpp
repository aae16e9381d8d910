// Engine decisions per second, pure: Engine::decide(event, snapshot) on a fixed snapshot of a
// 10,000-node fleet running 1,000 8-node jobs. Decisions are NOT applied: every event of a prepared
// pool is decided against the same snapshot, so each iteration does the same kind of work and the
// pool can be cycled for as long as the benchmark runs. See bench/README.md.
//
//   build-bench/bench/engine_bench                      # every benchmark
//   build-bench/bench/engine_bench --benchmark_filter=mix
#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace {

using namespace shepherd;

constexpr int kNodes = 10'000;
constexpr int kJobs = 1'000;
constexpr int kNodesPerJob = 8;
constexpr std::size_t kPoolSize = 8192;  // prepared events per benchmark, cycled

// The fleet's jobs by what stage they are in when the snapshot is taken.
constexpr int kStarting = 50;     // submitted, tasks placed, none reported running yet
constexpr int kDiagPending = 25;  // a task exited 1: diagnostic asked for (node PENDING)
constexpr int kDiagRunning = 25;  // ... and reported running (node PENDING_HEALTHCHECK)
constexpr int kRebooting = 50;    // diagnostic failed: the node reboots (job PENDING_RESTART)
constexpr int kRunning = kJobs - kStarting - kDiagPending - kDiagRunning - kRebooting;  // 850

std::string node_name(int i) {
  return "node-" + std::to_string(i + 1);
}

// Drives the engine the way the runtime does (decide, then apply with versions bumped) to build
// the snapshot the benchmarks decide on.
class Fleet {
 public:
  Fleet() : engine_(policy()) {
    for (int i = 0; i < kNodes; ++i)
      send(NodeRegistered{node_name(i),
                          "boot-0",
                          "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                          "mlx5_0",
                          8,
                          {},
                          {}});
    for (int j = 0; j < kJobs; ++j) {
      TaskDefinition def;
      def.name = "llm-pretrain";
      def.command = {"torchrun", "--nproc-per-node=8", "train.py", "--config", "70b.yaml"};
      def.env = {{"NCCL_IB_HCA", "mlx5"}, {"WANDB_PROJECT", "pretrain"}};
      def.working_dir = "/workspace";
      def.runtime_seconds = 86400;
      send(JobSubmitted{job_id(j), {}, kNodesPerJob, def});
    }
    for (int j = 0; j < kJobs; ++j) {
      if (stage(j) == Stage::Starting) continue;
      for (const auto& id : job(j).submitted_task_ids) send(TaskStarted{id, {}});
      if (stage(j) == Stage::Running) continue;
      send(TaskExited{
          task_id_for(job_id(j), 0, 0), 1, 0, {}, false});  // the GPU of node index 0 broke
      if (stage(j) == Stage::DiagPending) continue;
      const std::string node = job(j).assigned_nodes[0];
      const std::string op = snap.node(node)->operation_id;
      send(DiagnosticStarted{node, op});
      if (stage(j) == Stage::DiagRunning) continue;
      send(DiagnosticFinished{node, op, Verdict::Fail, "gpu 3: memtest fail", {}});
    }
  }

  static Policy policy() {
    Policy p;
    p.max_retries = 3;
    return p;
  }

  enum class Stage { Running, Starting, DiagPending, DiagRunning, Rebooting };
  static Stage stage(int j) {
    if (j < kRunning) return Stage::Running;
    j -= kRunning;
    if (j < kStarting) return Stage::Starting;
    j -= kStarting;
    if (j < kDiagPending) return Stage::DiagPending;
    j -= kDiagPending;
    if (j < kDiagRunning) return Stage::DiagRunning;
    return Stage::Rebooting;
  }
  static int first_job(Stage s) {
    switch (s) {
      case Stage::Running:
        return 0;
      case Stage::Starting:
        return kRunning;
      case Stage::DiagPending:
        return kRunning + kStarting;
      case Stage::DiagRunning:
        return kRunning + kStarting + kDiagPending;
      case Stage::Rebooting:
        return kRunning + kStarting + kDiagPending + kDiagRunning;
    }
    return 0;
  }
  static int job_count(Stage s) {
    switch (s) {
      case Stage::Running:
        return kRunning;
      case Stage::Starting:
        return kStarting;
      case Stage::DiagPending:
        return kDiagPending;
      case Stage::DiagRunning:
        return kDiagRunning;
      case Stage::Rebooting:
        return kRebooting;
    }
    return 0;
  }
  static std::string job_id(int j) { return "job-" + std::to_string(j + 1); }
  const Job& job(int j) const { return *snap.job(job_id(j)); }

  const Engine& engine() const { return engine_; }
  Snapshot snap;

 private:
  void send(EventBody body) {
    Event e{"setup-" + std::to_string(++seq_), seq_ * 10, std::move(body)};
    Decision d = engine_.decide(e, snap);
    if (d.rejection) throw std::runtime_error("setup event refused: " + d.rejection->message);
    if (!d.refused.empty()) throw std::runtime_error("setup: " + d.refused.front());
    for (Job j : d.jobs) ++j.version, snap.put(j);
    for (Task t : d.tasks) ++t.version, snap.put(t);
    for (Node n : d.nodes) ++n.version, snap.put(n);
  }

  Engine engine_;
  TimeMs seq_ = 0;
};

const Fleet& fleet() {
  static const Fleet f;
  return f;
}

// One kind of event: a generator of realistic instances against the fleet snapshot.
struct Kind {
  const char* name;
  int steady;  // share of the steady mix, per mille
  int storm;   // share of the storm mix, per mille
  std::function<EventBody(std::mt19937&)> make;
};

std::vector<Kind> kinds() {
  using S = Fleet::Stage;
  const Fleet& f = fleet();
  auto pick_job = [](std::mt19937& rng, S s) {
    return Fleet::first_job(s) +
           std::uniform_int_distribution<int>(0, Fleet::job_count(s) - 1)(rng);
  };
  auto pick_index = [](std::mt19937& rng, int from = 0) {
    return std::uniform_int_distribution<int>(from, kNodesPerJob - 1)(rng);
  };
  auto diag_node = [&f](int j) { return f.job(j).assigned_nodes[0]; };
  return {
      // A user submits an 8-node job: 8 free nodes picked, job, 8 tasks, 8 start actions.
      {"job_submitted", 45, 0,
       [](std::mt19937& rng) -> EventBody {
         TaskDefinition def;
         def.command = {"torchrun", "--nproc-per-node=8", "train.py"};
         def.runtime_seconds = 86400;
         return JobSubmitted{"new-" + std::to_string(rng()), {}, kNodesPerJob, def};
       }},
      // A placed task reports its process running: task started, node IN_PROGRESS.
      {"task_started", 450, 250,
       [=, &f](std::mt19937& rng) -> EventBody {
         return TaskStarted{f.job(pick_job(rng, S::Starting))
                                .submitted_task_ids.at(static_cast<std::size_t>(pick_index(rng))),
                            {}};
       }},
      // One task of a running job finishes: task COMPLETE, node held until the job ends.
      {"task_exit_0", 360, 200,
       [=](std::mt19937& rng) -> EventBody {
         return TaskExited{
             task_id_for(Fleet::job_id(pick_job(rng, S::Running)), 0, pick_index(rng)),
             0,
             0,
             {},
             false};
       }},
      // A GPU fault kills a task: job PENDING_HEALTHCHECK, 7 tasks stopped, diagnostic asked for.
      {"task_exit_1_recovery", 11, 50,
       [=](std::mt19937& rng) -> EventBody {
         return TaskExited{
             task_id_for(Fleet::job_id(pick_job(rng, S::Running)), 0, pick_index(rng)),
             1,
             0,
             {},
             false};
       }},
      // A task Shepherd stopped for a recovery reports exit 143 (SIGTERM): noted, ignored.
      {"task_exit_143_stopped", 80, 150,
       [=](std::mt19937& rng) -> EventBody {
         return TaskExited{
             task_id_for(Fleet::job_id(pick_job(rng, S::DiagRunning)), 0, pick_index(rng, 1)),
             143,
             15,
             {},
             false};
       }},
      // The node agent starts the diagnostic: node PENDING -> PENDING_HEALTHCHECK.
      {"diagnostic_started", 11, 50,
       [=, &f](std::mt19937& rng) -> EventBody {
         const std::string node = diag_node(pick_job(rng, S::DiagPending));
         return DiagnosticStarted{node, f.snap.node(node)->operation_id};
       }},
      // The diagnostic fails: node REBOOTING with a reboot action, job PENDING_RESTART.
      {"diagnostic_finished", 11, 50,
       [=, &f](std::mt19937& rng) -> EventBody {
         const std::string node = diag_node(pick_job(rng, S::DiagRunning));
         return DiagnosticFinished{node,
                                   f.snap.node(node)->operation_id,
                                   Verdict::Fail,
                                   "gpu 3: Diagnostic/memtest: fail (DCGM error 83)",
                                   {}};
       }},
      // The rebooted node registers with a new boot id: AVAILABLE, and the job restarts as
      // attempt 1 on its 8 nodes (8 tasks created, 8 start actions).
      {"node_rebooted_restart", 11, 50,
       [=](std::mt19937& rng) -> EventBody {
         return NodeRegistered{diag_node(pick_job(rng, S::Rebooting)), "boot-1", "", "", 0, {}, {}};
       }},
      // A busy node's agent reconnects with the same boot id: the node record is rewritten.
      {"node_reconnected", 10, 50,
       [=](std::mt19937& rng) -> EventBody {
         return NodeRegistered{fleet()
                                   .job(pick_job(rng, S::Running))
                                   .assigned_nodes.at(static_cast<std::size_t>(pick_index(rng))),
                               "boot-0",
                               "",
                               "",
                               8,
                               {},
                               {}};
       }},
      // Duplicates and stale reports, all ignored: a second "running" for a running task ...
      {"stale_task_started", 5, 50,
       [=](std::mt19937& rng) -> EventBody {
         return TaskStarted{
             task_id_for(Fleet::job_id(pick_job(rng, S::Running)), 0, pick_index(rng)), {}};
       }},
      // ... a diagnostic result for an operation that is no longer the node's ...
      {"stale_diagnostic_result", 2, 40,
       [=](std::mt19937& rng) -> EventBody {
         return DiagnosticFinished{
             diag_node(pick_job(rng, S::Rebooting)), "setup-1/0", Verdict::Pass, "", {}};
       }},
      // ... an exit of a previous attempt's task that the store no longer has ...
      {"unknown_task_exit", 2, 30,
       [=](std::mt19937& rng) -> EventBody {
         return TaskExited{
             task_id_for(Fleet::job_id(pick_job(rng, S::Running)), 7, pick_index(rng)),
             1,
             0,
             {},
             false};
       }},
      // ... and a timer of an operation that already finished.
      {"stale_timer", 2, 30,
       [=](std::mt19937& rng) -> EventBody {
         return OperationTimedOut{diag_node(pick_job(rng, S::Rebooting)), "setup-2/0"};
       }},
  };
}

std::vector<Event> pool_of(const std::vector<const Kind*>& from, int Kind::*weight, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> weights;
  for (const Kind* k : from) weights.push_back(from.size() == 1 ? 1 : k->*weight);
  std::discrete_distribution<std::size_t> which(weights.begin(), weights.end());
  std::vector<Event> pool;
  pool.reserve(kPoolSize);
  for (std::size_t i = 0; i < kPoolSize; ++i)
    pool.push_back(Event{"bench-" + std::to_string(i), 1'000'000'000 + static_cast<TimeMs>(i),
                         from[which(rng)]->make(rng)});
  return pool;
}

void decide_all(benchmark::State& state, const std::vector<Event>& pool) {
  const Fleet& f = fleet();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 997;
  std::int64_t changes = 0, actions = 0;
  for (auto _ : state) {
    Decision d = f.engine().decide(pool[i++ % pool.size()], f.snap);
    changes += d.changes_state();
    actions += static_cast<std::int64_t>(d.actions.size());
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  const double n = static_cast<double>(state.iterations());
  state.counters["changing"] = benchmark::Counter(static_cast<double>(changes) / n);
  state.counters["actions"] = benchmark::Counter(static_cast<double>(actions) / n);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const Fleet& f = fleet();  // built once, before any timing
  std::printf(
      "snapshot: %zu nodes, %zu jobs (%d running, %d starting, %d diagnosing, %d "
      "rebooting), %zu tasks\n",
      f.snap.nodes().size(), f.snap.jobs().size(), kRunning, kStarting, kDiagPending + kDiagRunning,
      kRebooting, f.snap.tasks().size());

  static const std::vector<Kind> all = kinds();
  static std::vector<std::vector<Event>> pools;  // stable: benchmarks keep pointers into it
  pools.reserve(all.size() + 2);
  std::vector<const Kind*> every;
  for (const Kind& k : all) every.push_back(&k);
  std::printf("%-24s %7s %7s\n", "event kind", "steady", "storm");
  for (const Kind& k : all)
    std::printf("%-24s %6.1f%% %6.1f%%\n", k.name, k.steady / 10.0, k.storm / 10.0);

  auto add = [](const std::string& name, const std::vector<Event>* pool) {
    return benchmark::RegisterBenchmark(
        name.c_str(), [pool](benchmark::State& state) { decide_all(state, *pool); });
  };
  // Threads(2): two threads deciding on the same snapshot (decide is const and pure); the rate
  // is then over wall time, the aggregate of both cores.
  pools.push_back(pool_of(every, &Kind::steady, 1));
  add("decide/mix_steady", &pools.back())->Threads(1);
  add("decide/mix_steady", &pools.back())->Threads(2)->UseRealTime();
  pools.push_back(pool_of(every, &Kind::storm, 1));
  add("decide/mix_storm", &pools.back())->Threads(1);
  add("decide/mix_storm", &pools.back())->Threads(2)->UseRealTime();
  for (const Kind& k : all) {
    pools.push_back(pool_of({&k}, &Kind::steady, 2));
    add(std::string("decide/") + k.name, &pools.back());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
