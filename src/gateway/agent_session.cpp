#include "gateway/agent_session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace shepherd::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using protocol::decode_agent_message;
using protocol::encode;

namespace {
constexpr std::size_t kMaxLogRequests = 64;  // outstanding per connection
}

AgentSession::AgentSession(AgentGateway& gateway, net::TlsStream stream, std::string remote,
                           net::ConnectionSlot slot)
    : gateway_(gateway),
      controller_(gateway.controller()),
      ws_(std::move(stream)),
      remote_(std::move(remote)),
      hello_deadline_(ws_.get_executor()),
      slot_(std::move(slot)) {}

AgentSession::~AgentSession() = default;

void AgentSession::start(net::UpgradeRequest request) {
  if (!controller_) {
    // A standby: agents connect to the leader only (it alone hands out actions).
    const auto& leader_url = gateway_.options().leader_url;
    const std::optional<std::string> leader = leader_url ? leader_url() : std::nullopt;
    return refuse(503, "not_leader",
                  leader ? "this controller is a standby: the leader is at " + *leader
                         : "this controller is a standby and no controller leads at the moment",
                  leader.value_or(""));
  }
  // The credential is "Authorization: Bearer <node>:<secret>" (node names hold no ':').
  const std::string auth(request[http::field::authorization]);
  constexpr std::string_view kScheme = "Bearer ";
  const std::string token = auth.rfind(kScheme, 0) == 0 ? auth.substr(kScheme.size()) : "";
  const auto colon = token.find(':');
  if (colon == std::string::npos || colon == 0) {
    spdlog::warn("gateway: agent from {} refused: no node credential", remote_);
    return refuse(401, "unauthorized",
                  "no node credential: enrol the agent first (shepherd agent enrol)");
  }
  node_ = token.substr(0, colon);
  CredentialStore::Check check = CredentialStore::Check::Unknown;
  try {
    check = gateway_.credentials().verify(node_, token.substr(colon + 1));
  } catch (const std::exception& e) {
    spdlog::error("gateway: checking {}'s credential: {}", node_, e.what());
    return refuse(503, "unavailable", "the server cannot check credentials now");
  }
  if (check != CredentialStore::Check::Valid) {
    spdlog::warn("gateway: agent {} from {} refused: {}", node_, remote_, to_string(check));
    return refuse(check == CredentialStore::Check::Revoked ? 403 : 401,
                  check == CredentialStore::Check::Revoked ? "revoked" : "unauthorized",
                  "node " + node_ + ": " + std::string(to_string(check)));
  }
  // Agents send small frames at a low rate: no compression (off by default), one message at a time.
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(10);
  timeouts.idle_timeout = std::chrono::seconds(3 * gateway_.options().heartbeat_seconds);
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.read_message_max(protocol::kMaxFrameBytes);
  ws_.text(true);
  beast::get_lowest_layer(ws_).expires_never();
  ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->end("handshake failed: " + ec.message());
    self->hello_deadline_.expires_after(self->gateway_.options().hello_timeout);
    self->hello_deadline_.async_wait([self](beast::error_code timer) {
      if (!timer && !self->said_hello_) self->close("no hello in time");
    });
    self->read();
  });
}

void AgentSession::refuse(unsigned status, const std::string& code, const std::string& message,
                          const std::string& leader) {
  auto response = std::make_shared<http::response<http::string_body>>();
  response->result(status);
  if (!leader.empty()) response->set(protocol::kLeaderHeader, leader);
  response->version(11);
  response->set(http::field::content_type, "application/json");
  response->keep_alive(false);
  response->body() =
      net::HttpResponse::error(static_cast<int>(status), code, "authorization", message).body;
  response->prepare_payload();
  ended_ = true;
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
  http::async_write(ws_.next_layer(), *response,
                    [self = shared_from_this(), response](beast::error_code, std::size_t) {
                      beast::error_code ignored;
                      beast::get_lowest_layer(self->ws_).socket().shutdown(
                          asio::ip::tcp::socket::shutdown_both, ignored);
                    });
}

void AgentSession::read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return self->end(ec == websocket::error::closed ? "closed" : ec.message());
    std::string text = beast::buffers_to_string(self->buffer_.data());
    self->buffer_.consume(self->buffer_.size());
    self->on_message(text);
    if (!self->ended_) self->read();
  });
}

void AgentSession::on_message(const std::string& text) {
  protocol::AgentMessage message;
  try {
    message = decode_agent_message(text);
  } catch (const protocol::ProtocolError& e) {
    spdlog::warn("gateway: {}: bad message ({}{}{})", node_, e.field(),
                 e.field().empty() ? "" : ": ", e.what());
    // Before the hello nothing is known of the peer; afterwards one bad frame is skipped (it is
    // not acknowledged, so a report is sent again once the agent is fixed).
    if (!said_hello_) close("bad hello");
    return;
  }
  if (!said_hello_) {
    if (const auto* hello = std::get_if<protocol::Hello>(&message)) return on_hello(*hello);
    return close("the first message must be a hello");
  }
  controller_->heard_from(node_);
  std::visit(
      [this](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, protocol::Report>) {
          on_report(m);
        } else if constexpr (std::is_same_v<T, protocol::ActionAck>) {
          on_ack(m);
        } else if constexpr (std::is_same_v<T, protocol::LogData>) {
          auto it = log_requests_.find(m.request_id);
          if (it == log_requests_.end()) return;
          if (m.error.empty())
            it->second->set_value(LogChunk{m.data, m.next_offset, m.ended});
          else
            it->second->set_exception(std::make_exception_ptr(LogUnavailable(m.error)));
          log_requests_.erase(it);
        }
        // Heartbeat: heard_from above is all it does; a second hello changes nothing.
      },
      message);
}

void AgentSession::on_hello(const protocol::Hello& hello) {
  if (hello.node != node_) {
    spdlog::warn("gateway: agent with {}'s credential said it is {}: refused", node_, hello.node);
    return close("the hello names another node than the credential");
  }
  said_hello_ = true;
  hello_deadline_.cancel();
  gateway_.attach(node_, shared_from_this());
  send(encode(
      protocol::ServerMessage{protocol::Welcome{node_, gateway_.options().heartbeat_seconds}}));
  controller_->node_connected(node_);
  NodeRegistered registered{node_,          hello.boot_id,       hello.ip, hello.ibdev, hello.gpus,
                            hello.gpu_type, hello.driver_version};
  controller_->post(EventBody{std::move(registered)}, "hello:" + node_);
  spdlog::info("gateway: {} connected from {} (boot {}, {} GPUs, agent {})", node_, remote_,
               hello.boot_id, hello.gpus, hello.agent_version);
}

void AgentSession::on_report(const protocol::Report& r) {
  using protocol::ReportKind;
  EventBody body;
  switch (r.kind) {
    case ReportKind::TaskStarted:
      body = TaskStarted{r.task_id, node_};
      break;
    case ReportKind::TaskExited:
      body = TaskExited{r.task_id, r.exit_code, r.signal, node_, r.interrupted};
      break;
    case ReportKind::DiagnosticStarted:
      body = DiagnosticStarted{node_, r.operation_id};
      break;
    case ReportKind::DiagnosticFinished:
      body = DiagnosticFinished{
          node_, r.operation_id, parse_verdict(r.verdict).value_or(Verdict::Inconclusive), r.detail,
          r.diagnostic.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
      break;
    case ReportKind::Xid:
      spdlog::warn("gateway: {}: Xid {} on {} ({})", node_, r.xid, r.pci, r.xid_action);
      body = XidReported{node_, r.xid, r.pci, r.xid_action, r.message, r.boot_id};
      break;
  }
  // The key is the agent's report id, scoped to its node: a report sent again after a reconnect
  // is recognised and ignored, and acknowledged again.
  std::weak_ptr<AgentSession> weak = weak_from_this();
  controller_->post(Event{"agent:" + node_ + ":" + r.id, 0, std::move(body)}, [weak, id = r.id] {
    if (auto self = weak.lock())
      self->send(encode(protocol::ServerMessage{protocol::ReportAck{id}}));
  });
}

void AgentSession::on_ack(const protocol::ActionAck& ack) {
  auto it = pending_.find(ack.action_id);
  if (it == pending_.end()) return;  // answered already (the connection's earlier hand-over)
  DeliveryCallback done = std::move(it->second);
  pending_.erase(it);
  if (ack.ok) return done(DeliveryResult::done());
  if (ack.permanent) return done(DeliveryResult::failed_permanently(ack.error));
  done(DeliveryResult::failed(ack.error));
}

void AgentSession::send_action(const Action& action, DeliveryCallback done) {
  protocol::ActionRequest request{action.id, std::string(to_string(action.kind)), action.job_id,
                                  action.task_id, payload_json(action)};
  asio::post(ws_.get_executor(), [self = shared_from_this(), request = std::move(request),
                                  done = std::move(done)]() mutable {
    if (self->ended_) return done(DeliveryResult::failed("the connection to the node was lost"));
    auto& slot = self->pending_[request.id];
    if (slot) slot(DeliveryResult::failed("handed over again"));
    slot = std::move(done);
    self->outbox_.push_back(encode(protocol::ServerMessage{std::move(request)}));
    if (self->outbox_.size() == 1) self->write_next();
  });
}

void AgentSession::request_log(const std::string& task_id, std::uint64_t offset,
                               std::size_t max_bytes,
                               std::shared_ptr<std::promise<LogChunk>> answer) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), task_id, offset, max_bytes,
                                  answer = std::move(answer)] {
    if (self->ended_ || self->log_requests_.size() >= kMaxLogRequests) {
      answer->set_exception(std::make_exception_ptr(LogUnavailable(
          self->ended_ ? "the node disconnected" : "too many log requests to this node")));
      return;
    }
    const std::string id = std::to_string(++self->next_request_);
    self->log_requests_[id] = answer;
    self->outbox_.push_back(
        encode(protocol::ServerMessage{protocol::LogRequest{id, task_id, offset, max_bytes}}));
    if (self->outbox_.size() == 1) self->write_next();
  });
}

void AgentSession::send(std::string frame) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
    if (self->ended_) return;
    self->outbox_.push_back(std::move(frame));
    if (self->outbox_.size() == 1) self->write_next();
  });
}

void AgentSession::write_next() {
  ws_.async_write(asio::buffer(outbox_.front()),
                  [self = shared_from_this()](beast::error_code ec, std::size_t) {
                    if (self->ended_) return;
                    if (ec) return self->end("write failed: " + ec.message());
                    self->outbox_.pop_front();
                    if (!self->outbox_.empty()) self->write_next();
                  });
}

// Abrupt on purpose: a close handshake would race the writes in flight, and the agent reconnects
// (or, revoked, is refused) either way.
void AgentSession::close(std::string why) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), why = std::move(why)] {
    if (self->ended_) return;
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
    self->end(why);
  });
}

void AgentSession::end(const std::string& why) {
  if (ended_) return;
  ended_ = true;
  hello_deadline_.cancel();
  for (auto& [id, done] : pending_)
    done(DeliveryResult::failed("the connection to the node was lost"));
  pending_.clear();
  for (auto& [id, answer] : log_requests_)
    answer->set_exception(std::make_exception_ptr(LogUnavailable("the node disconnected")));
  log_requests_.clear();
  // outbox_ stays: a write in flight still reads its front.
  if (said_hello_) {
    spdlog::info("gateway: {} disconnected: {}", node_, why);
    if (gateway_.detach(node_, this)) controller_->node_disconnected(node_);
  } else {
    spdlog::debug("gateway: connection from {} ended before its hello: {}", remote_, why);
  }
}

}  // namespace shepherd::gateway
