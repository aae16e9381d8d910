#pragma once
// The agent's one connection to the server: a TLS WebSocket at /agent/v1, authenticated by the
// node's credential, kept up for good: when it drops it is made again after an exponential backoff
// with full jitter, so thousands of agents of a restarted server come back spread over time. With
// several controllers it goes round them (at once, without backoff, within one round) until the
// leader takes it.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "protocol/agent_protocol.hpp"

namespace shepherd::agent {

struct ServerAddress {
  std::string host;
  std::string port = "8443";
};

struct LinkOptions {
  // The controllers, tried in turn: one leads and takes the agent; a standby refuses it and names
  // the leader, which the agent tries next if it is in this list.
  std::vector<ServerAddress> servers;
  std::string ca_file;     // the server's CA (shepherd server init's tls/ca.crt)
  std::string credential;  // "<node>:<secret>", from enrolment
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_cap{60'000};
  std::chrono::milliseconds connect_timeout{10'000};
};

// Splits "https://host:port[/...]" (or host:port) into host and port; throws std::invalid_argument.
void parse_server_url(const std::string& url, std::string& host, std::string& port);
// A comma-separated list of such URLs (the controllers sharing one store); throws
// std::invalid_argument, also for an empty list.
std::vector<ServerAddress> parse_server_urls(const std::string& urls);

// The next wait before connecting again: a uniform draw in [0, min(cap, base * 2^failures)].
std::chrono::milliseconds backoff_delay(int failures, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, std::mt19937_64& random);

class ServerLink {
 public:
  struct Callbacks {
    std::function<protocol::Hello()> hello;  // the first frame of every connection
    // After the server's welcome (on the link's thread): resend what is unacknowledged.
    std::function<void(const protocol::Welcome&)> connected;
    std::function<void(const protocol::ServerMessage&)> message;  // on the link's thread
    std::function<void(const std::string& why)> disconnected;
  };
  ServerLink(LinkOptions options, Callbacks callbacks);
  ~ServerLink();  // stop()
  ServerLink(const ServerLink&) = delete;
  ServerLink& operator=(const ServerLink&) = delete;

  void start();
  void stop();
  // Any thread. Sent if connected, dropped otherwise: what must arrive is kept by the caller
  // until acknowledged, and sent again on the next `connected`.
  void send(std::string frame);
  bool is_connected() const { return connected_; }
  std::uint64_t connections_made() const { return connections_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> connections_{0};
};

}  // namespace shepherd::agent
