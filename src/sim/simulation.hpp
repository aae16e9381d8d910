#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "controller/controller.hpp"
#include "scenario/scenario.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd {

class SqliteStore;
class RecordingSink;
class NotificationSink;
class FanoutNotifier;
class Notifier;

struct SimOptions {
  std::string store_path = ":memory:";  // or a file: the same SQLite store the server uses
  SqliteOptions sqlite;                 // synchronous, retention, ...
  std::size_t batch_limit = 4096;       // events committed per transaction at most
  std::function<void(const Transition&)> on_transition;  // the live timeline
  std::vector<std::shared_ptr<NotificationSink>> sinks;  // besides the recorded copy
  // Deliver notifications on a thread of their own (`shepherd dev` with a webhook: a slow receiver
  // must not hold up the loop). Off for `sim run`: the report must be the same every time.
  bool notify_in_background = false;
  // Check the invariants that must hold at every step (`sim sweep`); costs a scan per step.
  bool check_invariants = false;
  // Tests only: edits each decision before it is committed (a planted bug for the sweep to find).
  std::function<void(const Event&, Decision&)> tamper;
};

// A deterministic discrete-event simulation of a cluster on virtual time. It drives the real
// controller (runtime, engine, store, outbox, heartbeat tracker) on a manual clock; only the nodes
// are simulated (this class is their driver). The scenario's chaos (duplicated, delayed and lost
// reports, late actions, controller crashes with a restart on the same store file) is drawn from
// its seed: the same scenario and seed give the same bytes. On a kept store it goes on where the
// last run stopped: the clock starts at the latest stored time, scenario events before it are
// taken as done, jobs not in the store yet are submitted, and the simulated nodes, whose processes
// died with the last run, come back as freshly booted machines.
class Simulation final : public ClusterDriver {
 public:
  explicit Simulation(Scenario scenario, SimOptions options = {});
  ~Simulation() override;

  // Runs until the scenario's `until`, or earlier when nothing is left to happen.
  void run();
  // Runs every agenda item due at or before `t`, then sets the clock to `t`.
  void run_until(TimeMs t);
  std::optional<TimeMs> next_time() const;
  TimeMs now() const { return now_; }
  // True when nothing is left to happen: no agenda item, no deadline, nothing owed.
  bool quiet() const;

  // Interventions at the current virtual time (the dev server's API, scenario events).
  void inject(const ScenarioEvent& event);
  Outcome submit(const JobSpec& job, const TaskDefinition& definition = {});
  Outcome stop(const std::string& job_id, const std::string& who, const std::string& key);

  nlohmann::json report() const;      // `shepherd sim run --json`
  std::string timeline_text() const;  // `shepherd sim run`
  // Broken invariants seen during the run and at its end (with check_invariants).
  std::vector<std::string> violations() const;

  Runtime& runtime() { return controller_->runtime(); }
  const Runtime& runtime() const { return controller_->runtime(); }
  Controller& controller() { return *controller_; }
  Store& store();
  const nlohmann::json& timeline() const { return timeline_; }
  const Scenario& scenario() const { return scenario_; }
  void execute(const Action& action, DeliveryCallback done) override;

 private:
  struct SimNode {
    bool gpu_broken = false, persistent = false, reboot_hangs = false, diag_hangs = false;
    bool lost = false, down = false;
    int boots = 0;
    std::uint64_t reports = 0;    // the agent numbers its reports
    std::string task_id;          // the task process running there
    std::vector<EventBody> held;  // reports made while unreachable, sent on return
  };
  struct Item {
    TimeMs at;
    std::uint64_t seq;
    std::function<void()> run;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  struct SimulatedCrash {};
  // What the controllers of this run counted, summed over their restarts.
  struct Totals {
    std::uint64_t events = 0, duplicates = 0, refused = 0;
  };

  void start_controller();
  void crash_and_restart();
  template <class F>
  void guarded(F&& f);
  double uniform();
  void at(TimeMs t, std::function<void()> fn);
  void report_event(const std::string& node, EventBody body);
  void deliver_report(const Event& event);
  // The node's agent (re)connects and registers; `at_once`: past the chaos (the cluster's start).
  void register_node(const std::string& node, bool at_once = false);
  std::string report_key(const std::string& node, SimNode& n);
  void step(TimeMs t);
  void settle(TimeMs t);
  void carry_out(const Action& a);
  void task_exits(const std::string& node, const std::string& task_id, int code, int signal);
  void start_task(const Action& a);
  void diagnose(const Action& a);
  void reboot(const Action& a);
  void retry_waiting_jobs();
  double remaining_work(const std::string& job_id) const;
  void note_transition(const Transition& t);
  void check_step_invariants();
  Totals totals() const;

  Scenario scenario_;
  SimOptions options_;
  std::string store_path_;
  bool own_store_file_ = false;  // a temporary file for crashes, removed at the end
  std::unique_ptr<SqliteStore> store_;
  std::shared_ptr<RecordingSink> notifications_;
  std::shared_ptr<FanoutNotifier> fanout_;
  std::unique_ptr<Notifier> background_;  // over fanout_, when notify_in_background
  Notifier* notifier_ = nullptr;          // the one the controller uses
  ManualClock clock_;
  std::unique_ptr<Controller> controller_;
  TimeMs start_ = 0;  // 0, or on a kept store the latest stored time: the run goes on there
  std::string report_prefix_;  // of the simulated agents' report ids: unique to this run
  std::mt19937_64 rng_;
  int crashes_left_ = 0;
  std::vector<std::string> crash_log_;  // "t=...: crashed at ...", for the report
  std::vector<Event> unconfirmed_;      // posted since the last settle: sent again after a crash
  Totals earlier_;                      // of the controllers that crashed
  std::uint64_t dropped_reports_ = 0;
  std::priority_queue<Item, std::vector<Item>, Later> agenda_;
  std::uint64_t seq_ = 0;
  TimeMs now_ = 0;
  std::set<TimeMs> wakeups_;
  std::map<std::string, SimNode> nodes_;
  std::set<std::string> seen_actions_;  // a repeated action id is acknowledged, not redone
  std::vector<std::pair<JobSpec, TaskDefinition>> waiting_jobs_;  // not enough free nodes yet
  bool node_freed_ = false;
  std::vector<std::string> violations_;
  // Goodput bookkeeping per job: work done, and since when the current attempt runs.
  std::map<std::string, double> work_done_;
  std::map<std::string, TimeMs> running_since_;
  std::map<std::string, TimeMs> first_start_, ended_at_;
  std::map<std::string, TimeMs> failed_at_;
  nlohmann::json timeline_ = nlohmann::json::array();
  nlohmann::json actions_ = nlohmann::json::array();
  nlohmann::json recoveries_ = nlohmann::json::array();
  nlohmann::json rejected_ = nlohmann::json::array();
  std::map<std::string, int> action_counts_;
  int restarts_ = 0;
  std::uint64_t decided_reboots_ = 0;
};

}  // namespace shepherd
