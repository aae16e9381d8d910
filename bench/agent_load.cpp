// A load generator for the agent gateway (bench/README.md, "Agents: connections, latency,
// reconnection"): N agent connections from one process, each a TLS WebSocket speaking the agent
// protocol as src/agent/server_link.cpp does (CA verification, the node's bearer credential, a
// hello, heartbeats at the welcome's rate, client keep-alive pings, every action acknowledged ok),
// running no tasks.
//
// Modes:
//   enrol      enrol --enrol N nodes with the bootstrap token over a few keep-alive HTTPS
//              connections and write their credentials (one "node:secret" a line)
//   connect    hold --agents N connections for --duration S after all were welcomed
//   latency    N agents; one 1-node job per node submitted through the API (admin token); on
//              start_task the agent acks and reports task_started; once all run, each reports
//              task_exited with exit code 1 in turn and times the run_diagnostic action for its
//              node (same process, steady clock)
//   reconnect  N agents; once all are welcomed, wait for every connection to drop (a server
//              restart) and time from the first drop until all N are welcomed again
//
// Prints a human block and `RESULT name value` lines (read by bench/agent_load.sh).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/server_link.hpp"
#include "protocol/agent_protocol.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace shepherd;

std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) {
  g_interrupted = true;
}

double seconds_since(Clock::time_point a, Clock::time_point b = Clock::now()) {
  return std::chrono::duration<double>(b - a).count();
}

std::string read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

void result(const std::string& name, double value) {
  std::printf("RESULT %s %.6g\n", name.c_str(), value);
}

struct Options {
  std::string mode = "connect";
  std::string server = "https://127.0.0.1:8443";
  std::string host, port;
  std::string ca;
  std::string credentials;
  std::string ready_file;
  int agents = 1000;
  double duration = 60;
  double hold = 0;  // reconnect: stay connected this long once all are welcomed again
  int threads = 1;
  int handshakes = 500;  // connection attempts in flight at once
  int backoff_base_ms = 1000, backoff_cap_ms = 60'000;
  bool release_buffers = true;  // SSL_MODE_RELEASE_BUFFERS on the generator's connections
  // enrol
  int enrol = 0;
  std::string bootstrap_token_file, credentials_out, node_prefix = "load-";
  int http_connections = 4;
  // latency
  std::string admin_token_file;
  int latency_agents = 0;  // 0: all
  double exit_interval_ms = 10;
  std::string job_prefix;
};

// ---------------------------------------------------------------------------------------------
// A blocking HTTPS client on one keep-alive connection (enrolment, job submission).

class HttpsClient {
 public:
  HttpsClient(ssl::context& tls, const Options& o) : tls_(tls), o_(o) {}

  std::pair<int, std::string> post(const std::string& target, const std::string& bearer,
                                   const std::string& body) {
    for (int attempt = 0;; ++attempt) {
      try {
        if (!stream_) open();
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, o_.host);
        req.set(http::field::authorization, "Bearer " + bearer);
        req.set(http::field::content_type, "application/json");
        req.keep_alive(true);
        req.body() = body;
        req.prepare_payload();
        http::write(*stream_, req);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(*stream_, buffer, res);
        if (!res.keep_alive()) stream_.reset();
        return {res.result_int(), res.body()};
      } catch (const std::exception&) {
        stream_.reset();
        if (attempt >= 3) throw;
      }
    }
  }

 private:
  void open() {
    stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc_, tls_);
    SSL_set_tlsext_host_name(stream_->native_handle(), o_.host.c_str());
    stream_->set_verify_callback(ssl::host_name_verification(o_.host));
    tcp::resolver resolver(ioc_);
    beast::get_lowest_layer(*stream_).connect(resolver.resolve(o_.host, o_.port));
    stream_->handshake(ssl::stream_base::client);
  }

  asio::io_context ioc_;
  ssl::context& tls_;
  const Options& o_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream_;
};

// Runs fn(i) for i in [0, n) on `workers` threads, each with its own client.
template <class Fn>
void on_clients(ssl::context& tls, const Options& o, int n, Fn fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < std::max(1, o.http_connections); ++w)
    threads.emplace_back([&] {
      HttpsClient client(tls, o);
      for (int i; (i = next++) < n;) fn(client, i);
    });
  for (auto& t : threads) t.join();
}

// ---------------------------------------------------------------------------------------------
// The agents.

class Load;

class Agent {
 public:
  using Socket = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
  Agent(Load& load, int index, std::string node, std::string credential);

  void connect();    // any thread
  void send_exit();  // latency: report task_exited 1 (any thread)

  const std::string node;
  std::atomic<bool> running{false};  // latency: the task_started report is acknowledged

 private:
  friend class Load;
  void attempt();
  void on_connected(std::uint64_t gen);
  void upgrade(std::uint64_t gen);
  void read(std::uint64_t gen);
  void on_frame(const std::string& text);
  void beat(std::uint64_t gen);
  void queue(std::string frame);
  void write(std::uint64_t gen);
  enum class Failure { Connect, Tls, Refused, Upgrade, Lost };
  void lost(std::uint64_t gen, Failure kind, const std::string& why);
  void release_slot();

  Load& load_;
  const int index_;
  const std::string credential_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::unique_ptr<Socket> ws_;
  std::uint64_t generation_ = 0;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  asio::steady_timer retry_, heartbeat_;
  int failures_ = 0;
  int heartbeat_seconds_ = 10;
  bool connected_ = false, holding_slot_ = false, welcomed_once_ = false;
  bool dropped_ = false;  // reconnect: lost since the phase began, not yet welcomed again
  Clock::time_point connected_at_{};
  std::mt19937_64 random_;
  // latency
  std::string task_id_;
  Clock::time_point exit_sent_{};
  bool exit_pending_ = false;
};

class Load {
 public:
  explicit Load(Options o)
      : o(std::move(o)), tls(ssl::context::tls_client), work(ioc.get_executor()) {
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls.load_verify_file(this->o.ca);
    tls.set_verify_mode(ssl::verify_peer);
    // The generator's own memory, not the server's: idle connections keep no TLS record buffers.
    if (this->o.release_buffers) SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    tcp::resolver resolver(ioc);
    endpoints = resolver.resolve(this->o.host, this->o.port);
  }

  Options o;
  asio::io_context ioc;
  ssl::context tls;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::resolver::results_type endpoints;
  std::vector<std::unique_ptr<Agent>> agents;
  std::vector<std::thread> threads;
  Clock::time_point started = Clock::now();

  // Connection attempts in flight, bounded.
  std::mutex gate_mu;
  int in_flight = 0;
  std::deque<Agent*> waiting;
  void acquire(Agent* a) {
    {
      std::lock_guard lock(gate_mu);
      if (in_flight >= std::max(1, o.handshakes)) {
        waiting.push_back(a);
        return;
      }
      ++in_flight;
    }
    asio::post(a->strand_, [a] { a->attempt(); });
  }
  void release() {
    Agent* next = nullptr;
    {
      std::lock_guard lock(gate_mu);
      if (!waiting.empty()) {
        next = waiting.front();
        waiting.pop_front();
      } else {
        --in_flight;
      }
    }
    if (next) asio::post(next->strand_, [next] { next->attempt(); });
  }

  // Counters (any thread).
  std::atomic<int> connected_now{0}, welcomed_once{0};
  std::atomic<long> attempts{0}, connect_failures{0}, tls_failures{0}, refused{0},
      upgrade_failures{0}, drops{0}, heartbeats{0}, actions{0}, pings{0};
  std::mutex refusal_mu;
  std::map<int, long> refused_by_status;
  std::atomic<Clock::rep> all_welcomed_at{0};

  // Reconnect phase.
  std::atomic<bool> reconnect_phase{false};
  std::atomic<int> dropped_now{0}, rewelcomed{0};
  std::atomic<Clock::rep> first_drop_at{0}, all_rewelcomed_at{0}, last_drop_at{0};

  // Latency samples.
  std::mutex sample_mu;
  std::vector<double> samples_ms;
  std::atomic<int> started_tasks{0}, diagnostics{0};

  void start(int n) {
    for (auto& a : agents) a->connect();
    for (int i = 0; i < std::max(1, n); ++i) threads.emplace_back([this] { ioc.run(); });
  }
};

Agent::Agent(Load& load, int index, std::string node_name, std::string credential)
    : node(std::move(node_name)),
      load_(load),
      index_(index),
      credential_(std::move(credential)),
      strand_(asio::make_strand(load.ioc)),
      retry_(strand_),
      heartbeat_(strand_),
      random_(std::random_device{}() ^ static_cast<std::uint64_t>(index)) {}

void Agent::connect() {
  load_.acquire(this);
}

void Agent::release_slot() {
  if (!holding_slot_) return;
  holding_slot_ = false;
  load_.release();
}

void Agent::attempt() {
  holding_slot_ = true;
  ++load_.attempts;
  const std::uint64_t gen = ++generation_;
  ws_ = std::make_unique<Socket>(strand_, load_.tls);
  outbox_.clear();
  buffer_.clear();
  auto& lowest = beast::get_lowest_layer(*ws_);
  lowest.expires_after(std::chrono::seconds(10));  // the agent's connect_timeout
  lowest.async_connect(load_.endpoints, [this, gen](beast::error_code ec, const tcp::endpoint&) {
    if (gen != generation_) return;
    if (ec) return lost(gen, Failure::Connect, "connect: " + ec.message());
    SSL_set_tlsext_host_name(ws_->next_layer().native_handle(), load_.o.host.c_str());
    ws_->next_layer().set_verify_callback(ssl::host_name_verification(load_.o.host));
    ws_->next_layer().async_handshake(ssl::stream_base::client, [this, gen](beast::error_code hs) {
      if (gen != generation_) return;
      if (hs) return lost(gen, Failure::Tls, "TLS handshake: " + hs.message());
      upgrade(gen);
    });
  });
}

void Agent::upgrade(std::uint64_t gen) {
  ws_->set_option(
      websocket::stream_base::decorator([cred = credential_](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + cred);
        req.set(http::field::user_agent, "shepherd-agent-load");
      }));
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(10);
  timeouts.idle_timeout = std::chrono::seconds(90);
  timeouts.keep_alive_pings = true;
  beast::get_lowest_layer(*ws_).expires_never();
  ws_->set_option(timeouts);
  ws_->read_message_max(protocol::kMaxFrameBytes);
  ws_->text(true);
  ws_->control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) ++load_.pings;
  });
  auto response = std::make_shared<websocket::response_type>();
  ws_->async_handshake(*response, load_.o.host, std::string(protocol::kAgentPath),
                       [this, gen, response](beast::error_code ec) {
                         if (gen != generation_) return;
                         if (ec) {
                           if (response->result_int() != 0) {
                             std::lock_guard lock(load_.refusal_mu);
                             ++load_.refused_by_status[response->result_int()];
                             return lost(gen, Failure::Refused,
                                         "refused: HTTP " + std::to_string(response->result_int()) +
                                             " " + response->body());
                           }
                           return lost(gen, Failure::Upgrade, "upgrade: " + ec.message());
                         }
                         protocol::Hello h;
                         h.node = node;
                         h.boot_id = "load-boot-" + node;  // the same in every run: no reboot
                         h.ip = "127.0.0.1";
                         h.ibdev = "mlx5_0";
                         h.gpus = 8;
                         h.gpu_type = "NVIDIA H100 80GB HBM3";
                         h.driver_version = "550.54.15";
                         h.agent_version = "agent-load";
                         queue(protocol::encode(protocol::AgentMessage{h}));
                         read(gen);
                       });
}

void Agent::read(std::uint64_t gen) {
  ws_->async_read(buffer_, [this, gen](beast::error_code ec, std::size_t) {
    if (gen != generation_) return;
    if (ec) return lost(gen, Failure::Lost, "connection lost: " + ec.message());
    const std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    on_frame(text);
    if (gen == generation_) read(gen);
  });
}

void Agent::on_frame(const std::string& text) {
  protocol::ServerMessage message;
  try {
    message = protocol::decode_server_message(text);
  } catch (const protocol::ProtocolError& e) {
    std::fprintf(stderr, "%s: bad message from the server: %s\n", node.c_str(), e.what());
    return;
  }
  if (const auto* welcome = std::get_if<protocol::Welcome>(&message)) {
    connected_ = true;
    connected_at_ = Clock::now();
    release_slot();
    ++load_.connected_now;
    if (!welcomed_once_) {
      welcomed_once_ = true;
      if (++load_.welcomed_once == static_cast<int>(load_.agents.size()))
        load_.all_welcomed_at = Clock::now().time_since_epoch().count();
    }
    if (dropped_) {
      dropped_ = false;
      --load_.dropped_now;
      if (++load_.rewelcomed == static_cast<int>(load_.agents.size()))
        load_.all_rewelcomed_at = Clock::now().time_since_epoch().count();
    }
    heartbeat_seconds_ = std::max(1, welcome->heartbeat_seconds);
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(10);
    timeouts.idle_timeout = std::chrono::seconds(3 * heartbeat_seconds_);
    timeouts.keep_alive_pings = true;
    ws_->set_option(timeouts);
    beat(generation_);
    return;
  }
  if (const auto* action = std::get_if<protocol::ActionRequest>(&message)) {
    ++load_.actions;
    queue(
        protocol::encode(protocol::AgentMessage{protocol::ActionAck{action->id, true, false, {}}}));
    if (action->kind == "start_task" && load_.o.mode == "latency" && task_id_.empty()) {
      task_id_ = action->task_id;
      protocol::Report r;
      r.id = "start:" + task_id_;
      r.kind = protocol::ReportKind::TaskStarted;
      r.task_id = task_id_;
      queue(protocol::encode(protocol::AgentMessage{r}));
    } else if (action->kind == "run_diagnostic" && exit_pending_) {
      exit_pending_ = false;
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - exit_sent_).count();
      {
        std::lock_guard lock(load_.sample_mu);
        load_.samples_ms.push_back(ms);
      }
      ++load_.diagnostics;
    }
    return;
  }
  if (const auto* ack = std::get_if<protocol::ReportAck>(&message)) {
    if (!task_id_.empty() && ack->report_id == "start:" + task_id_ && !running) {
      running = true;
      ++load_.started_tasks;
    }
    return;
  }
  if (const auto* log = std::get_if<protocol::LogRequest>(&message)) {
    protocol::LogData d;
    d.request_id = log->request_id;
    d.error = "the load generator keeps no logs";
    queue(protocol::encode(protocol::AgentMessage{d}));
  }
}

void Agent::send_exit() {
  asio::post(strand_, [this] {
    if (!connected_ || task_id_.empty()) return;
    protocol::Report r;
    r.id = "exit:" + task_id_;
    r.kind = protocol::ReportKind::TaskExited;
    r.task_id = task_id_;
    r.exit_code = 1;
    exit_pending_ = true;
    exit_sent_ = Clock::now();
    queue(protocol::encode(protocol::AgentMessage{r}));
  });
}

void Agent::beat(std::uint64_t gen) {
  heartbeat_.expires_after(std::chrono::seconds(heartbeat_seconds_));
  heartbeat_.async_wait([this, gen](beast::error_code ec) {
    if (ec || gen != generation_ || !connected_) return;
    ++load_.heartbeats;
    queue(protocol::encode(protocol::AgentMessage{protocol::Heartbeat{}}));
    beat(gen);
  });
}

void Agent::queue(std::string frame) {
  if (!ws_) return;
  outbox_.push_back(std::move(frame));
  if (outbox_.size() == 1) write(generation_);
}

void Agent::write(std::uint64_t gen) {
  ws_->async_write(asio::buffer(outbox_.front()), [this, gen](beast::error_code ec, std::size_t) {
    if (gen != generation_) return;
    if (ec) return lost(gen, Failure::Lost, "write failed: " + ec.message());
    outbox_.pop_front();
    if (!outbox_.empty()) write(gen);
  });
}

void Agent::lost(std::uint64_t gen, Failure kind, const std::string& why) {
  if (gen != generation_) return;
  ++generation_;
  release_slot();
  heartbeat_.cancel();
  const bool was_connected = connected_;
  connected_ = false;
  switch (kind) {
    case Failure::Connect:
      ++load_.connect_failures;
      break;
    case Failure::Tls:
      ++load_.tls_failures;
      break;
    case Failure::Refused:
      ++load_.refused;
      break;
    case Failure::Upgrade:
      ++load_.upgrade_failures;
      break;
    case Failure::Lost:
      break;
  }
  if (was_connected) {
    --load_.connected_now;
    ++load_.drops;
    const auto now = Clock::now().time_since_epoch().count();
    load_.last_drop_at = now;
    if (load_.reconnect_phase && !dropped_) {
      dropped_ = true;
      ++load_.dropped_now;
      Clock::rep none = 0;
      load_.first_drop_at.compare_exchange_strong(none, now);
    }
  }
  if (ws_) {
    beast::error_code ignored;
    beast::get_lowest_layer(*ws_).socket().close(ignored);
    asio::post(strand_, [old = std::shared_ptr<Socket>(std::move(ws_))] {});
  }
  // As the agent: a connection that held a while resets the backoff; one refused grows it.
  if (was_connected && Clock::now() - connected_at_ > std::chrono::seconds(30)) failures_ = 0;
  const auto delay =
      agent::backoff_delay(failures_++, std::chrono::milliseconds(load_.o.backoff_base_ms),
                           std::chrono::milliseconds(load_.o.backoff_cap_ms), random_);
  if (kind == Failure::Refused)
    std::fprintf(stderr, "%s: %s; again in %lld ms\n", node.c_str(), why.c_str(),
                 static_cast<long long>(delay.count()));
  retry_.expires_after(delay);
  retry_.async_wait([this](beast::error_code ec) {
    if (!ec) connect();
  });
}

// ---------------------------------------------------------------------------------------------

void raise_nofile() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  getrlimit(RLIMIT_NOFILE, &r);
  std::printf("open files limit: %llu\n", static_cast<unsigned long long>(r.rlim_cur));
}

std::vector<std::pair<std::string, std::string>> read_credentials(const std::string& path,
                                                                  int want) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read credentials " + path);
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string line; std::getline(in, line) && static_cast<int>(out.size()) < want;) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    out.emplace_back(line.substr(0, colon), line);
  }
  if (static_cast<int>(out.size()) < want)
    throw std::runtime_error(path + " holds " + std::to_string(out.size()) +
                             " credentials, fewer than --agents " + std::to_string(want));
  return out;
}

int do_enrol(const Options& o) {
  ssl::context tls(ssl::context::tls_client);
  tls.load_verify_file(o.ca);
  tls.set_verify_mode(ssl::verify_peer);
  const std::string token = read_token(o.bootstrap_token_file);
  std::vector<std::string> lines(static_cast<std::size_t>(o.enrol));
  std::atomic<int> failed{0};
  const auto t0 = Clock::now();
  on_clients(tls, o, o.enrol, [&](HttpsClient& client, int i) {
    char name[64];
    std::snprintf(name, sizeof name, "%s%05d", o.node_prefix.c_str(), i);
    try {
      const auto [status, body] = client.post(std::string(protocol::kEnrolPath), token,
                                              nlohmann::json{{"node", name}}.dump());
      if (status != 200) throw std::runtime_error("HTTP " + std::to_string(status) + " " + body);
      lines[static_cast<std::size_t>(i)] =
          nlohmann::json::parse(body).at("credential").get<std::string>();
    } catch (const std::exception& e) {
      if (failed++ < 5) std::fprintf(stderr, "enrol %s: %s\n", name, e.what());
    }
  });
  const double took = seconds_since(t0);
  std::ofstream out(o.credentials_out, std::ios::trunc);
  for (const auto& l : lines)
    if (!l.empty()) out << l << "\n";
  out.close();
  std::printf("enrolled %d nodes in %.2f s (%.0f/s), %d failed, credentials in %s\n",
              o.enrol - failed.load(), took, (o.enrol - failed.load()) / took, failed.load(),
              o.credentials_out.c_str());
  result("enrolled", o.enrol - failed.load());
  result("enrol_s", took);
  return failed == 0 ? 0 : 1;
}

void write_ready(const Options& o) {
  if (o.ready_file.empty()) return;
  std::ofstream(o.ready_file) << "ready\n";
}

// Waits until pred() or the deadline (or a signal); true if pred().
template <class Pred>
bool wait_for(Pred pred, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (!pred()) {
    if (g_interrupted || Clock::now() >= until) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

double at_seconds(const Load& load, Clock::rep at) {
  return seconds_since(load.started, Clock::time_point(Clock::duration(at)));
}

void print_counters(Load& load) {
  std::printf(
      "connection attempts %ld: TCP failures %ld, TLS failures %ld, refused (HTTP) %ld, "
      "upgrade failures %ld; drops %ld; heartbeats sent %ld, actions %ld, pongs %ld\n",
      load.attempts.load(), load.connect_failures.load(), load.tls_failures.load(),
      load.refused.load(), load.upgrade_failures.load(), load.drops.load(), load.heartbeats.load(),
      load.actions.load(), load.pings.load());
  {
    std::lock_guard lock(load.refusal_mu);
    for (const auto& [status, n] : load.refused_by_status)
      std::printf("  refused with HTTP %d: %ld\n", status, n);
  }
  result("attempts", static_cast<double>(load.attempts));
  result("connect_failures", static_cast<double>(load.connect_failures));
  result("tls_failures", static_cast<double>(load.tls_failures));
  result("refused", static_cast<double>(load.refused));
  result("upgrade_failures", static_cast<double>(load.upgrade_failures));
  result("drops", static_cast<double>(load.drops));
  result("heartbeats", static_cast<double>(load.heartbeats));
}

// Ramp up: every agent connects; true once all were welcomed.
bool ramp_up(Load& load) {
  const int n = static_cast<int>(load.agents.size());
  load.start(load.o.threads);
  const bool all = wait_for([&] { return load.welcomed_once.load() == n; }, 600);
  if (!all) {
    std::printf("only %d of %d agents were welcomed\n", load.welcomed_once.load(), n);
    return false;
  }
  const double took = at_seconds(load, load.all_welcomed_at);
  std::printf("%d agents welcomed in %.2f s (%.0f connections/s), %ld refused\n", n, took, n / took,
              load.refused.load());
  result("agents", n);
  result("all_welcomed_s", took);
  return true;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

int do_latency(Load& load) {
  const Options& o = load.o;
  if (!ramp_up(load)) return 1;
  const int m = o.latency_agents > 0
                    ? std::min<int>(o.latency_agents, static_cast<int>(load.agents.size()))
                    : static_cast<int>(load.agents.size());
  // Let the hellos' registrations commit before placing jobs on the nodes.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string admin = read_token(o.admin_token_file);
  const std::string prefix =
      o.job_prefix.empty() ? "lat" + std::to_string(::getpid()) + "-" : o.job_prefix;
  std::atomic<int> submitted{0}, rejected{0};
  const auto t0 = Clock::now();
  on_clients(load.tls, o, m, [&](HttpsClient& client, int i) {
    const std::string& node = load.agents[static_cast<std::size_t>(i)]->node;
    const nlohmann::json body{{"id", prefix + node}, {"nodes", {node}}, {"command", {"true"}}};
    for (int tries = 0; tries < 40; ++tries) {
      try {
        const auto [status, text] = client.post("/api/jobs", admin, body.dump());
        if (status == 201) {
          ++submitted;
          return;
        }
        if (tries == 39 && rejected++ < 5)
          std::fprintf(stderr, "job on %s: HTTP %d %s\n", node.c_str(), status, text.c_str());
      } catch (const std::exception& e) {
        if (tries == 39 && rejected++ < 5)
          std::fprintf(stderr, "job on %s: %s\n", node.c_str(), e.what());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  std::printf("%d jobs submitted in %.2f s (%d not accepted)\n", submitted.load(),
              seconds_since(t0), m - submitted.load());
  if (!wait_for([&] { return load.started_tasks.load() >= submitted.load(); }, 120))
    std::printf("only %d of %d tasks reported running\n", load.started_tasks.load(),
                submitted.load());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // One failing exit after another, spread so that each sample sees a quiet server except for
  // the heartbeats of every agent.
  const auto first = Clock::now();
  int sent = 0;
  for (int i = 0; i < m && !g_interrupted; ++i) {
    auto& a = *load.agents[static_cast<std::size_t>(i)];
    if (!a.running) continue;
    std::this_thread::sleep_until(
        first + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double, std::milli>(o.exit_interval_ms * sent)));
    a.send_exit();
    ++sent;
  }
  wait_for([&] { return load.diagnostics.load() >= sent; }, 30);
  std::vector<double> samples;
  {
    std::lock_guard lock(load.sample_mu);
    samples = load.samples_ms;
  }
  std::printf(
      "exit code 1 -> run_diagnostic, %zu samples of %d (one exit every %.1f ms): "
      "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      samples.size(), sent, o.exit_interval_ms, percentile(samples, 50), percentile(samples, 90),
      percentile(samples, 99), percentile(samples, 100));
  result("latency_samples", static_cast<double>(samples.size()));
  result("latency_p50_ms", percentile(samples, 50));
  result("latency_p90_ms", percentile(samples, 90));
  result("latency_p99_ms", percentile(samples, 99));
  result("latency_max_ms", percentile(samples, 100));
  print_counters(load);
  return samples.size() == static_cast<std::size_t>(sent) && sent == m ? 0 : 1;
}

int do_connect(Load& load) {
  if (!ramp_up(load)) return 1;
  write_ready(load.o);
  const long drops_before = load.drops;
  const auto t = Clock::now();
  wait_for([] { return false; }, load.o.duration);
  std::printf("held for %.1f s: %d connected at the end, %ld drops while holding\n",
              seconds_since(t), load.connected_now.load(), load.drops - drops_before);
  result("connected_at_end", load.connected_now.load());
  print_counters(load);
  return load.connected_now.load() == static_cast<int>(load.agents.size()) ? 0 : 1;
}

int do_reconnect(Load& load) {
  const int n = static_cast<int>(load.agents.size());
  if (!ramp_up(load)) return 1;
  load.reconnect_phase = true;
  const long refused_before = load.refused, connect_before = load.connect_failures,
             tls_before = load.tls_failures, attempts_before = load.attempts;
  write_ready(load.o);
  std::printf("all connected: waiting for the server to restart (up to %.0f s)\n", load.o.duration);
  std::fflush(stdout);
  if (!wait_for([&] { return load.first_drop_at.load() != 0; }, load.o.duration)) {
    std::printf("no connection dropped\n");
    return 1;
  }
  const bool all = wait_for([&] { return load.all_rewelcomed_at.load() != 0; }, load.o.duration);
  const double first_drop = at_seconds(load, load.first_drop_at);
  const double last_drop = at_seconds(load, load.last_drop_at);
  if (!all) {
    std::printf("after %.0f s only %d of %d agents were welcomed again\n",
                seconds_since(Clock::time_point(Clock::duration(load.first_drop_at.load()))),
                load.rewelcomed.load(), n);
  }
  const double took = all ? at_seconds(load, load.all_rewelcomed_at) - first_drop : -1;
  std::printf(
      "reconnection: first drop at %.2f s, last drop %.2f s later; all %d welcomed again "
      "%.2f s after the first drop\n",
      first_drop, last_drop - first_drop, n, took);
  std::printf(
      "  during it: %ld attempts, %ld refused (HTTP), %ld TCP failures (server down), "
      "%ld TLS failures\n",
      load.attempts - attempts_before, load.refused - refused_before,
      load.connect_failures - connect_before, load.tls_failures - tls_before);
  result("reconnect_s", took);
  result("reconnect_refused", static_cast<double>(load.refused - refused_before));
  result("reconnect_attempts", static_cast<double>(load.attempts - attempts_before));
  result("reconnect_tcp_failures", static_cast<double>(load.connect_failures - connect_before));
  result("reconnect_tls_failures", static_cast<double>(load.tls_failures - tls_before));
  print_counters(load);
  if (all && !load.o.ready_file.empty()) std::ofstream(load.o.ready_file + ".again") << "ready\n";
  std::fflush(stdout);
  if (all) wait_for([] { return false; }, load.o.hold);
  return all && load.refused == refused_before ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Shepherd agent load generator (bench/README.md)"};
  app.add_option("mode", o.mode, "enrol, connect, latency or reconnect")
      ->check(CLI::IsMember({"enrol", "connect", "latency", "reconnect"}));
  app.add_option("--server", o.server, "https://HOST:PORT");
  app.add_option("--ca", o.ca, "The server's CA certificate")->required();
  app.add_option("--credentials", o.credentials, "One node:secret a line");
  app.add_option("--agents", o.agents, "Connections (the first N credentials)");
  app.add_option("--duration", o.duration,
                 "connect: hold this long after all were welcomed; reconnect: the longest wait");
  app.add_option("--hold", o.hold,
                 "reconnect: stay connected this long once all are back (READY_FILE.again "
                 "written then)");
  app.add_option("--threads", o.threads, "io threads (1 or 2)");
  app.add_option("--handshakes", o.handshakes, "Connection attempts in flight at most");
  app.add_option("--backoff-base-ms", o.backoff_base_ms, "Reconnect backoff base (agent: 1000)");
  app.add_option("--backoff-cap-ms", o.backoff_cap_ms, "Reconnect backoff cap (agent: 60000)");
  app.add_option("--tls-release-buffers", o.release_buffers,
                 "Free idle connections' TLS record buffers (the generator's memory; 1 or 0)");
  app.add_option("--ready-file", o.ready_file, "Written once all agents are welcomed");
  app.add_option("--enrol", o.enrol, "enrol: this many nodes");
  app.add_option("--bootstrap-token-file", o.bootstrap_token_file, "enrol: the bootstrap token");
  app.add_option("--credentials-out", o.credentials_out, "enrol: where the credentials go");
  app.add_option("--node-prefix", o.node_prefix, "enrol: node names are PREFIX00000...");
  app.add_option("--http-connections", o.http_connections,
                 "enrol, latency: keep-alive HTTPS connections for the API");
  app.add_option("--admin-token-file", o.admin_token_file, "latency: the admin token");
  app.add_option("--latency-agents", o.latency_agents, "latency: how many get a job (0: all)");
  app.add_option("--exit-interval-ms", o.exit_interval_ms, "latency: time between two exits");
  app.add_option("--job-prefix", o.job_prefix, "latency: job ids are PREFIX<node>");
  CLI11_PARSE(app, argc, argv);

  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  int code = 1;
  try {
    agent::parse_server_url(o.server, o.host, o.port);
    raise_nofile();
    if (o.mode == "enrol") {
      if (o.enrol <= 0 || o.bootstrap_token_file.empty() || o.credentials_out.empty())
        throw std::runtime_error("enrol needs --enrol N --bootstrap-token-file --credentials-out");
      code = do_enrol(o);
    } else {
      if (o.credentials.empty()) throw std::runtime_error(o.mode + " needs --credentials");
      if (o.mode == "latency" && o.admin_token_file.empty())
        throw std::runtime_error("latency needs --admin-token-file");
      const auto creds = read_credentials(o.credentials, o.agents);
      Load load(o);
      load.agents.reserve(creds.size());
      for (std::size_t i = 0; i < creds.size(); ++i)
        load.agents.push_back(
            std::make_unique<Agent>(load, static_cast<int>(i), creds[i].first, creds[i].second));
      if (o.mode == "connect") code = do_connect(load);
      if (o.mode == "latency") code = do_latency(load);
      if (o.mode == "reconnect") code = do_reconnect(load);
      rusage self{};
      getrusage(RUSAGE_SELF, &self);
      std::printf("generator: %.1f s CPU, peak RSS %ld MiB\n",
                  static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                      static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6,
                  self.ru_maxrss / 1024);
      std::fflush(stdout);
      std::fflush(stderr);
      _exit(code);  // the kernel closes the sockets; no orderly teardown of N connections
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent_load: %s\n", e.what());
    return 2;
  }
  return code;
}
