#include "api/dev_server.hpp"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "api/request_body.hpp"
#include "api/views.hpp"
#include "notify/sinks.hpp"
#include "notify/webhook.hpp"

namespace shepherd {
namespace {

using nlohmann::json;

constexpr std::int64_t kMaxJobNodes = 100000;  // as many as a scenario's cluster may have

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void reject(httplib::Response& res, const Rejection& r) {
  reply(res, api::http_status(r), api::error_json(r));
}

}  // namespace

DevServer::DevServer(DevOptions options, std::function<void(const std::string&)> print)
    : options_(std::move(options)), print_(std::move(print)) {
  SimOptions sim;
  sim.store_path = options_.store_dir.empty() ? ":memory:" : options_.store_dir + "/shepherd.db";
  sim.on_transition = [this](const Transition& t) {
    char line[64];
    std::snprintf(line, sizeof line, "[%8.1f s] ", t.at / 1000.0);
    print_(std::string(line) + t.entity + " " + t.id + ": " + (t.from.empty() ? "(new)" : t.from) +
           " -> " + t.to + (t.reason.empty() ? "" : "  (" + t.reason + ")"));
  };
  sim.sinks.push_back(std::make_shared<LogSink>());
  if (!options_.webhook_url.empty()) {
    WebhookOptions webhook;
    webhook.url = options_.webhook_url;
    sim.sinks.push_back(std::make_shared<WebhookSink>(webhook));
  }
  sim_ = std::make_unique<Simulation>(dev_scenario(), std::move(sim));
  http_ = std::make_unique<httplib::Server>();
  routes();
  port_ = options_.port == 0
              ? http_->bind_to_any_port(options_.host)
              : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ < 0)
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " (in use? try --port)");
}

DevServer::~DevServer() = default;

Scenario DevServer::dev_scenario() const {
  Scenario s;
  s.until = 1e12;
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
  std::thread http([this] { http_->listen_after_bind(); });
  print_("shepherd dev: " + std::to_string(options_.nodes) + " simulated nodes, speed x" +
         std::to_string(static_cast<int>(options_.speed)) + ", API on http://" + options_.host +
         ":" + std::to_string(port_) + "/api/jobs");
  using Wall = std::chrono::steady_clock;
  const auto start = Wall::now();
  while (!stopping_) {
    const double wall = std::chrono::duration<double>(Wall::now() - start).count();
    if (seconds_to_run > 0 && wall >= seconds_to_run) break;
    {
      std::lock_guard lock(mu_);
      sim_->run_until(seconds(wall * options_.speed));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  http_->stop();
  http.join();
}

void DevServer::routes() {
  auto& s = *http_;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"ok", true}});
  });
  s.Get("/api/jobs", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    json out = json::array();
    for (const Job* job : sim_->runtime().state().jobs_by_id()) out.push_back(api::to_json(*job));
    reply(res, 200, out);
  });
  s.Get(R"(/api/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    const Snapshot& st = sim_->runtime().state();
    const Job* job = st.job(req.matches[1]);
    if (!job)
      return reject(res, {"not_found", "job_id", "no job named " + std::string(req.matches[1])});
    json out = api::to_json(*job);
    out["tasks"] = json::array();
    for (int a = 0; a <= job->retry; ++a)
      for (const Task* t : st.tasks_of(job->id, a)) out["tasks"].push_back(api::to_json(*t));
    reply(res, 200, out);
  });
  s.Get("/api/tasks", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    json out = json::array();
    for (const Task* t : sim_->runtime().state().tasks_by_id()) out.push_back(api::to_json(*t));
    reply(res, 200, out);
  });
  s.Get("/api/nodes", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    json out = json::array();
    for (const Node* node : sim_->runtime().state().nodes_by_name())
      out.push_back(api::to_json(*node));
    reply(res, 200, out);
  });
  s.Get("/api/timeline", [this](const httplib::Request& req, httplib::Response& res) {
    std::size_t since = 0;
    if (req.has_param("since")) {
      try {
        since = std::stoul(req.get_param_value("since"));
      } catch (const std::exception&) {
        return reject(res, {"invalid", "since", "since must be a non-negative integer"});
      }
    }
    std::lock_guard lock(mu_);
    const json& all = sim_->timeline();
    json out = json::array();
    for (std::size_t i = since; i < all.size(); ++i) {
      json entry = all[i];
      entry["seq"] = i + 1;
      out.push_back(std::move(entry));
    }
    reply(res, 200, out);
  });
  s.Post("/api/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    JobSpec job;
    try {
      const api::RequestBody body(req.body, {"id", "nodes", "runtime"});
      job.id = *body.text("id", true);
      job.runtime = body.seconds("runtime", true, false).value_or(600);
      if (!body.has("nodes"))
        throw api::BadRequest(
            {"invalid", "nodes", "nodes is required (a list of names or a count)"});
      if (body.at("nodes").is_number())
        job.node_count = static_cast<int>(*body.integer("nodes", 1, kMaxJobNodes, true));
      else
        job.nodes = *body.texts("nodes");
    } catch (const api::BadRequest& e) {
      return reject(res, e.rejection);
    }
    std::lock_guard lock(mu_);
    Outcome o = sim_->submit(job);
    if (o.rejection) return reject(res, *o.rejection);
    reply(res, 201, api::to_json(*sim_->runtime().state().job(job.id)));
  });
  s.Post(R"(/api/jobs/([^/]+)/stop)", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    Outcome o = sim_->stop(req.matches[1], "api");
    if (o.rejection) return reject(res, *o.rejection);
    reply(res, 200, api::to_json(*sim_->runtime().state().job(req.matches[1])));
  });
  s.Get("/api/dead-letters", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    json out = json::array();
    for (const auto& p : sim_->runtime().dead_letters()) out.push_back(api::to_json(p));
    reply(res, 200, out);
  });
  s.Post(R"(/api/dead-letters/([^/]+)/retry)",
         [this](const httplib::Request& req, httplib::Response& res) {
           std::lock_guard lock(mu_);
           if (!sim_->runtime().retry_dead_letter(req.matches[1], sim_->now()))
             return reject(
                 res, {"not_found", "id", "no dead letter with id " + std::string(req.matches[1])});
           reply(res, 202, {{"retried", std::string(req.matches[1])}});
         });
  s.Post("/api/faults", [this](const httplib::Request& req, httplib::Response& res) {
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
      return reject(res, err.rejection);
    }
    auto parsed = parse_event_kind(kind);
    if (!parsed || *parsed == ScenarioEvent::Kind::StopJob)
      return reject(res, {"invalid", "fault",
                          "fault must be one of gpu, gpu_persistent, app, exit_code, reboot_hang, "
                          "diag_hang, agent_lost"});
    e.kind = *parsed;
    std::lock_guard lock(mu_);
    if (!sim_->runtime().state().node(e.node))
      return reject(res, {"not_found", "node", "no node named " + e.node});
    e.at = sim_->now() / 1000.0;
    sim_->inject(e);
    reply(res, 202, {{"injected", kind}, {"node", e.node}, {"at", e.at}});
  });
}

}  // namespace shepherd
