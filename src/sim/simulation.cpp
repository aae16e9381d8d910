#include "sim/simulation.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "controller/controller.hpp"
#include "notify/background_notifier.hpp"
#include "notify/sinks.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd {
namespace {
constexpr TimeMs kStopDelay = 1000;        // a stopped process takes a second to exit
constexpr TimeMs kFaultExitDelay = 10000;  // a task on a broken GPU dies soon after it starts
}  // namespace

Simulation::Simulation(Scenario scenario, SimOptions options)
    : scenario_(std::move(scenario)), options_(std::move(options)), rng_(scenario_.seed) {
  store_path_ = options_.store_path;
  crashes_left_ = scenario_.chaos.crashes;
  if (crashes_left_ > 0 && store_path_ == ":memory:") {
    // A crash must leave something to restart from: a file of our own, removed at the end.
    static std::atomic<int> files{0};
    store_path_ =
        (std::filesystem::temp_directory_path() /
         ("shepherd-sim-" + std::to_string(::getpid()) + "-" + std::to_string(++files) + ".db"))
            .string();
    own_store_file_ = true;
    // The simulated crash is a process's, not a power cut's: what was written survives it, so the
    // file needs no fsync (sweeps run many times faster on a slow disk).
    options_.sqlite.synchronous = "OFF";
  }
  notifications_ = std::make_shared<RecordingSink>("simulation");
  fanout_ = std::make_shared<FanoutNotifier>(
      std::vector<std::shared_ptr<NotificationSink>>{notifications_});
  for (const auto& sink : options_.sinks) fanout_->add(sink);
  notifier_ = fanout_.get();
  if (options_.notify_in_background) {
    background_ = std::make_unique<BackgroundNotifier>(fanout_);
    notifier_ = background_.get();
  }
  start_controller();
  // A kept store: time goes on from the latest stored change, never back.
  const Snapshot& kept = runtime().state();
  for (const auto& [id, j] : kept.jobs()) start_ = std::max(start_, j.updated_at);
  for (const auto& [id, t] : kept.tasks()) start_ = std::max(start_, t.updated_at);
  for (const auto& [name, n] : kept.nodes()) start_ = std::max(start_, n.updated_at);
  now_ = start_;
  clock_.set(now_);
  report_prefix_ = fmt::format("s{}", controller_->incarnation());
  // The cluster is up before the scenario begins: its first registrations arrive at once, chaos
  // or not.
  for (const auto& name : scenario_.cluster.nodes) register_node(name, /*at_once=*/true);
  for (const auto& job : scenario_.jobs)
    at(std::max(start_, seconds(job.submit_at)), [this, job] {
      if (runtime().state().job(job.id)) return;  // submitted by an earlier run on this store
      TaskDefinition def;
      def.runtime_seconds = job.runtime;
      Outcome o = submit(job, def);
      if (o.rejection && o.rejection->code == RejectionCode::Conflict &&
          o.rejection->field != "job_id")
        waiting_jobs_.emplace_back(job, def);  // waits for free nodes
      else if (o.rejection)
        rejected_.push_back(
            {{"t", now_ / 1000.0}, {"job", job.id}, {"error", o.rejection->message}});
    });
  for (const auto& e : scenario_.events)
    if (seconds(e.at) >= start_) at(seconds(e.at), [this, e] { inject(e); });
  settle(now_);  // the nodes are registered before anyone can ask
}

Simulation::~Simulation() {
  controller_.reset();
  store_.reset();
  if (own_store_file_)
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store_path_ + suffix);
}

Store& Simulation::store() {
  return *store_;
}

// A controller process on the store: a fresh connection, the state loaded, a new start number.
void Simulation::start_controller() {
  store_ = std::make_unique<SqliteStore>(store_path_, options_.sqlite);
  RuntimeHooks hooks;
  hooks.on_transition = [this](const Transition& t) { note_transition(t); };
  hooks.on_delivered = [this](const Action& a, TimeMs t) {
    actions_.push_back({{"t", t / 1000.0},
                        {"kind", to_string(a.kind)},
                        {"target", a.node.empty() ? a.job_id : a.node}});
  };
  hooks.tamper = options_.tamper;
  if (crashes_left_ > 0)
    hooks.crash_point = [this](CrashPoint p) {
      if (crashes_left_ <= 0 || uniform() >= scenario_.chaos.crash_rate) return;
      --crashes_left_;
      static constexpr const char* kWhere[] = {"mid-batch (decided, not written)",
                                               "between commit and dispatch",
                                               "between delivery and acknowledgement"};
      crash_log_.push_back(std::to_string(now_ / 1000.0) + " s: " + kWhere[static_cast<int>(p)]);
      throw SimulatedCrash{};
    };
  ControllerOptions copts;
  copts.batch_limit = options_.batch_limit;
  copts.after_commit = [this] {
    if (!node_freed_) return;
    node_freed_ = false;
    try {
      retry_waiting_jobs();
    } catch (...) {
      node_freed_ = true;  // a crash part way: tried again after the restart
      throw;
    }
  };
  controller_ =
      std::make_unique<Controller>(*store_, *this, *notifier_, Engine(scenario_.policy, "sim"),
                                   clock_, scenario_.policy, std::move(hooks), std::move(copts));
  controller_->start();
}

Simulation::Totals Simulation::totals() const {
  const RuntimeCounters& c = runtime().counters();
  return {earlier_.events + c.events, earlier_.duplicates + c.duplicates,
          earlier_.refused + c.refused_decisions};
}

// The controller dies (its memory, its inbox, its hand-overs in flight) and a new one starts on
// the same file. The nodes live on: they reconnect, and their agents send again every report the
// dead controller had not committed (the ids make a repeat harmless).
void Simulation::crash_and_restart() {
  earlier_ = totals();
  controller_.reset();
  store_.reset();
  start_controller();
  for (const auto& [name, n] : nodes_) {
    if (n.lost || n.down)
      controller_->node_disconnected(name);
    else
      controller_->node_connected(name);
  }
  for (const auto& e : std::exchange(unconfirmed_, {})) deliver_report(e);
}

template <class F>
void Simulation::guarded(F&& f) {
  while (true) {
    try {
      f();
      return;
    } catch (const SimulatedCrash&) {
      crash_and_restart();
    }
  }
}

// [0, 1) from the seed: mt19937_64's sequence is fixed by the standard, the distributions are not.
double Simulation::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Simulation::at(TimeMs t, std::function<void()> fn) {
  agenda_.push(Item{t, ++seq_, std::move(fn)});
}

std::optional<TimeMs> Simulation::next_time() const {
  if (agenda_.empty()) return std::nullopt;
  return agenda_.top().at;
}

bool Simulation::quiet() const {
  return agenda_.empty();
}

void Simulation::run() {
  const TimeMs until = seconds(scenario_.until);
  step(now_);
  while (auto t = next_time()) {
    if (*t > until) break;
    step(*t);
  }
  guarded([this] { runtime().flush(); });  // the last deliveries' acknowledgements
  if (options_.check_invariants) check_step_invariants();
}

void Simulation::run_until(TimeMs t) {
  while (auto next = next_time()) {
    if (*next > t) break;
    step(*next);
  }
  if (t > now_) step(t);
  if (runtime().unwritten_acks() > 0)
    guarded([this] { runtime().flush(); });  // live: the store stays current
}

void Simulation::step(TimeMs t) {
  now_ = std::max(now_, t);
  clock_.set(now_);  // what the items tell the controller (a node's silence) happens now
  while (!agenda_.empty() && agenda_.top().at <= now_) {
    Item item = agenda_.top();
    agenda_.pop();
    guarded([&] { item.run(); });  // an item that crashed the controller runs again, as a
                                   // client retries: what it sends carries the same ids
  }
  settle(now_);
}

// Lets the controller take in everything the agenda produced at time t: timers, heartbeat losses,
// events, actions, until quiet; then wakes it again at its next deadline.
void Simulation::settle(TimeMs t) {
  clock_.set(t);
  guarded([this] { controller_->settle(); });
  unconfirmed_.clear();  // committed, all of it
  if (options_.check_invariants) check_step_invariants();
  if (auto wake = controller_->next_wakeup(); wake && *wake > t) {
    if (wakeups_.insert(*wake).second) at(*wake, [] {});
  }
}

// A node agent's boot: it connects and registers. Boot ids are unique to this run, so a node of a
// kept store that ran a task in the last run is seen to have rebooted.
void Simulation::register_node(const std::string& name, bool at_once) {
  SimNode& n = nodes_[name];
  controller_->node_connected(name);
  NodeRegistered registered{name,
                            fmt::format("{}-boot-{}", report_prefix_, n.boots),
                            "",
                            "",
                            scenario_.cluster.gpus_per_node,
                            "",
                            ""};
  if (at_once) return deliver_report(Event{report_key(name, n), now_, std::move(registered)});
  report_event(name, std::move(registered));
}

// The agent's own report id: its node, and a number that survives the controller's restarts.
std::string Simulation::report_key(const std::string& node, SimNode& n) {
  return fmt::format("{}:{}:{}", report_prefix_, node, ++n.reports);
}

void Simulation::report_event(const std::string& node, EventBody body) {
  SimNode& n = nodes_[node];
  if (n.lost) {  // the agent keeps its reports and sends them when it is back
    n.held.push_back(std::move(body));
    return;
  }
  const Chaos& chaos = scenario_.chaos;
  if (chaos.drop_started > 0 && std::holds_alternative<TaskStarted>(body) &&
      uniform() < chaos.drop_started) {
    ++dropped_reports_;
    return;
  }
  Event e{report_key(node, n), now_, std::move(body)};
  const TimeMs delay = chaos.reorder_window > 0 ? seconds(uniform() * chaos.reorder_window) : 0;
  if (chaos.duplicate_events) {
    const TimeMs again = delay + seconds(uniform() * std::max(1.0, chaos.reorder_window));
    at(now_ + again, [this, e] { deliver_report(e); });
  }
  if (delay == 0) return deliver_report(e);
  at(now_ + delay, [this, e] { deliver_report(e); });
}

// The report reaches the controller now (it decides on its own clock's time of arrival).
void Simulation::deliver_report(const Event& event) {
  Event e = event;
  e.at = now_;
  unconfirmed_.push_back(e);
  controller_->post(std::move(e));
}

void Simulation::task_exits(const std::string& node, const std::string& task_id, int code,
                            int signal) {
  SimNode& n = nodes_[node];
  if (n.task_id != task_id) return;  // already gone
  n.task_id.clear();
  if (const Task* t = runtime().state().task(task_id)) {
    auto since = running_since_.find(t->job_id);
    if (since != running_since_.end()) {
      work_done_[t->job_id] += static_cast<double>(now_ - since->second) / 1000.0;
      running_since_.erase(since);
    }
  }
  report_event(node, TaskExited{task_id, code, signal, node, false});
}

double Simulation::remaining_work(const std::string& job_id) const {
  const Job* job = runtime().state().job(job_id);
  if (!job) return 0;
  auto done = work_done_.find(job_id);
  return std::max(
      0.0, job->task_definition.runtime_seconds - (done == work_done_.end() ? 0.0 : done->second));
}

void Simulation::inject(const ScenarioEvent& e) {
  using K = ScenarioEvent::Kind;
  if (e.kind == K::StopJob) {
    stop(e.job, "scenario", report_prefix_ + ":stop:" + e.job + ":" + std::to_string(e.line));
    return;
  }
  SimNode& n = nodes_[e.node];
  const std::string running = n.task_id;
  const Task* task = running.empty() ? nullptr : runtime().state().task(running);
  switch (e.kind) {
    case K::GpuFault:
    case K::GpuPersistentFault:
      n.gpu_broken = true;
      n.persistent = e.kind == K::GpuPersistentFault;
      if (!running.empty()) task_exits(e.node, running, 1, 0);
      break;
    case K::AppFault:
      if (task && (e.job.empty() || task->job_id == e.job)) task_exits(e.node, running, 1, 0);
      break;
    case K::ExitCode:
      if (task && (e.job.empty() || task->job_id == e.job))
        task_exits(e.node, running, e.exit_code, 0);
      break;
    case K::RebootHang:
      n.reboot_hangs = true;
      break;
    case K::DiagHang:
      n.diag_hangs = true;
      break;
    case K::AgentLost: {
      if (n.lost) break;
      n.lost = true;
      controller_->node_disconnected(e.node);  // the controller decides when it is lost
      const std::string name = e.node;
      if (e.duration > 0)
        at(now_ + seconds(e.duration), [this, name] {
          SimNode& back = nodes_[name];
          back.lost = false;
          register_node(name);  // the same boot: a reconnect
          for (auto& held : std::exchange(back.held, {})) report_event(name, std::move(held));
        });
      break;
    }
    case K::NodeCrash: {
      if (n.down) break;
      n.down = true;
      n.task_id.clear();  // the process died with the kernel: no exit code is ever reported
      controller_->node_disconnected(e.node);
      const std::string name = e.node;
      at(now_ + seconds(scenario_.cluster.reboot_seconds), [this, name] {
        SimNode& back = nodes_[name];
        back.down = false;
        ++back.boots;
        register_node(name);
      });
      break;
    }
    case K::StopJob:
      break;
  }
}

// Scenario commands carry ids of their own, as a client's retry would: a command repeated after a
// controller crash is recognised (a refused one is not recorded, so its retry is decided anew).
Outcome Simulation::submit(const JobSpec& job, const TaskDefinition& definition) {
  TaskDefinition def = definition;
  if (def.runtime_seconds <= 0) def.runtime_seconds = job.runtime;
  return controller_->decide(
      Event{report_prefix_ + ":submit:" + job.id, now_,
            JobSubmitted{job.id, job.nodes, job.nodes.empty() ? job.node_count : 0, def}});
}

Outcome Simulation::stop(const std::string& job_id, const std::string& who,
                         const std::string& key) {
  return controller_->decide(Event{key, now_, JobStopRequested{job_id, who}});
}

// A crash part way through leaves the list as it was: what was placed is a duplicate next time.
void Simulation::retry_waiting_jobs() {
  std::vector<std::pair<JobSpec, TaskDefinition>> still;
  for (const auto& [job, def] : waiting_jobs_) {
    Outcome o = submit(job, def);
    if (o.rejection && o.rejection->code == RejectionCode::Conflict &&
        o.rejection->field != "job_id")
      still.emplace_back(job, def);
  }
  waiting_jobs_ = std::move(still);
}

// Hands the action to the simulated node: carried out now, or with chaos up to action_delay later
// (a slow agent); the answer comes back through `done` either way.
void Simulation::execute(const Action& a, DeliveryCallback done) {
  const double most = scenario_.chaos.action_delay;
  if (most <= 0) return report_now([&] { carry_out(a); }, done);
  at(now_ + seconds(uniform() * most),
     [this, a, done = std::move(done)] { report_now([&] { carry_out(a); }, done); });
}

void Simulation::carry_out(const Action& a) {
  if (seen_actions_.count(a.id)) return;  // a repeat after a crash: already done
  SimNode& n = nodes_[a.node];
  if (a.kind != ActionKind::StopTask && (n.lost || n.down))
    throw DeliveryError("node " + a.node + " is unreachable");
  seen_actions_.insert(a.id);
  ++action_counts_[std::string(to_string(a.kind))];
  switch (a.kind) {
    case ActionKind::StartTask:
      return start_task(a);
    case ActionKind::StopTask:
      if (n.task_id == a.task_id) {
        const std::string node = a.node, task = a.task_id;
        at(now_ + kStopDelay, [this, node, task] { task_exits(node, task, 143, 15); });
      }
      return;
    case ActionKind::RunDiagnostic:
      return diagnose(a);
    case ActionKind::Reboot:
      return reboot(a);
    case ActionKind::Notify:
      return;
  }
}

void Simulation::start_task(const Action& a) {
  const std::string node = a.node, task = a.task_id, job = a.job_id;
  at(now_ + seconds(scenario_.cluster.task_start_seconds), [this, node, task, job] {
    SimNode& n = nodes_[node];
    if (n.down) return;
    if (!n.task_id.empty()) task_exits(node, n.task_id, 137, 9);  // a stale process is killed first
    const Task* t = runtime().state().task(task);
    if (!t || t->status != TaskStatus::InProgress) return;  // stopped before it began
    n.task_id = task;
    if (!running_since_.count(job)) running_since_[job] = now_;
    if (!first_start_.count(job)) first_start_[job] = now_;
    report_event(node, TaskStarted{task, node});
    if (n.gpu_broken) {
      at(now_ + kFaultExitDelay, [this, node, task] { task_exits(node, task, 1, 0); });
      return;
    }
    at(now_ + seconds(remaining_work(job)), [this, node, task] { task_exits(node, task, 0, 0); });
  });
}

void Simulation::diagnose(const Action& a) {
  const std::string node = a.node, op = a.id;
  at(now_ + 1000, [this, node, op] { report_event(node, DiagnosticStarted{node, op}); });
  SimNode& n = nodes_[node];
  if (std::exchange(n.diag_hangs, false)) return;  // never answers
  at(now_ + seconds(scenario_.cluster.diag_seconds), [this, node, op] {
    const bool broken = nodes_[node].gpu_broken;
    report_event(node, DiagnosticFinished{node,
                                          op,
                                          broken ? Verdict::Fail : Verdict::Pass,
                                          broken ? "gpu 0: memtest fail (simulated)" : "",
                                          {}});
  });
}

void Simulation::reboot(const Action& a) {
  SimNode& n = nodes_[a.node];
  n.down = true;
  n.task_id.clear();
  controller_->node_disconnected(a.node);
  if (std::exchange(n.reboot_hangs, false)) return;  // never comes back
  const std::string node = a.node;
  at(now_ + seconds(scenario_.cluster.reboot_seconds), [this, node] {
    SimNode& back = nodes_[node];
    back.down = false;
    ++back.boots;
    if (!back.persistent) back.gpu_broken = false;
    register_node(node);
  });
}

void Simulation::note_transition(const Transition& t) {
  timeline_.push_back({{"t", t.at / 1000.0},
                       {"kind", to_string(t.entity)},
                       {"id", t.id},
                       {"from", t.from},
                       {"to", t.to},
                       {"reason", t.reason}});
  if (t.entity == Entity::Node && t.to == "AVAILABLE") node_freed_ = true;
  if (t.entity == Entity::Node && t.to == "REBOOTING") ++decided_reboots_;
  if (t.entity == Entity::Job) {
    if (t.to == "PENDING_HEALTHCHECK" && !failed_at_.count(t.id)) failed_at_[t.id] = t.at;
    if (t.to == "RESTARTING") ++restarts_;
    if (t.from == "RESTARTING" && t.to == "IN_PROGRESS" && failed_at_.count(t.id)) {
      recoveries_.push_back({{"job", t.id},
                             {"failed_at", failed_at_[t.id] / 1000.0},
                             {"running_at", t.at / 1000.0},
                             {"seconds", (t.at - failed_at_[t.id]) / 1000.0}});
      failed_at_.erase(t.id);
    }
    if (t.to == "COMPLETE" || t.to == "FAILED" || t.to == "USER_STOPPED") {
      ended_at_[t.id] = t.at;
      failed_at_.erase(t.id);
    }
  }
  if (options_.on_transition) options_.on_transition(t);
}

}  // namespace shepherd
