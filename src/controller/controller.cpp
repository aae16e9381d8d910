#include "controller/controller.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace shepherd {

Controller::Controller(Store& store, ClusterDriver& driver, Notifier& notifier, Engine engine,
                       const Clock& clock, Policy policy, RuntimeHooks hooks,
                       ControllerOptions options)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      heartbeats_(seconds(policy.heartbeat_timeout)),
      runtime_(store, driver, notifier, std::move(engine),
               [this, hooks = std::move(hooks)]() mutable {
                 auto user = std::move(hooks.on_result);
                 hooks.on_result = [this, user = std::move(user)] {
                   {
                     std::lock_guard lock(mu_);
                     woken_ = true;
                   }
                   wake_.notify_all();
                   if (user) user();
                 };
                 return std::move(hooks);
               }()) {}

void Controller::start() {
  runtime_.start();
  const std::int64_t number = store_.begin_incarnation(clock_.now());
  {
    std::lock_guard lock(mu_);
    incarnation_ = number;
  }
  // Every node the store knows is silent until it connects or sends a heartbeat: one whose agent
  // died while no controller ran is lost `heartbeat_timeout` after this start.
  for (const auto& [name, node] : runtime_.state().nodes())
    if (node.status != NodeStatus::Failed && node.status != NodeStatus::Unknown &&
        node.status != NodeStatus::Rebooting)
      heartbeats_.disconnected(name, clock_.now());
  spdlog::debug("controller start number {}: {} actions owed", incarnation_,
                runtime_.undelivered());
}

std::string Controller::make_key(std::string_view what) {
  std::lock_guard lock(mu_);
  // Before start() there is no start number, and a key without one could repeat an old one.
  if (incarnation_ == 0) throw std::logic_error("Controller: a key was made before start()");
  std::string key = fmt::format("c{}.{}", incarnation_, ++key_seq_);
  if (!what.empty()) key.append(":").append(what);
  return key;
}

// Stamped on arrival with the controller's clock: the engine decides on its own time, and no
// source's clock (a node's, a replay's) can date a key into the future.
void Controller::post(Event event) {
  event.at = clock_.now();
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(event));
    woken_ = true;
  }
  wake_.notify_all();
}

void Controller::post(Event event, std::function<void()> on_committed) {
  event.at = clock_.now();
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(event));
    if (on_committed) committed_callbacks_.push_back(std::move(on_committed));
    woken_ = true;
  }
  wake_.notify_all();
}

void Controller::post(EventBody body, std::string_view what) {
  post(Event{make_key(what), clock_.now(), std::move(body)});
}

void Controller::node_connected(const std::string& node) {
  std::lock_guard lock(mu_);
  liveness_.push_back({Liveness::Connected, node, clock_.now()});
}

void Controller::node_disconnected(const std::string& node) {
  {
    std::lock_guard lock(mu_);
    liveness_.push_back({Liveness::Disconnected, node, clock_.now()});
    woken_ = true;
  }
  wake_.notify_all();  // the loop sleeps until the loss is due, not only until the next post
}

void Controller::heard_from(const std::string& node) {
  std::lock_guard lock(mu_);
  liveness_.push_back({Liveness::Heard, node, clock_.now()});
}

Outcome Controller::decide(EventBody body, std::string_view what) {
  return runtime_.apply(Event{make_key(what), clock_.now(), std::move(body)});
}

// Moves what other threads handed in onto the loop: commands run, events queued. True if there was
// anything.
bool Controller::take_inbox(std::vector<std::function<void()>>& committed) {
  std::vector<Event> events;
  std::vector<std::function<void()>> commands;
  std::vector<Liveness> liveness;
  {
    std::lock_guard lock(mu_);
    events.swap(posted_);
    for (auto& f : committed_callbacks_) committed.push_back(std::move(f));
    committed_callbacks_.clear();
    commands.swap(commands_);
    liveness.swap(liveness_);
    woken_ = false;
  }
  for (const auto& l : liveness) {
    if (l.kind == Liveness::Connected) heartbeats_.connected(l.node, l.at);
    if (l.kind == Liveness::Disconnected) heartbeats_.disconnected(l.node, l.at);
    if (l.kind == Liveness::Heard) heartbeats_.heard_from(l.node, l.at);
  }
  for (auto& e : events) runtime_.enqueue(std::move(e));
  for (auto& c : commands) c();  // after the events posted before them
  return !events.empty() || !commands.empty();
}

void Controller::settle() {
  for (int round = 0; round < 1000; ++round) {
    const TimeMs now = clock_.now();
    std::vector<std::function<void()>> committed;
    bool busy = take_inbox(committed);
    for (const auto& node : heartbeats_.lost(now)) {
      runtime_.enqueue(Event{make_key("lost:" + node), now, NodeLost{node}});
      busy = true;
    }
    runtime_.fire_due_timers(now);
    while (runtime_.queued() > 0) {
      runtime_.flush();
      if (options_.after_commit) options_.after_commit();
      busy = true;
    }
    for (auto& f : committed) f();  // every event taken in above is committed now
    if (runtime_.unwritten_acks() > 0 && runtime_.queued() == 0) runtime_.flush();
    if (runtime_.dispatch(now, options_.batch_limit) > 0) busy = true;
    if (!busy && runtime_.queued() == 0) return;
  }
  spdlog::warn("controller: still busy after 1000 rounds; the next turn goes on");
}

std::optional<TimeMs> Controller::next_wakeup() {
  std::optional<TimeMs> next = runtime_.next_deadline();
  auto earliest = [&](std::optional<TimeMs> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  earliest(heartbeats_.next_loss_at());
  earliest(runtime_.next_dispatch_at());
  return next;
}

void Controller::wait_for_work(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, max_wait, [this] { return woken_ || stopping_; });
}

void Controller::run(std::chrono::milliseconds max_sleep) {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    try {
      settle();
    } catch (const FencedOut&) {
      throw;  // another controller leads now: this one must stop, not try again
    } catch (const std::exception& e) {
      // A store error: nothing of the batch was written and its sources send again; the loop
      // goes on after a pause rather than spin on a store that is down.
      spdlog::error("controller: {}", e.what());
      wait_for_work(max_sleep);
      continue;
    }
    auto sleep = max_sleep;
    if (auto at = next_wakeup()) {
      // At least a few ms: a due item held back (its node busy) must not make the loop spin.
      const auto until = std::chrono::milliseconds(std::max<TimeMs>(5, *at - clock_.now()));
      sleep = std::min(sleep, until);
    }
    wait_for_work(sleep);
  }
}

void Controller::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
}

}  // namespace shepherd
