#include "api/http_api.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "api/http_reply.hpp"
#include "api/request_body.hpp"
#include "api/views.hpp"

namespace shepherd {
namespace {

using api::reject;
using api::reply;
using net::HttpRequest;
using net::HttpResponse;
using nlohmann::json;

constexpr std::int64_t kMaxJobNodes = 100000;  // as many as a scenario's cluster may have
constexpr std::size_t kTimelinePage = 10000;   // entries per GET /api/timeline at most
constexpr std::size_t kMaxEnvEntries = 1000;

json to_json(const TimelineEntry& e) {
  const Transition& t = e.transition;
  return {{"seq", e.seq},   {"t", t.at / 1000.0}, {"kind", to_string(t.entity)}, {"id", t.id},
          {"from", t.from}, {"to", t.to},         {"reason", t.reason}};
}

// A command's answer: the outcome, and the record it touched as the loop left it.
struct CommandResult {
  Outcome outcome;
  json record;
};

// The task a submitted job runs: its command line, environment and working directory (a real
// node's agent runs them), or only a runtime (simulated nodes).
TaskDefinition read_task_definition(const api::RequestBody& body) {
  TaskDefinition def;
  def.runtime_seconds = body.seconds("runtime", true, false).value_or(600);
  def.name = body.text("name", false).value_or("");
  def.working_dir = body.text("working_dir", false).value_or("");
  if (body.has("command")) {
    def.command = *body.texts("command");
    if (def.command.empty() || def.command.front().empty())
      throw api::BadRequest({RejectionCode::Invalid, "command",
                             "command must be a non-empty list: the program, then its arguments"});
  }
  if (body.has("env")) {
    const json& env = body.at("env");
    if (!env.is_object() || env.size() > kMaxEnvEntries)
      throw api::BadRequest({RejectionCode::Invalid, "env",
                             "env must be an object of at most 1000 NAME: \"value\" pairs"});
    for (const auto& [name, value] : env.items()) {
      const bool name_ok = !name.empty() && name.find_first_of("=\0", 0, 2) == std::string::npos;
      if (!name_ok || !value.is_string())
        throw api::BadRequest({RejectionCode::Invalid, "env." + name,
                               "each env entry is a NAME (no '=') with a string value"});
      def.env[name] = value.get<std::string>();
    }
  }
  return def;
}

}  // namespace

HttpApi::HttpApi(Controller& controller, Store& reader, HttpApiOptions options)
    : HttpApi(reader, std::move(options)) {
  controller_ = &controller;
}

HttpApi::HttpApi(Store& reader, HttpApiOptions options)
    : controller_(nullptr), leader_url_(std::move(options.leader_url)), reader_(reader) {
  if (!options.admin_token.empty()) {
    router_.guard(
        [token = options.admin_token](const HttpRequest& req) -> std::optional<HttpResponse> {
          const std::string given = req.bearer();
          // Constant time: how much of a guess matched must not show in the answer's timing.
          if (given.size() == token.size() &&
              CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0)
            return std::nullopt;
          spdlog::warn("api: {} {} from {} refused: {}", req.method, req.path, req.remote,
                       given.empty() ? "no token" : "wrong token");
          HttpResponse r = HttpResponse::error(
              401, "unauthorized", "authorization",
              given.empty() ? "this route needs Authorization: Bearer <admin token>"
                            : "the token is not valid");
          r.headers.emplace_back("WWW-Authenticate", "Bearer");
          return r;
        },
        [&] {
          std::vector<std::string> open{"/healthz"};
          open.insert(open.end(), options.open_paths.begin(), options.open_paths.end());
          return open;
        }());
  }
  routes();
  http_ = std::make_unique<net::HttpServer>(router_, options.http, options.tls);
}

HttpApi::~HttpApi() {
  stop();
}

int HttpApi::bind(const std::string& host, int port) {
  return http_->bind(host, port);
}
void HttpApi::start() {
  http_->start();
}
void HttpApi::stop() {
  http_->stop();
}

net::Handler HttpApi::on_leader(net::Handler handler) {
  return [this, handler = std::move(handler)](const HttpRequest& req) {
    if (controller_.load()) return handler(req);
    const std::optional<std::string> leader = leader_url_ ? leader_url_() : std::nullopt;
    if (!leader)
      return HttpResponse::error(503, "no_leader", "",
                                 "this controller is a standby and no controller leads at the "
                                 "moment (one takes over within the lease's ttl): try again");
    // 307 keeps the method and the body; the client sends its token again to the leader, which
    // shares it (the controllers share one server directory).
    HttpResponse r = HttpResponse::error(
        307, "not_leader", "", "this controller is a standby: the leader is at " + *leader);
    r.headers.emplace_back("Location", *leader + req.target);
    return r;
  };
}

void HttpApi::routes() {
  auto& r = router_;
  // A command that the loop does not take in time is 503, not an error of the server.
  auto on_loop = [this](net::Handler handler) -> net::Handler {
    return on_leader([handler = std::move(handler)](const HttpRequest& req) {
      try {
        return handler(req);
      } catch (const ControllerBusy& e) {
        return HttpResponse::error(503, "unavailable", "", e.what());
      }
    });
  };
  r.get("/healthz", [](const HttpRequest&) { return reply(200, {{"ok", true}}); });
  // A listing: every record of one kind, in id order, read from the store.
  auto listing = [this](auto records) {
    return [this, records](const HttpRequest&) {
      Snapshot st;
      reader_.load(st);
      json out = json::array();
      for (const auto* record : records(st)) out.push_back(api::to_json(*record));
      return reply(200, out);
    };
  };
  r.get("/api/jobs", listing([](const Snapshot& st) { return st.jobs_by_id(); }));
  r.get("/api/tasks", listing([](const Snapshot& st) { return st.tasks_by_id(); }));
  r.get("/api/nodes", listing([](const Snapshot& st) { return st.nodes_by_name(); }));
  r.get("/api/jobs/([^/]+)", [this](const HttpRequest& req) {
    Snapshot st;
    reader_.load(st);
    const Job* job = st.job(req.params[0]);
    if (!job) return reject({RejectionCode::NotFound, "job_id", "no job named " + req.params[0]});
    json out = api::to_json(*job);
    out["tasks"] = json::array();
    for (int a = 0; a <= job->attempt; ++a)
      for (const Task* t : st.tasks_of(job->id, a)) out["tasks"].push_back(api::to_json(*t));
    return reply(200, out);
  });
  r.get("/api/tasks/([^/]+)", [this](const HttpRequest& req) {
    Snapshot st;
    reader_.load(st);
    const Task* task = st.task(req.params[0]);
    if (!task)
      return reject({RejectionCode::NotFound, "task_id", "no task named " + req.params[0]});
    return reply(200, api::to_json(*task));
  });
  r.get("/api/nodes/([^/]+)", [this](const HttpRequest& req) {
    Snapshot st;
    reader_.load(st);
    const Node* node = st.node(req.params[0]);
    if (!node) return reject({RejectionCode::NotFound, "node", "no node named " + req.params[0]});
    return reply(200, api::to_json(*node));
  });
  r.get("/api/timeline", [this](const HttpRequest& req) {
    std::int64_t since = 0;
    if (auto it = req.query.find("since"); it != req.query.end()) {
      const std::string& text = it->second;
      std::size_t used = 0;
      try {
        since = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size() || since < 0)
        return reject({RejectionCode::Invalid, "since", "since must be a non-negative integer"});
    }
    json out = json::array();
    for (const auto& e : reader_.timeline(since, kTimelinePage)) out.push_back(to_json(e));
    return reply(200, out);
  });
  r.post(
      "/api/jobs", on_loop([this](const HttpRequest& req) {
        JobSubmitted submitted;
        try {
          const api::RequestBody body(
              req.body, {"id", "nodes", "runtime", "name", "command", "env", "working_dir"});
          submitted.job_id = *body.text("id", true);
          submitted.task_definition = read_task_definition(body);
          if (!body.has("nodes"))
            throw api::BadRequest({RejectionCode::Invalid, "nodes",
                                   "nodes is required (a list of names or a count)"});
          if (body.at("nodes").is_number())
            submitted.node_count = static_cast<int>(*body.integer("nodes", 1, kMaxJobNodes, true));
          else if (body.at("nodes").is_array())
            submitted.nodes = *body.texts("nodes");
          else
            throw api::BadRequest({RejectionCode::Invalid, "nodes",
                                   "nodes must be a list of node names or a count of free nodes"});
        } catch (const api::BadRequest& e) {
          return reject(e.rejection);
        }
        const CommandResult result = controller().call([submitted](Controller& c) {
          CommandResult out{c.decide(submitted, "submit:" + submitted.job_id), {}};
          if (!out.outcome.rejection)
            out.record = api::to_json(*c.runtime().state().job(submitted.job_id));
          return out;
        });
        if (result.outcome.rejection) return reject(*result.outcome.rejection);
        return reply(201, result.record);
      }));
  r.post("/api/jobs/([^/]+)/stop", on_loop([this](const HttpRequest& req) {
           const std::string id = req.params[0];
           const CommandResult result = controller().call([id](Controller& c) {
             CommandResult out{c.decide(JobStopRequested{id, "api"}, "stop:" + id), {}};
             if (!out.outcome.rejection) out.record = api::to_json(*c.runtime().state().job(id));
             return out;
           });
           if (result.outcome.rejection) return reject(*result.outcome.rejection);
           return reply(200, result.record);
         }));
  r.post("/api/nodes/([^/]+)/repair", on_loop([this](const HttpRequest& req) {
           const std::string name = req.params[0];
           const CommandResult result = controller().call([name](Controller& c) {
             CommandResult out{c.decide(NodeRepaired{name, "api"}, "repair:" + name), {}};
             if (!out.outcome.rejection) out.record = api::to_json(*c.runtime().state().node(name));
             return out;
           });
           if (result.outcome.rejection) return reject(*result.outcome.rejection);
           return reply(200, result.record);
         }));
  r.get("/api/dead-letters", [this](const HttpRequest&) {
    json out = json::array();
    for (const auto& p : reader_.dead_letters(1000)) out.push_back(api::to_json(p));
    return reply(200, out);
  });
  r.post("/api/dead-letters/([^/]+)/retry", on_loop([this](const HttpRequest& req) {
           const std::string id = req.params[0];
           const bool retried = controller().call(
               [id](Controller& c) { return c.runtime().retry_dead_letter(id, c.now()); });
           if (!retried)
             return reject({RejectionCode::NotFound, "id", "no dead letter with id " + id});
           return reply(202, {{"retried", id}});
         }));
}

}  // namespace shepherd
