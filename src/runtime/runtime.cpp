#include "runtime/runtime.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

namespace shepherd {

Runtime::Runtime(Store& store, ClusterDriver& driver, Notifier& notifier, Engine engine,
                 RuntimeHooks hooks)
    : store_(store),
      driver_(driver),
      notifier_(notifier),
      engine_(std::move(engine)),
      hooks_(std::move(hooks)) {
  inbox_->wake = hooks_.on_result;
}

Runtime::~Runtime() {
  std::lock_guard lock(inbox_->mu);
  inbox_->wake = nullptr;
}

void Runtime::start() {
  reload();
}

// Both reads first, then memory: a load that fails leaves the runtime marked stale (it refuses to
// decide or dispatch on the state that ran ahead of the store) until a reload succeeds.
void Runtime::reload() {
  stale_ = true;
  Snapshot fresh;
  store_.load(fresh);
  auto pending = store_.pending_actions(std::numeric_limits<TimeMs>::max(),
                                        std::numeric_limits<std::size_t>::max());
  cache_ = std::move(fresh);
  timers_ = {};
  for (const auto& [name, node] : cache_.nodes())
    if (node.deadline_at > 0) timers_.push({node.deadline_at, name, node.operation_id});
  std::unordered_set<std::string> acknowledged(acks_.begin(), acks_.end());
  // Hand-overs in flight are forgotten: their late results find no ticket and are ignored, and the
  // actions are handed over again (their ids make that harmless).
  outbox_.clear();
  in_flight_ = 0;
  for (auto& p : pending)
    if (!acknowledged.count(p.action.id)) owe(std::move(p));
  stale_ = false;
}

void Runtime::ensure_current() {
  if (stale_) reload();
}

void Runtime::owe(PendingAction pending) {
  const std::uint64_t order = ++next_order_;
  outbox_.emplace(order, Owed{std::move(pending), 0, 0});
}

Outcome Runtime::apply(const Event& event) {
  enqueue(event);
  return flush().back();
}

void Runtime::enqueue(Event event) {
  queue_.push_back(std::move(event));
}

// `seen`: the keys already stored or decided earlier in this batch.
Outcome Runtime::decide_into(const Event& event, std::vector<Commit>& batch,
                             std::unordered_set<std::string>& seen) {
  Outcome out;
  Commit commit;
  commit.event_key = event.key;
  commit.event_kind = std::string(event_kind(event.body));
  commit.at = event.at;
  if (seen.count(event.key)) {
    commit.duplicate = out.duplicate = true;
    out.note = "duplicate event " + event.key + ": ignored";
    batch.push_back(std::move(commit));
    return out;
  }
  Decision d = engine_.decide(event, cache_);
  if (hooks_.tamper) hooks_.tamper(event, d);
  if (!d.refused.empty()) d = refused_decision(event, d.refused);
  if (d.rejection) {  // a refused command is not recorded: the same key may be sent corrected
    out.rejection = d.rejection;
    return out;
  }
  seen.insert(event.key);
  out.note = d.note;
  if (!d.note.empty()) spdlog::debug("event {} ({}): {}", event.key, commit.event_kind, d.note);
  commit.node_parts = apply_to_cache(d);
  commit.decision = std::move(d);
  batch.push_back(std::move(commit));
  return out;
}

// A decision that asked for an illegal transition wrote nothing (the builder voided it). What is
// committed instead is the fact, for a person: the event is recorded (a redelivery is a duplicate,
// not a second refusal) with one notification naming the refused steps.
Decision Runtime::refused_decision(const Event& event, const std::vector<std::string>& refused) {
  ++counters_.refused_decisions;
  std::string all;
  for (const auto& r : refused) {
    spdlog::error("event {} ({}): decision refused whole: {}", event.key, event_kind(event.body),
                  r);
    all += (all.empty() ? "" : "; ") + r;
  }
  Decision out;
  out.refused = refused;
  out.note = "decision refused whole: " + all;
  Action a;
  a.id = event.key + "/refused";
  a.kind = ActionKind::Notify;
  a.created_at = event.at;
  a.payload = notify_payload(kNotifyDecisionRefused, "", {},
                             "event " + event.key + " (" + std::string(event_kind(event.body)) +
                                 "): the engine asked for an illegal transition, nothing was "
                                 "written: " +
                                 all,
                             0);
  out.actions.push_back(std::move(a));
  return out;
}

std::vector<NodeParts> Runtime::apply_to_cache(const Decision& d) {
  std::vector<NodeParts> parts;
  parts.reserve(d.nodes.size());
  // Versions move as the store moves them, so the next event of a batch reads what will be stored.
  for (Job j : d.jobs) ++j.version, cache_.put(j);
  for (Task t : d.tasks) ++t.version, cache_.put(t);
  for (Node n : d.nodes) {
    const Node* before = cache_.node(n.name);
    // A node's two halves move apart: each version counts only its own changes.
    const NodeParts changed{!before || !same_inventory(*before, n),
                            !before || !same_health(*before, n)};
    parts.push_back(changed);
    if (changed.inventory) ++n.inventory_version;
    if (changed.health) ++n.version;
    const bool new_deadline =
        !before || before->deadline_at != n.deadline_at || before->operation_id != n.operation_id;
    // One timer per deadline: a node edited again with the same deadline does not get a second
    // (it would fire the same timeout twice, the second a counted duplicate).
    if (n.deadline_at > 0 && new_deadline) timers_.push({n.deadline_at, n.name, n.operation_id});
    cache_.put(n);
  }
  return parts;
}

std::vector<Outcome> Runtime::flush() {
  ensure_current();  // throws while the store is still down: the events stay queued
  std::vector<Event> events;
  events.swap(queue_);
  std::vector<std::string> keys;
  keys.reserve(events.size());
  for (const auto& e : events) keys.push_back(e.key);
  std::vector<Outcome> outcomes;
  std::vector<Commit> batch;
  // Not recorded: the events go back to the front of the queue (their keys make deciding them
  // again harmless; the heartbeat tracker and the outbox would not send them again), and the
  // cache, which ran ahead of the store, is reloaded (or marked stale when that fails too).
  auto give_back = [&] {
    queue_.insert(queue_.begin(), std::make_move_iterator(events.begin()),
                  std::make_move_iterator(events.end()));
    try {
      reload();
    } catch (const std::exception& e) {
      spdlog::error("reload after a failed commit failed too (tried again before the next one): {}",
                    e.what());
    }
  };
  for (int attempt = 1;; ++attempt) {
    try {
      outcomes.clear();
      batch.clear();
      outcomes.reserve(events.size());
      std::unordered_set<std::string> seen = store_.known_events(keys);
      for (const auto& e : events) outcomes.push_back(decide_into(e, batch, seen));
      if (batch.empty() && acks_.empty()) return outcomes;
      if (hooks_.crash_point) hooks_.crash_point(CrashPoint::BeforeCommit);
      store_.commit(batch, acks_);
      break;
    } catch (const VersionConflict& c) {
      // Another writer changed what we decided on: drop our cache and decide again on fresh
      // state. A writer that keeps losing is no longer the only one: give up, loudly.
      ++counters_.conflicts;
      if (attempt == kMaxConflictRetries + 1) {
        give_back();
        throw;
      }
      reload();
      spdlog::warn("store conflict, reloading and deciding {} events again: {}", events.size(),
                   c.what());
    } catch (...) {
      give_back();
      throw;
    }
  }
  acks_.clear();
  counters_.events += events.size();
  for (auto& c : batch) {
    if (c.duplicate) ++counters_.duplicates;
    if (hooks_.on_transition)
      for (const auto& t : c.decision.transitions) hooks_.on_transition(t);
    for (auto& a : c.decision.actions) {
      const TimeMs due = a.created_at;
      owe(PendingAction{std::move(a), 0, {}, due});
    }
  }
  if (hooks_.crash_point) hooks_.crash_point(CrashPoint::AfterCommit);
  return outcomes;
}

std::size_t Runtime::dispatch(TimeMs now, std::size_t limit) {
  ensure_current();
  std::size_t confirmed = take_results(now);
  std::size_t handed = 0;
  // A node's actions go one at a time, in decision order: one that is in flight or waits out a
  // backoff holds back the later ones for the same node. Notifications do not wait for each other.
  std::unordered_set<std::string_view> busy;  // views of node names in outbox_, which outlives it
  for (auto it = outbox_.begin(); it != outbox_.end() && handed < limit;) {
    Owed& owed = it->second;
    const Action& a = owed.pending.action;
    const bool to_node = a.kind != ActionKind::Notify;
    // Node actions only: a notifier reports every hand-over itself, however slow its receiver.
    if (to_node && owed.ticket != 0 && now - owed.handed_at >= kDeliveryTimeout) {
      ++counters_.delivery_timeouts;
      failed(owed, "no answer within " + std::to_string(kDeliveryTimeout / 1000) + " s", now);
    }
    if (owed.ticket != 0 || owed.pending.next_attempt_at > now || (to_node && busy.count(a.node))) {
      if (to_node) busy.insert(a.node);
      ++it;
      continue;
    }
    if (superseded(a)) {
      ++counters_.superseded;
      spdlog::info("action {} ({} on {}) dropped: its operation is over", a.id, to_string(a.kind),
                   a.node);
      acks_.push_back(a.id);
      it = outbox_.erase(it);
      continue;
    }
    if (to_node) busy.insert(a.node);
    hand_over(it->first, owed, now);
    ++handed;
    ++it;
  }
  confirmed += take_results(now);  // what drivers that finish at once already answered
  if (acks_.size() >= kMaxUnwrittenAcks) write_acks();
  return confirmed;
}

void Runtime::hand_over(std::uint64_t order, Owed& owed, TimeMs now) {
  owed.ticket = ++next_ticket_;
  owed.handed_at = now;
  ++in_flight_;
  const Action& a = owed.pending.action;
  // Under the inbox's lock, wake included: ~Runtime clears `wake` under it, so no wake-up can run
  // into a controller that is gone (a late answer after a crash, a notifier's worker).
  DeliveryCallback done = [inbox = inbox_, order, ticket = owed.ticket](DeliveryResult r) {
    std::lock_guard lock(inbox->mu);
    inbox->results.push_back(Result{order, ticket, std::move(r)});
    if (inbox->wake) inbox->wake();
  };
  try {
    if (a.kind == ActionKind::Notify)
      notifier_.notify(a, std::move(done));
    else
      driver_.execute(a, std::move(done));
  } catch (const std::exception& e) {
    // A driver's or sink's bug must not jam dispatch: treated as a transient failure, loudly.
    spdlog::error("action {} ({} on {}): unexpected error: {}", a.id, to_string(a.kind), a.node,
                  e.what());
    failed(owed, std::string("unexpected error: ") + e.what(), now);
  } catch (...) {
    owed.ticket = 0;  // not handed over: still owed
    --in_flight_;
    throw;
  }
}

// The action is owed again after its backoff (a late answer to this hand-over is ignored).
void Runtime::failed(Owed& owed, const std::string& error, TimeMs now) {
  if (owed.ticket != 0) --in_flight_;
  owed.ticket = 0;
  PendingAction& p = owed.pending;
  ++counters_.delivery_failures;
  const TimeMs backoff = retry_backoff(p.action.id, p.attempts);
  spdlog::warn("action {} ({} on {}) not delivered, retry in {} ms: {}", p.action.id,
               to_string(p.action.kind), p.action.node, backoff, error);
  store_.mark_action_failed(p.action.id, error, now + backoff);
  ++p.attempts;
  p.last_error = error;
  p.next_attempt_at = now + backoff;
}

std::size_t Runtime::take_results(TimeMs now) {
  std::vector<Result> results;
  {
    std::lock_guard lock(inbox_->mu);
    results.swap(inbox_->results);
  }
  std::size_t confirmed = 0;
  std::size_t i = 0;
  try {
    for (; i < results.size(); ++i) {
      take_result(results[i], now, confirmed);
    }
  } catch (...) {
    // A store error part way: the results not taken in go back, so none is lost.
    std::lock_guard lock(inbox_->mu);
    inbox_->results.insert(inbox_->results.begin(),
                           std::make_move_iterator(results.begin() + static_cast<long>(i)),
                           std::make_move_iterator(results.end()));
    throw;
  }
  return confirmed;
}

void Runtime::take_result(Result& r, TimeMs now, std::size_t& confirmed) {
  {
    auto it = outbox_.find(r.order);
    if (it == outbox_.end()) return;  // confirmed or dropped already
    Owed& owed = it->second;
    if (owed.ticket != r.ticket) return;  // the answer to a hand-over given up on
    const Action& a = owed.pending.action;
    switch (r.result.status) {
      case DeliveryResult::Status::Failed:
        failed(owed, r.result.error, now);
        return;
      case DeliveryResult::Status::FailedPermanently:
        // Never retried by itself: kept as a dead letter for an operator (retry_dead_letter). The
        // node's later actions go on; the engine decides what the operation becomes.
        ++counters_.dead_letters;
        spdlog::error("action {} ({} on {}) failed permanently, now a dead letter: {}", a.id,
                      to_string(a.kind), a.node, r.result.error);
        store_.mark_action_dead(a.id, r.result.error, now);
        if (a.kind != ActionKind::Notify && a.kind != ActionKind::StopTask)
          enqueue(Event{"failed:" + a.id, now, ActionFailed{a.node, a.id, a.kind, r.result.error}});
        break;
      case DeliveryResult::Status::Done:
        if (hooks_.crash_point) hooks_.crash_point(CrashPoint::AfterDeliver);
        if (hooks_.on_delivered) hooks_.on_delivered(a, now);
        acks_.push_back(a.id);
        ++confirmed;
        ++counters_.delivered;
        break;
    }
    --in_flight_;
    outbox_.erase(it);
  }
}

// An action of an operation that is already over (timed out, decided otherwise) would do harm or
// nothing: a diagnostic or reboot of a node that moved on, a start of a task given up on.
bool Runtime::superseded(const Action& a) const {
  if (a.kind != ActionKind::StartTask && a.kind != ActionKind::RunDiagnostic &&
      a.kind != ActionKind::Reboot)
    return false;
  const Node* n = cache_.node(a.node);
  return !n || n->operation_id != a.id;
}

std::optional<TimeMs> Runtime::next_dispatch_at() const {
  std::optional<TimeMs> next;
  std::unordered_set<std::string_view> busy;  // a node's later actions wait for its first
  for (const auto& [order, owed] : outbox_) {
    const Action& a = owed.pending.action;
    if (a.kind != ActionKind::Notify && !busy.insert(a.node).second) continue;
    if (owed.ticket != 0 && a.kind == ActionKind::Notify) continue;  // it reports itself
    const TimeMs t =
        owed.ticket != 0 ? owed.handed_at + kDeliveryTimeout : owed.pending.next_attempt_at;
    if (!next || t < *next) next = t;
  }
  return next;
}

// Exponential from 1 s, capped at kMaxRetryBackoff, with jitter in [1/2, 1] of the step so the
// actions that failed together (a rack behind one switch) do not retry together. The jitter is a
// hash of the action id and attempt: spread across actions, yet the same in every replay.
TimeMs retry_backoff(const std::string& action_id, int attempts) {
  const TimeMs step = std::min<TimeMs>(kMaxRetryBackoff, TimeMs{1000} << std::min(attempts, 20));
  const std::size_t h = std::hash<std::string>{}(action_id + "#" + std::to_string(attempts));
  const double jitter = 0.5 + 0.5 * static_cast<double>(h % 1024) / 1023.0;
  return std::max<TimeMs>(1, static_cast<TimeMs>(static_cast<double>(step) * jitter));
}

std::vector<PendingAction> Runtime::dead_letters(std::size_t limit) {
  return store_.dead_letters(limit);
}

bool Runtime::retry_dead_letter(const std::string& action_id, TimeMs now) {
  auto revived = store_.revive_action(action_id, now);
  if (!revived) return false;
  spdlog::info("dead letter {} ({} on {}) queued again by an operator", action_id,
               to_string(revived->action.kind), revived->action.node);
  owe(std::move(*revived));
  return true;
}

void Runtime::write_acks() {
  store_.commit({}, acks_);
  acks_.clear();
}

std::optional<TimeMs> Runtime::next_deadline() {
  while (!timers_.empty()) {
    const Timer& t = timers_.top();
    const Node* n = cache_.node(t.node);
    if (n && n->deadline_at == t.at && n->operation_id == t.operation_id) return t.at;
    timers_.pop();  // superseded: the operation finished or another took its place
  }
  return std::nullopt;
}

void Runtime::fire_due_timers(TimeMs now) {
  ensure_current();
  while (auto at = next_deadline()) {
    if (*at > now) break;
    Timer t = timers_.top();
    timers_.pop();
    enqueue(Event{"timeout:" + t.operation_id, now, OperationTimedOut{t.node, t.operation_id}});
  }
}

}  // namespace shepherd
