#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/clock.hpp"
#include "controller/heartbeats.hpp"
#include "runtime/runtime.hpp"

namespace shepherd {

// The loop did not take a command within its deadline (it is stuck on a slow store, or stopped).
class ControllerBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ControllerOptions {
  std::size_t batch_limit = 4096;  // actions handed over per dispatch() at most
  // How long call() waits for the loop to take and run a command.
  std::chrono::milliseconds command_timeout{10'000};
  // Runs on the loop after each batch is committed (the simulator places jobs waiting for nodes).
  std::function<void()> after_commit;
};

// The control loop: owns the runtime (engine, store, outbox), the clock, the heartbeat tracker and
// the inbox that drivers, agents, the API and timers feed. One thread runs the loop (run(), or a
// caller that calls settle() itself, as the simulator does on virtual time); every other public
// method may be called from any thread.
class Controller {
 public:
  Controller(Store& store, ClusterDriver& driver, Notifier& notifier, Engine engine,
             const Clock& clock, Policy policy, RuntimeHooks hooks = {},
             ControllerOptions options = {});
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Loads the state and records this start (its number goes into the keys made up here).
  void start();
  std::int64_t incarnation() const { return incarnation_; }

  // An event from a source with its own idempotency key (an agent's report id).
  void post(Event event);
  // The same, and `on_committed` runs (on the loop's thread) once the event is decided and
  // committed, or recognised as a duplicate: an agent forgets a report only then. It does not run
  // if the commit fails; the source sends the report again.
  void post(Event event, std::function<void()> on_committed);
  // An event whose key is made up here, unique across restarts: "c<incarnation>.<n>:<what>".
  void post(EventBody body, std::string_view what = "");
  // Liveness, from the agents' gateway or the simulated nodes.
  void node_connected(const std::string& node);
  void node_disconnected(const std::string& node);
  void heard_from(const std::string& node);

  // Runs `command` on the loop's thread at its next turn and returns what it returns; throws
  // ControllerBusy if the loop does not get to it within options.command_timeout. Never call it
  // from the loop's own thread.
  // `command` may run after the timeout: it must hold copies, not references to the caller.
  template <class F>
  auto call(F&& command) -> std::invoke_result_t<F&, Controller&>;

  // One turn of the loop (its thread only): takes in posted events and commands, heartbeat losses
  // and passed deadlines, decides and commits them, hands due actions over and takes in their
  // results, until nothing is left to do at the clock's now.
  void settle();
  // The earliest time something is due without anyone posting: a deadline, a heartbeat loss, an
  // action's retry or answer deadline.
  std::optional<TimeMs> next_wakeup();
  // Real time: settles, then sleeps until the next wakeup, a post, or `max_sleep`, until stop().
  // A store error is logged and tried again after a pause, but FencedOut (another controller
  // leads now) ends it: it is thrown to the caller.
  void run(std::chrono::milliseconds max_sleep = std::chrono::milliseconds(1000));
  // Waits (at most `max_wait`) until something is posted or stop() is called.
  void wait_for_work(std::chrono::milliseconds max_wait);
  void stop();

  // The loop's thread only (commands run there): decide one event now, with a made-up key.
  Outcome decide(EventBody body, std::string_view what = "");
  Outcome decide(const Event& event) { return runtime_.apply(event); }
  std::string make_key(std::string_view what);
  Runtime& runtime() { return runtime_; }
  const Clock& clock() const { return clock_; }
  TimeMs now() const { return clock_.now(); }

 private:
  bool take_inbox(std::vector<std::function<void()>>& committed);

  Store& store_;
  const Clock& clock_;
  ControllerOptions options_;
  HeartbeatTracker heartbeats_;
  std::int64_t incarnation_ = 0;
  std::uint64_t key_seq_ = 0;  // the loop's and post()'s made-up keys (under mu_)

  std::mutex mu_;
  std::condition_variable wake_;
  bool woken_ = false, stopping_ = false;
  std::vector<Event> posted_;
  std::vector<std::function<void()>> committed_callbacks_;  // of posted_'s events
  std::vector<std::function<void()>> commands_;
  struct Liveness {
    enum { Connected, Disconnected, Heard } kind;
    std::string node;
    TimeMs at;
  };
  std::vector<Liveness> liveness_;
  // Last: destroyed first, so no delivery result can wake a controller whose lock is gone.
  Runtime runtime_;
};

template <class F>
auto Controller::call(F&& command) -> std::invoke_result_t<F&, Controller&> {
  using R = std::invoke_result_t<F&, Controller&>;
  auto task = std::make_shared<std::packaged_task<R()>>(
      [this, command = std::forward<F>(command)]() mutable { return command(*this); });
  std::future<R> result = task->get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ControllerBusy("the controller is stopping");
    commands_.push_back([task] { (*task)(); });
    woken_ = true;
  }
  wake_.notify_all();
  if (result.wait_for(options_.command_timeout) != std::future_status::ready)
    throw ControllerBusy("the controller did not take the command within " +
                         std::to_string(options_.command_timeout.count()) + " ms");
  return result.get();
}

}  // namespace shepherd
