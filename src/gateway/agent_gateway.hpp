#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "controller/controller.hpp"
#include "net/http_server.hpp"
#include "net/upgrade.hpp"
#include "protocol/agent_protocol.hpp"
#include "store/credentials.hpp"

namespace shepherd::gateway {

struct GatewayOptions {
  int heartbeat_seconds = 10;  // told to agents in the welcome
  std::chrono::seconds hello_timeout{10};
  std::string bootstrap_token;                  // enrolment's; "" refuses every enrolment
  std::chrono::milliseconds log_timeout{5000};  // an agent's answer to a log request
  // On a standby controller: the leader's URL, which an agent that connects here is told (in the
  // refusal's X-Shepherd-Leader header); none while no controller leads.
  std::function<std::optional<std::string>()> leader_url;
};

// A piece of a task's log, fetched from its node's agent.
struct LogChunk {
  std::string data;
  std::uint64_t next_offset = 0;
  bool ended = false;  // the task is no longer running: no more will come
};

// Thrown by fetch_log: the node is not connected, did not answer in time, or has no such log.
class LogUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AgentSession;

// The server's side of the agent protocol (docs/agent-protocol.md): it accepts agents' WebSockets
// (an UpgradeHandler of the HTTP server), checks each agent's node credential, turns reports into
// the controller's events and acknowledges them once committed, and is the ClusterDriver that hands
// the engine's actions to the connected agents.
class AgentGateway : public ClusterDriver, public net::UpgradeHandler {
 public:
  // The controller comes after (it is built with this gateway as its driver). Until
  // set_controller() (a standby's gateway), agents are refused and sent to the leader.
  AgentGateway(CredentialStore& credentials, GatewayOptions options);
  void set_controller(Controller* controller) { controller_ = controller; }
  ~AgentGateway() override;

  // ClusterDriver: any thread. A node not connected fails the hand-over (retried with backoff).
  void execute(const Action& action, DeliveryCallback done) override;
  // UpgradeHandler: the HTTP server's event loop.
  void accept(net::TlsStream stream, net::UpgradeRequest request, std::string remote,
              net::ConnectionSlot slot) override;

  // POST /agent/v1/enrol (bootstrap token) on the server's router.
  void add_routes(net::Router& router);
  // Blocks up to options.log_timeout; any thread but the event loop's.
  LogChunk fetch_log(const std::string& node, const std::string& task_id, std::uint64_t offset,
                     std::size_t max_bytes);
  // Closes the node's connection (its credential was revoked).
  void disconnect(const std::string& node);
  std::size_t connected() const;
  void close_all();

  // For sessions.
  Controller* controller() { return controller_.load(); }
  CredentialStore& credentials() { return credentials_; }
  const GatewayOptions& options() const { return options_; }
  // A session that said hello takes the node's place (an older session of the node is closed).
  void attach(const std::string& node, const std::shared_ptr<AgentSession>& session);
  // True if `session` was the node's current one (the node is disconnected now).
  bool detach(const std::string& node, const AgentSession* session);

 private:
  std::shared_ptr<AgentSession> session_of(const std::string& node) const;

  std::atomic<Controller*> controller_{nullptr};
  CredentialStore& credentials_;
  GatewayOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::weak_ptr<AgentSession>> sessions_;
};

}  // namespace shepherd::gateway
