#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "domain/ports.hpp"
#include "engine/engine.hpp"
#include "store/store.hpp"

namespace shepherd {

// The wait before the next try of an action that failed transiently: capped, jittered, and the
// same for the same action and attempt (replays stay deterministic).
inline constexpr TimeMs kMaxRetryBackoff = 300'000;
TimeMs retry_backoff(const std::string& action_id, int attempts);

// How long a handed-over action may go unanswered before it is handed over again (a node agent
// that took it and then vanished): every wait has a deadline, this one too.
inline constexpr TimeMs kDeliveryTimeout = 120'000;

// Where a test or the simulator's chaos may stop the runtime dead, as a crash would: with a batch
// decided but not written (mid-batch), between commit and dispatch, between a delivery and its
// acknowledgement.
enum class CrashPoint { BeforeCommit, AfterCommit, AfterDeliver };

struct RuntimeHooks {
  std::function<void(const Transition&)> on_transition;
  std::function<void(const Action&, TimeMs)> on_delivered;
  std::function<void(CrashPoint)> crash_point;  // may throw to simulate a crash
  // Tests only: edits each decision before it is committed (a planted bug for the sweep to find).
  std::function<void(const Event&, Decision&)> tamper;
  // A delivery result arrived (from any thread, under the runtime's result lock: it must not call
  // back into the runtime): the loop that calls dispatch() should wake.
  std::function<void()> on_result;
};

struct Outcome {
  bool duplicate = false;
  std::optional<Rejection> rejection;
  std::string note;
};

struct RuntimeCounters {
  std::uint64_t events = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t conflicts = 0;
  std::uint64_t delivered = 0;
  std::uint64_t delivery_failures = 0;
  std::uint64_t refused_decisions = 0;  // decisions voided by an illegal transition: a rules bug
  std::uint64_t dead_letters = 0;       // actions that failed permanently, kept for an operator
  std::uint64_t superseded = 0;         // owed actions dropped: their operation was already over
  std::uint64_t delivery_timeouts = 0;  // hand-overs nobody answered within kDeliveryTimeout
};

// The imperative shell around the engine: events in, decisions committed with their actions in one
// transaction, then actions delivered from the outbox. It keeps the whole state in memory as a
// write-through cache of the store (one writer: the leader).
class Runtime {
 public:
  Runtime(Store& store, ClusterDriver& driver, Notifier& notifier, Engine engine,
          RuntimeHooks hooks = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Loads the state, the timers and the undelivered actions (left by a crash, or failing), which
  // dispatch() delivers.
  void start();

  // Decides and commits one event now.
  Outcome apply(const Event& event);
  // Queues an event; flush() decides and commits all queued events in one transaction, with the
  // acknowledgements of the deliveries since the last one. After kMaxConflictRetries version
  // conflicts in a row it throws VersionConflict; then, as on any store error, the events are not
  // recorded (their sources send them again).
  void enqueue(Event event);
  std::vector<Outcome> flush();
  static constexpr int kMaxConflictRetries = 3;
  std::size_t queued() const { return queue_.size(); }

  // Takes in the delivery results that came back since the last call, then hands due outbox
  // actions over to the driver or notifier, oldest first, from memory: what flush() committed and
  // start() loaded. A node has one action in flight at a time, so it gets them in the order they
  // were decided (a stop never overtakes the start it stops). An action whose operation is already
  // over (a diagnostic that timed out) is dropped, not delivered. A delivery is marked done in the
  // store by the next flush() (call it with nothing queued to write them now); one lost in a crash
  // is delivered again, which its id makes harmless. A permanent failure of a node's action also
  // queues an ActionFailed event for the engine. Returns how many deliveries were confirmed.
  std::size_t dispatch(TimeMs now, std::size_t limit = 4096);
  std::size_t undelivered() const { return outbox_.size(); }
  std::size_t in_flight() const { return in_flight_; }
  // The earliest time dispatch() has something to do without a result arriving: an owed action's
  // next try, or a hand-over's answer deadline.
  std::optional<TimeMs> next_dispatch_at() const;
  // Actions that failed permanently (PermanentDeliveryError), oldest first; and an operator's
  // retry of one (false if no dead letter has that id).
  std::vector<PendingAction> dead_letters(std::size_t limit = 1000);
  bool retry_dead_letter(const std::string& action_id, TimeMs now);
  std::size_t unwritten_acks() const { return acks_.size(); }
  static constexpr std::size_t kMaxUnwrittenAcks = 4096;  // dispatch() flushes beyond this

  // The earliest operation deadline (diagnostic, reboot, a lost node's return), if any.
  std::optional<TimeMs> next_deadline();
  // Queues a timeout event for every deadline that has passed; flush() applies them.
  void fire_due_timers(TimeMs now);

  const Snapshot& state() const { return cache_; }
  const Engine& engine() const { return engine_; }
  const RuntimeCounters& counters() const { return counters_; }

 private:
  Outcome decide_into(const Event& event, std::vector<Commit>& batch,
                      std::unordered_set<std::string>& seen);
  std::vector<NodeParts> apply_to_cache(const Decision& d);
  Decision refused_decision(const Event& event, const std::vector<std::string>& refused);
  void write_acks();
  void reload();

  struct Owed {
    PendingAction pending;
    std::uint64_t ticket = 0;  // of the hand-over in flight; 0 when not handed over
    TimeMs handed_at = 0;
  };
  struct Result {
    std::uint64_t order;   // the action's key in outbox_
    std::uint64_t ticket;  // of the hand-over answered
    DeliveryResult result;
  };
  // Results come back on any thread and may outlive the runtime (a notifier's worker).
  struct ResultInbox {
    std::mutex mu;
    std::vector<Result> results;
    std::function<void()> wake;
  };
  std::size_t take_results(TimeMs now);
  void take_result(Result& r, TimeMs now, std::size_t& confirmed);
  void ensure_current();
  void owe(PendingAction pending);
  bool superseded(const Action& a) const;
  void hand_over(std::uint64_t order, Owed& owed, TimeMs now);
  void failed(Owed& owed, const std::string& error, TimeMs now);

  struct Timer {
    TimeMs at;
    std::string node;
    std::string operation_id;
    bool operator>(const Timer& o) const { return at > o.at || (at == o.at && node > o.node); }
  };

  Store& store_;
  ClusterDriver& driver_;
  Notifier& notifier_;
  Engine engine_;
  RuntimeHooks hooks_;
  Snapshot cache_;
  std::vector<Event> queue_;
  std::map<std::uint64_t, Owed> outbox_;  // committed, not yet confirmed; by commit order
  std::uint64_t next_order_ = 0, next_ticket_ = 0;
  std::size_t in_flight_ = 0;
  bool stale_ = false;  // the last reload failed: nothing is decided or dispatched until one works
  std::shared_ptr<ResultInbox> inbox_ = std::make_shared<ResultInbox>();
  std::vector<std::string> acks_;  // ids delivered, not yet marked done in the store
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  RuntimeCounters counters_;
};

}  // namespace shepherd
