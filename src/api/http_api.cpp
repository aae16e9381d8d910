#include "api/http_api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/http_reply.hpp"
#include "api/request_body.hpp"
#include "api/views.hpp"

namespace shepherd {
namespace {

using api::reject;
using api::reply;
using nlohmann::json;

constexpr std::int64_t kMaxJobNodes = 100000;  // as many as a scenario's cluster may have
constexpr std::size_t kTimelinePage = 10000;   // entries per GET /api/timeline at most

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

}  // namespace

HttpApi::HttpApi(Controller& controller, Store& reader, HttpApiOptions options)
    : controller_(controller), reader_(reader), http_(std::make_unique<httplib::Server>()) {
  http_->set_payload_max_length(options.max_body_bytes);
  http_->set_read_timeout(options.read_timeout_seconds, 0);
  http_->set_tcp_nodelay(true);  // a kept-alive client must not wait out Nagle on each request
  // Every answer is JSON, the errors cpp-httplib makes itself too (404, 413, 414, ...).
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string code = res.status == 404 ? "not_found" : fmt::format("http_{}", res.status);
    const std::string message = res.status == 404   ? "no such route: " + req.path
                                : res.status == 413 ? "the request body is too large"
                                : res.status == 414 ? "the request URI is too long"
                                : res.status == 400
                                    ? "the request could not be read (a POST needs a body, or "
                                      "Content-Length: 0)"
                                    : "the request was refused";
    const std::string field = res.status == 400 || res.status == 413 ? "body" : "path";
    reply(res, res.status, api::error_json(code, field, message));
  });
  http_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const ControllerBusy& e) {
          res.status = 503;
          what = e.what();
        } catch (const std::exception& e) {
          res.status = 500;
          spdlog::error("{} {}: {}", req.method, req.path, e.what());
        }
        reply(res, res.status, api::error_json("unavailable", "", what));
      });
  routes();
}

HttpApi::~HttpApi() = default;

int HttpApi::bind(const std::string& host, int port) {
  const int bound =
      port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  if (bound < 0)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) +
                             " (in use? try --port)");
  return bound;
}

void HttpApi::listen() {
  http_->listen_after_bind();
}
void HttpApi::stop() {
  http_->stop();
}

void HttpApi::routes() {
  auto& s = *http_;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"ok", true}});
  });
  // A listing: every record of one kind, in id order, read from the store.
  auto listing = [this](auto records) {
    return [this, records](const httplib::Request&, httplib::Response& res) {
      Snapshot st;
      reader_.load(st);
      json out = json::array();
      for (const auto* record : records(st)) out.push_back(api::to_json(*record));
      reply(res, 200, out);
    };
  };
  s.Get("/api/jobs", listing([](const Snapshot& st) { return st.jobs_by_id(); }));
  s.Get("/api/tasks", listing([](const Snapshot& st) { return st.tasks_by_id(); }));
  s.Get("/api/nodes", listing([](const Snapshot& st) { return st.nodes_by_name(); }));
  s.Get(R"(/api/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Snapshot st;
    reader_.load(st);
    const Job* job = st.job(req.matches[1]);
    if (!job)
      return reject(
          res, {RejectionCode::NotFound, "job_id", "no job named " + std::string(req.matches[1])});
    json out = api::to_json(*job);
    out["tasks"] = json::array();
    for (int a = 0; a <= job->retry; ++a)
      for (const Task* t : st.tasks_of(job->id, a)) out["tasks"].push_back(api::to_json(*t));
    reply(res, 200, out);
  });
  s.Get("/api/timeline", [this](const httplib::Request& req, httplib::Response& res) {
    std::int64_t since = 0;
    if (req.has_param("since")) {
      const std::string text = req.get_param_value("since");
      std::size_t used = 0;
      try {
        since = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size() || since < 0)
        return reject(res,
                      {RejectionCode::Invalid, "since", "since must be a non-negative integer"});
    }
    json out = json::array();
    for (const auto& e : reader_.timeline(since, kTimelinePage)) out.push_back(to_json(e));
    reply(res, 200, out);
  });
  s.Post("/api/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    JobSubmitted submitted;
    try {
      const api::RequestBody body(req.body, {"id", "nodes", "runtime"});
      submitted.job_id = *body.text("id", true);
      submitted.task_definition.runtime_seconds =
          body.seconds("runtime", true, false).value_or(600);
      if (!body.has("nodes"))
        throw api::BadRequest(
            {RejectionCode::Invalid, "nodes", "nodes is required (a list of names or a count)"});
      if (body.at("nodes").is_number())
        submitted.node_count = static_cast<int>(*body.integer("nodes", 1, kMaxJobNodes, true));
      else if (body.at("nodes").is_array())
        submitted.nodes = *body.texts("nodes");
      else
        throw api::BadRequest({RejectionCode::Invalid, "nodes",
                               "nodes must be a list of node names or a count of free nodes"});
    } catch (const api::BadRequest& e) {
      return reject(res, e.rejection);
    }
    const CommandResult r = controller_.call([submitted](Controller& c) {
      CommandResult out{c.decide(submitted, "submit:" + submitted.job_id), {}};
      if (!out.outcome.rejection)
        out.record = api::to_json(*c.runtime().state().job(submitted.job_id));
      return out;
    });
    if (r.outcome.rejection) return reject(res, *r.outcome.rejection);
    reply(res, 201, r.record);
  });
  s.Post(R"(/api/jobs/([^/]+)/stop)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const CommandResult r = controller_.call([id](Controller& c) {
      CommandResult out{c.decide(JobStopRequested{id, "api"}, "stop:" + id), {}};
      if (!out.outcome.rejection) out.record = api::to_json(*c.runtime().state().job(id));
      return out;
    });
    if (r.outcome.rejection) return reject(res, *r.outcome.rejection);
    reply(res, 200, r.record);
  });
  s.Get("/api/dead-letters", [this](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (const auto& p : reader_.dead_letters(1000)) out.push_back(api::to_json(p));
    reply(res, 200, out);
  });
  s.Post(R"(/api/dead-letters/([^/]+)/retry)",
         [this](const httplib::Request& req, httplib::Response& res) {
           const std::string id = req.matches[1];
           const bool retried = controller_.call(
               [id](Controller& c) { return c.runtime().retry_dead_letter(id, c.now()); });
           if (!retried)
             return reject(res, {RejectionCode::NotFound, "id", "no dead letter with id " + id});
           reply(res, 202, {{"retried", id}});
         });
}

}  // namespace shepherd
