#include "dev/dev_server.hpp"

#include <chrono>
#include <cstdio>
#include <thread>

#include "api/http_reply.hpp"
#include "api/request_body.hpp"
#include "notify/sinks.hpp"
#include "notify/webhook.hpp"
#include "store/sqlite_store.hpp"

namespace shepherd {

DevServer::DevServer(DevOptions options, std::function<void(const std::string&)> print)
    : options_(std::move(options)), print_(std::move(print)) {
  SimOptions sim;
  sim.sqlite.retention = options_.retention;
  sim.notify_in_background = true;  // a webhook's timeouts never run on the loop
  sim.store_path = options_.store_dir.empty() ? ":memory:" : options_.store_dir + "/shepherd.db";
  sim.on_transition = [this](const Transition& t) {
    char line[64];
    std::snprintf(line, sizeof line, "[%8.1f s] ", t.at / 1000.0);
    print_(std::string(line) + std::string(to_string(t.entity)) + " " + t.id + ": " +
           (t.from.empty() ? "(new)" : t.from) + " -> " + t.to +
           (t.reason.empty() ? "" : "  (" + t.reason + ")"));
  };
  sim.sinks.push_back(std::make_shared<LogSink>());
  if (!options_.webhook_url.empty()) {
    WebhookOptions webhook;
    webhook.url = options_.webhook_url;
    sim.sinks.push_back(std::make_shared<WebhookSink>(webhook));
  }
  sim_ = std::make_unique<Simulation>(dev_scenario(), std::move(sim));
  Store* reader = &sim_->store();
  if (!options_.store_dir.empty()) {
    SqliteOptions reads;
    reads.retention.interval_ms = 0;  // the writer's store prunes
    reads.checkpoint_in_background = false;
    reader_ = std::make_unique<SqliteStore>(options_.store_dir + "/shepherd.db", reads);
    reader = reader_.get();
  }
  api_ = std::make_unique<HttpApi>(sim_->controller(), *reader);
  fault_route();
  port_ = api_->bind(options_.host, options_.port);
}

DevServer::~DevServer() = default;

Scenario DevServer::dev_scenario() const {
  Scenario s;
  s.until = 1e9;
  s.policy = options_.policy;
  s.cluster.reboot_seconds = 180;
  s.cluster.diag_seconds = 60;
  for (int i = 1; i <= options_.nodes; ++i) s.cluster.nodes.push_back("node-" + std::to_string(i));
  if (options_.demo && options_.nodes >= 2) {
    const int n = std::min(4, options_.nodes);
    JobSpec train{"demo-train", {}, n, 1800, 5};
    for (int i = 1; i <= n; ++i) train.nodes.push_back("node-" + std::to_string(i));
    s.jobs.push_back(train);
    ScenarioEvent fault;
    fault.at = 60;
    fault.kind = ScenarioEvent::Kind::GpuFault;
    fault.node = "node-2";
    s.events.push_back(fault);
  }
  return s;
}

void DevServer::run(double seconds_to_run) {
  api_->start();
  // Whatever ends the loop (stop(), the duration, a store error), the HTTP side stops with it.
  struct StopHttp {
    HttpApi& api;
    ~StopHttp() { api.stop(); }
  } stop_http{*api_};
  print_("shepherd dev: " + std::to_string(options_.nodes) + " simulated nodes, speed x" +
         std::to_string(static_cast<int>(options_.speed)) + ", API on http://" + options_.host +
         ":" + std::to_string(port_) + "/api/jobs (no authentication: loopback only)");
  using Wall = std::chrono::steady_clock;
  const auto start = Wall::now();
  const TimeMs origin = sim_->now();
  while (!stopping_) {
    const double wall = std::chrono::duration<double>(Wall::now() - start).count();
    if (seconds_to_run > 0 && wall >= seconds_to_run) break;
    sim_->run_until(origin + seconds(wall * options_.speed));
    sim_->controller().wait_for_work(std::chrono::milliseconds(50));
  }
  sim_->controller().stop();
  sim_->controller().settle();  // commands already queued get their answer
}

// Breaks a simulated node now: {"fault": gpu|gpu_persistent|app|exit_code|reboot_hang|diag_hang|
// agent_lost|node_crash, "node", "job"?, "code"?, "duration"?}. It runs on the loop like every
// command.
void DevServer::fault_route() {
  api_->router().post("/api/faults", [this](const net::HttpRequest& req) {
    std::string kind;
    ScenarioEvent e;
    try {
      const api::RequestBody body(req.body, {"fault", "node", "job", "code", "duration"});
      kind = *body.text("fault", true);
      e.node = *body.text("node", true);
      e.job = body.text("job", false).value_or("");
      e.exit_code = static_cast<int>(body.integer("code", 0, 255, false).value_or(e.exit_code));
      e.duration = body.seconds("duration", false, false).value_or(e.duration);
    } catch (const api::BadRequest& err) {
      return api::reject(err.rejection);
    }
    auto parsed = parse_event_kind(kind);
    if (!parsed || *parsed == ScenarioEvent::Kind::StopJob)
      return api::reject({RejectionCode::Invalid, "fault",
                          "fault must be one of gpu, gpu_persistent, app, exit_code, "
                          "reboot_hang, diag_hang, agent_lost, node_crash"});
    e.kind = *parsed;
    Simulation* sim = sim_.get();
    const std::optional<double> at = sim_->controller().call([sim, e](Controller&) mutable {
      std::optional<double> injected;
      if (!sim->runtime().state().node(e.node)) return injected;
      e.at = sim->now() / 1000.0;
      sim->inject(e);
      return injected = e.at;
    });
    if (!at) return api::reject({RejectionCode::NotFound, "node", "no node named " + e.node});
    return api::reply(202, {{"injected", kind}, {"node", e.node}, {"at", *at}});
  });
}

}  // namespace shepherd
