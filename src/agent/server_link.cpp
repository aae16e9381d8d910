#include "agent/server_link.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <optional>
#include <stdexcept>

namespace shepherd::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

void parse_server_url(const std::string& url, std::string& host, std::string& port) {
  std::string rest = url;
  if (rest.rfind("https://", 0) == 0)
    rest = rest.substr(8);
  else if (rest.find("://") != std::string::npos)
    throw std::invalid_argument("the server URL must be https://HOST:PORT (agents use TLS)");
  rest = rest.substr(0, rest.find('/'));
  std::string p = "8443";
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad IPv6 address in " + url);
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') p = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) p = rest.substr(colon + 1);
  }
  if (host.empty() || p.empty() || p.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("the server URL must be https://HOST:PORT, not '" + url + "'");
  port = p;
}

std::vector<ServerAddress> parse_server_urls(const std::string& urls) {
  std::vector<ServerAddress> out;
  std::size_t from = 0;
  while (from <= urls.size()) {
    const auto comma = std::min(urls.find(',', from), urls.size());
    std::string one = urls.substr(from, comma - from);
    one.erase(0, one.find_first_not_of(' '));
    one.erase(one.find_last_not_of(' ') + 1);
    if (!one.empty()) {
      ServerAddress a;
      parse_server_url(one, a.host, a.port);
      out.push_back(std::move(a));
    }
    from = comma + 1;
  }
  if (out.empty()) throw std::invalid_argument("no server URL given");
  return out;
}

std::chrono::milliseconds backoff_delay(int failures, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, std::mt19937_64& random) {
  const int shift = std::min(failures, 20);
  const auto ceiling = std::min<std::int64_t>(cap.count(), base.count() << shift);
  std::uniform_int_distribution<std::int64_t> draw(0, std::max<std::int64_t>(ceiling, 1));
  return std::chrono::milliseconds(draw(random));
}

struct ServerLink::Impl {
  using Socket = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  Impl(ServerLink& link, LinkOptions o, Callbacks c)
      : owner(link),
        options(std::move(o)),
        callbacks(std::move(c)),
        tls(ssl::context::tls_client),
        retry(ioc),
        heartbeat(ioc),
        random(std::random_device{}()) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls.load_verify_file(options.ca_file);  // throws if unreadable
    tls.set_verify_mode(ssl::verify_peer);
  }

  ServerLink& owner;
  LinkOptions options;
  std::size_t current = 0;  // the server of options.servers tried now
  std::size_t tried = 0;    // servers refused us since the last backoff
  const ServerAddress& at() const { return options.servers[current]; }
  Callbacks callbacks;
  asio::io_context ioc;
  ssl::context tls;
  std::unique_ptr<Socket> ws;
  std::uint64_t generation = 0;  // a handler of an older connection does nothing
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;
  asio::steady_timer retry, heartbeat;
  int failures = 0;
  int heartbeat_seconds = 10;
  std::chrono::steady_clock::time_point connected_at{};
  std::mt19937_64 random;
  bool stopping = false;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;

  void connect() {
    if (stopping) return;
    const std::uint64_t gen = ++generation;
    ws = std::make_unique<Socket>(ioc, tls);  // one thread runs ioc: no strand needed
    outbox.clear();
    buffer.clear();
    auto resolver = std::make_shared<tcp::resolver>(ioc);
    resolver->async_resolve(
        at().host, at().port,
        [this, gen, resolver](beast::error_code ec, tcp::resolver::results_type r) {
          if (gen != generation) return;
          if (ec) return lost(gen, "cannot resolve " + at().host + ": " + ec.message());
          on_resolved(gen, r);
        });
  }

  void on_resolved(std::uint64_t gen, const tcp::resolver::results_type& results) {
    auto& lowest = beast::get_lowest_layer(*ws);
    lowest.expires_after(options.connect_timeout);
    lowest.async_connect(results, [this, gen](beast::error_code ec, const tcp::endpoint&) {
      if (gen != generation) return;
      if (ec)
        return lost(gen, "cannot connect to " + at().host + ":" + at().port + ": " + ec.message());
      // SNI and the certificate's name must match the host the agent was given.
      SSL_set_tlsext_host_name(ws->next_layer().native_handle(), at().host.c_str());
      ws->next_layer().set_verify_callback(ssl::host_name_verification(at().host));
      ws->next_layer().async_handshake(ssl::stream_base::client, [this, gen](beast::error_code hs) {
        if (gen != generation) return;
        if (hs) return lost(gen, "TLS handshake with " + at().host + " failed: " + hs.message());
        upgrade(gen);
      });
    });
  }

  void upgrade(std::uint64_t gen) {
    ws->set_option(websocket::stream_base::decorator(
        [cred = options.credential](websocket::request_type& req) {
          req.set(http::field::authorization, "Bearer " + cred);
          req.set(http::field::user_agent, "shepherd-agent");
        }));
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(10);
    timeouts.idle_timeout = std::chrono::seconds(90);
    timeouts.keep_alive_pings = true;
    beast::get_lowest_layer(*ws).expires_never();
    ws->set_option(timeouts);
    ws->read_message_max(protocol::kMaxFrameBytes);
    ws->text(true);
    auto response = std::make_shared<websocket::response_type>();
    ws->async_handshake(*response, at().host, std::string(protocol::kAgentPath),
                        [this, gen, response](beast::error_code ec) {
                          if (gen != generation) return;
                          if (ec) {
                            std::string why = "the server refused the connection";
                            if (response->result_int() != 0)
                              why += " (HTTP " + std::to_string(response->result_int()) + ": " +
                                     response->body() + ")";
                            else
                              why += ": " + ec.message();
                            return lost(gen, why, leader_in(*response));
                          }
                          queue(protocol::encode(protocol::AgentMessage{callbacks.hello()}));
                          read(gen);
                        });
  }

  void read(std::uint64_t gen) {
    ws->async_read(buffer, [this, gen](beast::error_code ec, std::size_t) {
      if (gen != generation) return;
      if (ec) return lost(gen, "connection lost: " + ec.message());
      const std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      on_frame(text);
      if (gen == generation) read(gen);
    });
  }

  void on_frame(const std::string& text) {
    protocol::ServerMessage message;
    try {
      message = protocol::decode_server_message(text);
    } catch (const protocol::ProtocolError& e) {
      spdlog::warn("agent: bad message from the server ({}): {}", e.field(), e.what());
      return;
    }
    if (const auto* welcome = std::get_if<protocol::Welcome>(&message)) {
      owner.connected_ = true;
      ++owner.connections_;
      connected_at = std::chrono::steady_clock::now();
      heartbeat_seconds = std::max(1, welcome->heartbeat_seconds);
      // A server gone silent (a cut cable sends nothing) is noticed after a few heartbeats.
      websocket::stream_base::timeout timeouts{};
      timeouts.handshake_timeout = std::chrono::seconds(10);
      timeouts.idle_timeout = std::chrono::seconds(3 * heartbeat_seconds);
      timeouts.keep_alive_pings = true;
      ws->set_option(timeouts);
      beat(generation);
      spdlog::info("agent: connected to {}:{} as {}", at().host, at().port, welcome->node);
      if (callbacks.connected) callbacks.connected(*welcome);
      return;
    }
    if (callbacks.message) callbacks.message(message);
  }

  void beat(std::uint64_t gen) {
    heartbeat.expires_after(std::chrono::seconds(heartbeat_seconds));
    heartbeat.async_wait([this, gen](beast::error_code ec) {
      if (ec || gen != generation || !owner.connected_) return;
      queue(protocol::encode(protocol::AgentMessage{protocol::Heartbeat{}}));
      beat(gen);
    });
  }

  void queue(std::string frame) {
    if (!ws) return;
    outbox.push_back(std::move(frame));
    if (outbox.size() == 1) write(generation);
  }

  void write(std::uint64_t gen) {
    ws->async_write(asio::buffer(outbox.front()), [this, gen](beast::error_code ec, std::size_t) {
      if (gen != generation) return;
      if (ec) return lost(gen, "write failed: " + ec.message());
      outbox.pop_front();
      if (!outbox.empty()) write(gen);
    });
  }

  // A standby's refusal names the leader: its place in our list, if it is there.
  std::optional<std::size_t> leader_in(const websocket::response_type& response) const {
    const auto named = response.find(protocol::kLeaderHeader);
    if (named == response.end()) return std::nullopt;
    ServerAddress leader;
    try {
      parse_server_url(std::string(named->value()), leader.host, leader.port);
    } catch (const std::invalid_argument&) {
      return std::nullopt;
    }
    for (std::size_t i = 0; i < options.servers.size(); ++i)
      if (options.servers[i].host == leader.host && options.servers[i].port == leader.port)
        return i;
    return std::nullopt;
  }

  void lost(std::uint64_t gen, const std::string& why,
            std::optional<std::size_t> leader = std::nullopt) {
    if (gen != generation) return;
    ++generation;  // every handler of this connection is stale now
    const bool was_connected = owner.connected_.exchange(false);
    heartbeat.cancel();
    if (ws) {
      beast::error_code ignored;
      beast::get_lowest_layer(*ws).socket().close(ignored);
      // The socket object stays until the handlers in flight have run: parked, not destroyed.
      asio::post(ioc, [old = std::shared_ptr<Socket>(std::move(ws))] {});
    }
    if (stopping) return;
    // A connection that held a while resets the backoff; one refused at once grows it.
    if (was_connected && std::chrono::steady_clock::now() - connected_at > std::chrono::seconds(30))
      failures = 0;
    // Several controllers: the next one (or the leader a standby named) at once, until a whole
    // round failed; then the backoff.
    std::chrono::milliseconds delay{0};
    if (was_connected) tried = 0;
    if (options.servers.size() > 1 && ++tried < options.servers.size() + (leader ? 1 : 0)) {
      current = leader ? *leader : (current + 1) % options.servers.size();
      delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 100)(random));
    } else {
      tried = 0;
      if (options.servers.size() > 1) current = (current + 1) % options.servers.size();
      delay = backoff_delay(failures++, options.backoff_base, options.backoff_cap, random);
    }
    spdlog::warn("agent: {}; connecting again (to {}:{}) in {} ms", why, at().host, at().port,
                 delay.count());
    if (was_connected && callbacks.disconnected) callbacks.disconnected(why);
    retry.expires_after(delay);
    retry.async_wait([this](beast::error_code ec) {
      if (!ec) connect();
    });
  }
};

ServerLink::ServerLink(LinkOptions options, Callbacks callbacks)
    : impl_(std::make_unique<Impl>(*this, std::move(options), std::move(callbacks))) {}

ServerLink::~ServerLink() {
  stop();
}

void ServerLink::start() {
  impl_->work.emplace(impl_->ioc.get_executor());
  asio::post(impl_->ioc, [this] { impl_->connect(); });
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

void ServerLink::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->ioc, [this] {
    impl_->stopping = true;
    impl_->retry.cancel();
    impl_->lost(impl_->generation, "the agent is stopping");
    impl_->work.reset();
  });
  impl_->thread.join();
}

void ServerLink::send(std::string frame) {
  asio::post(impl_->ioc, [this, frame = std::move(frame)]() mutable {
    if (connected_) impl_->queue(std::move(frame));
  });
}

}  // namespace shepherd::agent
