#include "gateway/agent_gateway.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "api/request_body.hpp"
#include "gateway/agent_session.hpp"

namespace shepherd::gateway {

AgentGateway::AgentGateway(CredentialStore& credentials, GatewayOptions options)
    : credentials_(credentials), options_(std::move(options)) {}

AgentGateway::~AgentGateway() {
  close_all();
}

void AgentGateway::execute(const Action& action, DeliveryCallback done) {
  auto session = session_of(action.node);
  if (!session) return done(DeliveryResult::failed("node " + action.node + " is not connected"));
  session->send_action(action, std::move(done));
}

void AgentGateway::accept(net::TlsStream stream, net::UpgradeRequest request, std::string remote,
                          net::ConnectionSlot slot) {
  auto session =
      std::make_shared<AgentSession>(*this, std::move(stream), std::move(remote), std::move(slot));
  session->start(std::move(request));
}

void AgentGateway::attach(const std::string& node, const std::shared_ptr<AgentSession>& session) {
  std::shared_ptr<AgentSession> older;
  {
    std::lock_guard lock(mu_);
    auto& slot = sessions_[node];
    older = slot.lock();
    slot = session;
  }
  // Two connections for one node: the agent restarted before the server saw the old one drop.
  if (older && older != session) older->close("replaced by a new connection of " + node);
}

bool AgentGateway::detach(const std::string& node, const AgentSession* session) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(node);
  if (it == sessions_.end()) return false;
  auto current = it->second.lock();
  if (current && current.get() != session) return false;
  sessions_.erase(it);
  return true;
}

std::shared_ptr<AgentSession> AgentGateway::session_of(const std::string& node) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(node);
  return it == sessions_.end() ? nullptr : it->second.lock();
}

std::size_t AgentGateway::connected() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void AgentGateway::disconnect(const std::string& node) {
  if (auto session = session_of(node)) session->close("its credential was revoked");
}

void AgentGateway::close_all() {
  std::vector<std::shared_ptr<AgentSession>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [node, weak] : sessions_)
      if (auto s = weak.lock()) all.push_back(std::move(s));
  }
  for (auto& s : all) s->close("the server is stopping");
}

LogChunk AgentGateway::fetch_log(const std::string& node, const std::string& task_id,
                                 std::uint64_t offset, std::size_t max_bytes) {
  auto session = session_of(node);
  if (!session)
    throw LogUnavailable("node " + node +
                         " is not connected; the agent keeps the log (its DIR/logs/" + task_id +
                         ".log) and serves it again once it reconnects");
  auto answer = std::make_shared<std::promise<LogChunk>>();
  auto future = answer->get_future();
  session->request_log(task_id, offset, max_bytes, std::move(answer));
  if (future.wait_for(options_.log_timeout) != std::future_status::ready)
    throw LogUnavailable("node " + node + " did not send the log in time");
  return future.get();
}

// POST /agent/v1/enrol {"node": NAME} with "Authorization: Bearer <bootstrap token>" answers
// {"node": NAME, "credential": "NAME:SECRET"}; the agent keeps it (mode 0600) and uses only it.
void AgentGateway::add_routes(net::Router& router) {
  router.post(std::string(protocol::kEnrolPath), [this](const net::HttpRequest& req) {
    const std::string given = req.bearer();
    const std::string& token = options_.bootstrap_token;
    if (token.empty() || given.size() != token.size() ||
        CRYPTO_memcmp(given.data(), token.data(), token.size()) != 0) {
      spdlog::warn("gateway: enrolment from {} refused: {}", req.remote,
                   given.empty() ? "no bootstrap token" : "wrong bootstrap token");
      auto r = net::HttpResponse::error(401, "unauthorized", "authorization",
                                        "enrolment needs Authorization: Bearer <bootstrap token>");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    std::string node;
    try {
      const api::RequestBody body(req.body, {"node"});
      node = *body.text("node", true);
    } catch (const api::BadRequest& e) {
      return net::HttpResponse::error(400, "invalid", e.rejection.field, e.rejection.message);
    }
    try {
      const std::string secret = credentials_.enrol(node, [this] {
        const Controller* c = controller_.load();
        return c ? c->now() : SystemClock().now();
      }());
      spdlog::info("gateway: {} enrolled from {}", node, req.remote);
      return net::HttpResponse::json(200, {{"node", node}, {"credential", node + ":" + secret}});
    } catch (const EnrolmentRefused& e) {
      spdlog::warn("gateway: enrolment of {} from {} refused: {}", node, req.remote, e.what());
      if (e.why == EnrolmentRefused::Why::InvalidName)
        return net::HttpResponse::error(400, "invalid", "node", e.what());
      if (e.why == EnrolmentRefused::Why::Revoked)
        return net::HttpResponse::error(403, "refused", "node", e.what());
      return net::HttpResponse::error(409, "conflict", "node", e.what());
    }
  });
}

}  // namespace shepherd::gateway
