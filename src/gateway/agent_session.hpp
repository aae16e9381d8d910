#pragma once
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <string>

#include "gateway/agent_gateway.hpp"

namespace shepherd::gateway {

// One agent's WebSocket. All of its state lives on the connection's strand; the public methods
// post there and may be called from any thread.
class AgentSession : public std::enable_shared_from_this<AgentSession> {
 public:
  AgentSession(AgentGateway& gateway, net::TlsStream stream, std::string remote,
               net::ConnectionSlot slot);
  ~AgentSession();

  // Checks the credential of the upgrade request and accepts or refuses the WebSocket.
  void start(net::UpgradeRequest request);
  void send_action(const Action& action, DeliveryCallback done);
  void request_log(const std::string& task_id, std::uint64_t offset, std::size_t max_bytes,
                   std::shared_ptr<std::promise<LogChunk>> answer);
  void close(std::string why);
  const std::string& node() const { return node_; }

 private:
  using Socket = boost::beast::websocket::stream<net::TlsStream>;
  void refuse(unsigned status, const std::string& code, const std::string& message,
              const std::string& leader = "");
  void read();
  void on_message(const std::string& text);
  void on_hello(const protocol::Hello& hello);
  void on_report(const protocol::Report& report);
  void on_ack(const protocol::ActionAck& ack);
  void send(std::string frame);
  void write_next();
  void end(const std::string& why);

  AgentGateway& gateway_;
  Controller* controller_;  // none on a standby: the agent is refused
  Socket ws_;
  std::string remote_;
  std::string node_;  // from the credential; the hello must name the same node
  bool said_hello_ = false, ended_ = false;
  boost::beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  std::map<std::string, DeliveryCallback> pending_;  // action id -> its hand-over's callback
  std::map<std::string, std::shared_ptr<std::promise<LogChunk>>> log_requests_;
  std::uint64_t next_request_ = 0;
  boost::asio::steady_timer hello_deadline_;
  net::ConnectionSlot slot_;  // counts this connection against the server's max_connections
};

}  // namespace shepherd::gateway
