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
      hooks_(std::move(hooks)) {}

void Runtime::start() {
  reload();
}

void Runtime::reload() {
  cache_ = Snapshot{};
  store_.load(cache_);
  timers_ = {};
  for (const auto& [name, node] : cache_.nodes())
    if (node.deadline_at > 0) timers_.push({node.deadline_at, name, node.operation_id});
  auto pending = store_.pending_actions(std::numeric_limits<TimeMs>::max(),
                                        std::numeric_limits<std::size_t>::max());
  std::unordered_set<std::string> acknowledged(acks_.begin(), acks_.end());
  outbox_.clear();
  for (auto& p : pending)
    if (!acknowledged.count(p.action.id)) outbox_.push_back(std::move(p));
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
  if (!d.refused.empty()) d = refused_decision(event, d.refused);
  if (d.rejection) {  // a refused command is not recorded: the same key may be sent corrected
    out.rejection = d.rejection;
    return out;
  }
  seen.insert(event.key);
  out.note = d.note;
  if (!d.note.empty()) spdlog::debug("event {} ({}): {}", event.key, commit.event_kind, d.note);
  apply_to_cache(d);
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
  a.payload = nlohmann::json{
      {"kind", kNotifyDecisionRefused},
      {"job", ""},
      {"nodes", nlohmann::json::array()},
      {"reason", "event " + event.key + " (" + std::string(event_kind(event.body)) +
                     "): the engine asked for an illegal transition, "
                     "nothing was written: " +
                     all},
      {"attempt",
       0}}.dump();
  out.actions.push_back(std::move(a));
  return out;
}

void Runtime::apply_to_cache(const Decision& d) {
  // Versions move as the store moves them, so the next event of a batch reads what will be stored.
  for (Job j : d.jobs) ++j.version, cache_.put(j);
  for (Task t : d.tasks) ++t.version, cache_.put(t);
  for (Node n : d.nodes) {
    ++n.version;
    if (n.deadline_at > 0) timers_.push({n.deadline_at, n.name, n.operation_id});
    cache_.put(n);
  }
}

std::vector<Outcome> Runtime::flush() {
  std::vector<Event> events;
  events.swap(queue_);
  std::vector<std::string> keys;
  keys.reserve(events.size());
  for (const auto& e : events) keys.push_back(e.key);
  std::vector<Outcome> outcomes;
  std::vector<Commit> batch;
  for (int attempt = 1;; ++attempt) {
    outcomes.clear();
    batch.clear();
    outcomes.reserve(events.size());
    std::unordered_set<std::string> seen = store_.known_events(keys);
    for (const auto& e : events) outcomes.push_back(decide_into(e, batch, seen));
    if (batch.empty() && acks_.empty()) return outcomes;
    try {
      store_.commit(batch, acks_);
      break;
    } catch (const VersionConflict& c) {
      // Another writer changed what we decided on: drop our cache and decide again on fresh
      // state. A writer that keeps losing is no longer the only one: give up, loudly.
      ++counters_.conflicts;
      reload();
      if (attempt == kMaxConflictRetries + 1) throw;
      spdlog::warn("store conflict, reloading and deciding {} events again: {}", events.size(),
                   c.what());
    } catch (...) {
      reload();  // the cache ran ahead of the store: put it back
      throw;     // the events are not recorded: their sources send them again
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
      outbox_.push_back(PendingAction{std::move(a), 0, {}, due});
    }
  }
  if (hooks_.crash_point) hooks_.crash_point(CrashPoint::AfterCommit);
  return outcomes;
}

std::size_t Runtime::dispatch(TimeMs now, std::size_t limit) {
  std::size_t done = 0;
  std::deque<PendingAction> later;  // not due yet, or failed just now: kept in order
  // A node gets its actions in the order they were decided: a stop never overtakes the start it
  // stops. So one that waits holds back the later ones for the same node (notifications for
  // theirs).
  std::unordered_set<std::string> waiting;
  auto channel = [](const Action& a) { return a.kind == ActionKind::Notify ? "" : a.node; };
  while (!outbox_.empty() && done < limit) {
    PendingAction pending = std::move(outbox_.front());
    outbox_.pop_front();
    const Action& a = pending.action;
    if (pending.next_attempt_at > now || waiting.count(channel(a))) {
      waiting.insert(channel(a));
      later.push_back(std::move(pending));
      continue;
    }
    std::string error;
    try {
      if (a.kind == ActionKind::Notify)
        notifier_.notify(a);
      else
        driver_.execute(a);
    } catch (const PermanentDeliveryError& e) {
      // Never retried by itself: kept as a dead letter for an operator (retry_dead_letter). The
      // node's later actions go on; nothing waits for this one.
      ++counters_.dead_letters;
      spdlog::error("action {} ({} on {}) failed permanently, now a dead letter: {}", a.id,
                    to_string(a.kind), a.node, e.what());
      store_.mark_action_dead(a.id, e.what(), now);
      continue;
    } catch (const DeliveryError& e) {
      error = e.what();
    } catch (const std::exception& e) {
      // A driver's or sink's bug must not jam dispatch: treated as transient, loudly.
      spdlog::error("action {} ({} on {}): unexpected error: {}", a.id, to_string(a.kind), a.node,
                    e.what());
      error = std::string("unexpected error: ") + e.what();
    } catch (...) {
      outbox_.push_front(std::move(pending));  // not delivered: still owed
      outbox_.insert(outbox_.begin(), std::make_move_iterator(later.begin()),
                     std::make_move_iterator(later.end()));
      throw;
    }
    if (!error.empty()) {
      ++counters_.delivery_failures;
      const TimeMs backoff = retry_backoff(a.id, pending.attempts);
      spdlog::warn("action {} ({} on {}) not delivered, retry in {} ms: {}", a.id,
                   to_string(a.kind), a.node, backoff, error);
      store_.mark_action_failed(a.id, error, now + backoff);
      ++pending.attempts;
      pending.last_error = error;
      pending.next_attempt_at = now + backoff;
      waiting.insert(channel(a));
      later.push_back(std::move(pending));
      continue;
    }
    if (hooks_.crash_point) hooks_.crash_point(CrashPoint::AfterDeliver);
    if (hooks_.on_delivered) hooks_.on_delivered(a, now);
    acks_.push_back(a.id);
    ++done;
  }
  outbox_.insert(outbox_.begin(), std::make_move_iterator(later.begin()),
                 std::make_move_iterator(later.end()));
  if (acks_.size() >= kMaxUnwrittenAcks) write_acks();
  counters_.delivered += done;
  return done;
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
  outbox_.push_back(std::move(*revived));
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
  while (auto at = next_deadline()) {
    if (*at > now) break;
    Timer t = timers_.top();
    timers_.pop();
    enqueue(Event{"timeout:" + t.operation_id, now, OperationTimedOut{t.node, t.operation_id}});
  }
}

}  // namespace shepherd
