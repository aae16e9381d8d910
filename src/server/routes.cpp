// The routes only `shepherd server` has: those that reach real agents, and the controllers.
#include <spdlog/spdlog.h>

#include "api/http_api.hpp"
#include "api/http_reply.hpp"
#include "domain/snapshot.hpp"
#include "gateway/agent_gateway.hpp"
#include "server/server.hpp"
#include "store/credentials.hpp"
#include "store/store.hpp"

namespace shepherd::server {
namespace {
constexpr std::size_t kLogPiece = 256 << 10;  // bytes per GET .../logs at most
}

void Server::add_routes() {
  net::Router& r = api_->router();
  // The node's agent is refused from now on, and its connection is closed.
  // Which controllers share the store, which one leads, and its lease's epoch.
  r.get("/api/cluster", [this](const net::HttpRequest&) {
    ClusterView view;
    try {
      view = leadership_->view();
    } catch (const std::exception& e) {
      return net::HttpResponse::error(503, "unavailable", "", e.what());
    }
    const auto ttl = leadership_->ttl().count();
    nlohmann::json leader = nullptr;
    if (view.lease)
      leader = {{"name", view.lease->holder},
                {"url", view.lease->url},
                {"epoch", view.lease->epoch},
                {"acquired_at", view.lease->acquired_at},
                {"renewed_at", view.lease->renewed_at},
                {"expires_at", view.lease->expires_at},
                {"lapsed", ttl > 0 && view.lease->expires_at < view.now}};
    nlohmann::json controllers = nlohmann::json::array();
    for (const auto& c : view.controllers) {
      const bool leads = view.lease && view.lease->holder == c.controller.name;
      controllers.push_back({{"name", c.controller.name},
                             {"url", c.controller.url},
                             {"version", c.controller.version},
                             {"role", leads ? "leader" : "standby"},
                             {"started_at", c.started_at},
                             {"seen_at", c.seen_at},
                             // Each writes its row at least every third of the ttl.
                             {"alive", ttl == 0 || view.now - c.seen_at <= 2 * ttl}});
    }
    return api::reply(200, {{"this_controller", me_.name},
                            {"leader", leader},
                            {"controllers", controllers},
                            {"lease_ttl_ms", ttl},
                            {"now", view.now}});
  });
  // The node's agent is refused from now on, and its connection (to the leader) is closed.
  r.post("/api/nodes/([^/]+)/revoke", api_->on_leader([this](const net::HttpRequest& req) {
    const std::string name = req.params[0];
    if (!credentials_->revoke(name, clock_->now()))
      return api::reject({RejectionCode::NotFound, "node", "node " + name + " never enrolled"});
    gateway_->disconnect(name);
    spdlog::warn("server: node {} revoked (from {})", name, req.remote);
    return api::reply(200, {{"node", name}, {"revoked", true}});
  }));
  // An operator lets the node enrol again (re-installed, its credential lost): its credential is
  // dropped and its connection closed; the next enrolment with the bootstrap token gets a new one.
  r.post("/api/nodes/([^/]+)/reenrol", api_->on_leader([this](const net::HttpRequest& req) {
    const std::string name = req.params[0];
    if (!credentials_->allow_enrolment(name))
      return api::reject({RejectionCode::NotFound, "node", "node " + name + " never enrolled"});
    gateway_->disconnect(name);
    spdlog::warn("server: node {} may enrol again; its credential is dropped (from {})", name,
                 req.remote);
    return api::reply(200, {{"node", name}, {"enrolment", "open"}});
  }));
  // A task's log, read from its node's agent: ?offset=N; the answer is text with X-Next-Offset
  // and X-Task-Ended (nothing more will come), for `shepherd task logs --follow`.
  // On the leader: the agents are connected to it.
  r.get("/api/tasks/([^/]+)/logs", api_->on_leader([this](const net::HttpRequest& req) {
    Snapshot st;
    reader_->load(st);
    const Task* task = st.task(req.params[0]);
    if (!task)
      return api::reject({RejectionCode::NotFound, "task_id", "no task named " + req.params[0]});
    std::uint64_t offset = 0;
    if (auto it = req.query.find("offset"); it != req.query.end()) {
      try {
        std::size_t used = 0;
        offset = std::stoull(it->second, &used);
        if (used != it->second.size() || it->second.front() == '-') throw std::invalid_argument("");
      } catch (const std::exception&) {
        return api::reject(
            {RejectionCode::Invalid, "offset", "offset must be a non-negative integer"});
      }
    }
    try {
      const gateway::LogChunk chunk =
          gateway_->fetch_log(task->node_name, task->id, offset, kLogPiece);
      net::HttpResponse out;
      out.content_type = "text/plain; charset=utf-8";
      out.body = chunk.data;
      out.headers.emplace_back("X-Next-Offset", std::to_string(chunk.next_offset));
      // Ended: the task is over and this piece reached the end of its log.
      const bool ended =
          (chunk.ended || task->status != TaskStatus::InProgress) && chunk.data.size() < kLogPiece;
      out.headers.emplace_back("X-Task-Ended", ended ? "true" : "false");
      return out;
    } catch (const gateway::LogUnavailable& e) {
      return net::HttpResponse::error(503, "unavailable", "node", e.what());
    }
  }));
}

}  // namespace shepherd::server
