#include "server/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>

#include "api/http_api.hpp"
#include "common/private_file.hpp"
#include "config/config.hpp"
#include "gateway/agent_gateway.hpp"
#include "notify/background_notifier.hpp"
#include "notify/sinks.hpp"
#include "notify/webhook.hpp"
#include "server/leader_only.hpp"
#include "server/lease_keeper.hpp"
#include "server/stores.hpp"

namespace shepherd::server {
namespace {

std::pair<std::string, int> split_listen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw ConfigError("listen: '" + listen + "' is not HOST:PORT");
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) throw ConfigError("listen: '" + listen + "' has no valid port");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, port};
}

std::shared_ptr<boost::asio::ssl::context> tls_context(const Layout& at) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  read_secret_file(at.server_key());  // refuses a key others may read
  ctx->use_certificate_chain_file(at.server_cert());
  ctx->use_private_key_file(at.server_key(), ssl::context::pem);
  return ctx;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// This controller's name and URL: the settings, else from the listen address (its host unless it
// listens on every interface, then this machine's name).
ControllerIdentity identity_of(const Config& config, int port) {
  std::string host = split_listen(config.listen).first;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = host_name();
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const std::string where = shown + ":" + std::to_string(port);
  ControllerIdentity me;
  me.name = config.controller_name.empty() ? where : config.controller_name;
  me.url = config.controller_url.empty() ? "https://" + where : config.controller_url;
  while (!me.url.empty() && me.url.back() == '/') me.url.pop_back();
  // Clients follow it with the admin token: https, a host and a port, nothing else.
  const std::string authority = me.url.substr(std::min(me.url.size(), std::size_t{8}));
  if (!me.url.starts_with("https://") || authority.empty() ||
      authority.find_first_of("/?#@ ") != std::string::npos)
    throw ConfigError("controller.url: '" + me.url + "' is not https://HOST[:PORT]");
  me.version = "0.1.0";
  return me;
}

}  // namespace

Server::Server(const std::string& dir, std::function<void(const std::string&)> print,
               const ServerFlags& flags)
    : layout_{dir},
      print_(std::move(print)),
      clock_(std::make_unique<SystemClock>()),
      config_(std::make_unique<Config>(load_config(layout_.config(), process_environment()))) {
  Config& config = *config_;
  override_store(config, flags.store);
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.controller_name.empty()) config.controller_name = flags.controller_name;
  if (!flags.controller_url.empty()) config.controller_url = flags.controller_url;
  listen_ = config.listen;
  const auto [host, port] = split_listen(config.listen);

  fanout_ = std::make_shared<FanoutNotifier>(
      std::vector<std::shared_ptr<NotificationSink>>{std::make_shared<LogSink>()});
  if (!config.webhook_url.empty()) {
    WebhookOptions webhook;
    webhook.url = config.webhook_url;
    fanout_->add(std::make_shared<WebhookSink>(webhook));
  }
  notifier_ =
      std::make_unique<BackgroundNotifier>(fanout_);  // a slow receiver never holds the loop

  HttpApiOptions api;
  api.tls = tls_context(layout_);
  api.admin_token = read_secret_file(layout_.admin_token());
  api.open_paths.emplace_back(protocol::kEnrolPath);
  api.leader_url = [this] { return leader_url(); };
  gateway::GatewayOptions gw;
  gw.bootstrap_token = read_secret_file(layout_.bootstrap_token());
  gw.heartbeat_seconds = std::max(1, static_cast<int>(config.policy.heartbeat_timeout / 6));
  gw.leader_url = api.leader_url;

  Stores stores = open_stores(config, layout_.database(), *clock_);
  reader_ = std::move(stores.reader);
  credentials_ = std::move(stores.credentials);
  open_writer_ = std::move(stores.open_writer);
  store_description_ = stores.description;

  gateway_ = std::make_shared<gateway::AgentGateway>(*credentials_, gw);
  api_ = std::make_unique<HttpApi>(*reader_, api);
  api_->server().on_upgrade(std::string(protocol::kAgentPath), gateway_);
  gateway_->add_routes(api_->router());
  add_routes();
  port_ = api_->bind(host, port);
  me_ = identity_of(config, port_);  // the port bound (port 0 in tests: any free one)
  leadership_ = stores.open_leadership(me_);
}

Server::~Server() {
  if (keeper_) keeper_->stop();  // its thread may call lose(): gone before anything it touches
  if (api_) api_->stop();
  if (gateway_) gateway_->close_all();
}

void Server::remember_leader(const ClusterView& view) {
  std::optional<std::string> url;
  if (view.lease && view.lease->expires_at >= view.now && view.lease->holder != me_.name)
    url = view.lease->url;
  std::lock_guard lock(leader_mu_);
  leader_url_ = url;
  leader_read_at_ = std::chrono::steady_clock::now();
}

std::optional<std::string> Server::leader_url() {
  {
    std::lock_guard lock(leader_mu_);
    if (std::chrono::steady_clock::now() - leader_read_at_ < std::chrono::seconds(1))
      return leader_url_;
  }
  try {
    remember_leader(leadership_->view());
  } catch (const std::exception& e) {
    spdlog::warn("server: cannot read who leads: {}", e.what());
  }
  std::lock_guard lock(leader_mu_);
  return leader_url_;
}

void Server::run() {
  api_->start();
  print_("shepherd server: " + layout_.dir + ", store " + store_description_ + ", controller " +
         me_.name + " (" + me_.url + "), listening on https://" +
         listen_.substr(0, listen_.rfind(':')) + ":" + std::to_string(port_) +
         " (API and agents; admin token " + layout_.admin_token() + ")");
  struct StopHttp {
    HttpApi& api;
    gateway::AgentGateway& gateway;
    ~StopHttp() {
      api.stop();
      gateway.close_all();
    }
  } stop_http{*api_, *gateway_};
  if (const auto won = campaign()) lead(*won);
}

// Tries for the lease every fifth of its ttl until this controller leads or is stopped.
std::optional<Server::Won> Server::campaign() {
  const auto every =
      std::max(std::chrono::milliseconds(200),
               std::chrono::duration_cast<std::chrono::milliseconds>(leadership_->ttl() / 5));
  std::string said;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return std::nullopt;
    }
    try {
      const auto sent = std::chrono::steady_clock::now();
      if (const auto epoch = leadership_->try_lead()) return Won{*epoch, sent};
      const ClusterView view = leadership_->view();
      remember_leader(view);
      const auto& leader = view.lease;
      const std::string now =
          leader ? leader->holder + " leads (epoch " + std::to_string(leader->epoch) + ")" : "";
      if (now != said)
        print_("shepherd server: standby; " + (now.empty() ? "no controller leads yet" : now));
      said = now;
    } catch (const std::exception& e) {
      spdlog::warn("server: campaign for the leader lease failed: {}", e.what());
    }
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, every, [this] { return stopping_; });
  }
}

void Server::lose(const std::string& why) {
  std::lock_guard lock(mu_);
  if (lost_.empty()) lost_ = why;
  if (controller_) controller_->stop();
}

void Server::lead(const Won& won) {
  const Config& config = *config_;
  // Renewals start at once: opening the store may wait (its schema lock) longer than a ttl.
  keeper_ = std::make_unique<LeaseKeeper>(
      *leadership_, [this](const std::string& why) { lose(why); }, won.at);
  struct StopKeeper {
    LeaseKeeper& keeper;
    ~StopKeeper() { keeper.stop(); }  // whatever ends the term: no renewal after it
  } stop_keeper{*keeper_};
  try {
    store_ = open_writer_(won.epoch);
    hands_ = std::make_unique<LeaderOnly>(*gateway_, *notifier_, *keeper_);
    {
      std::lock_guard lock(mu_);
      controller_ = std::make_unique<Controller>(*store_, *hands_, *hands_,
                                                 Engine(config.policy, config.cluster_name),
                                                 *clock_, config.policy);
      if (stopping_ || !lost_.empty()) controller_->stop();
    }
    // Started (the state loaded, this start counted) before agents and commands reach it. The
    // controller then stays for the API and the gateway until the server is gone: a command after
    // the term ends is answered 503 (the controller is stopping).
    controller_->start();
    gateway_->set_controller(controller_.get());
    api_->set_controller(controller_.get());
    leading_ = true;
    print_("shepherd server: controller " + me_.name + " leads (epoch " +
           std::to_string(won.epoch) + ")");
    controller_->run();
  } catch (const FencedOut& e) {
    lose(e.what());
  }
  leading_ = false;
  keeper_->stop();
  std::string lost;
  {
    std::lock_guard lock(mu_);
    lost = lost_;
  }
  if (!lost.empty())
    throw LeadershipLost("controller " + me_.name + " lost the leader lease of epoch " +
                         std::to_string(won.epoch) + ": " + lost);
  leadership_->resign();  // a standby takes over now, not when the lease lapses
}

void Server::stop() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  if (controller_) controller_->stop();
  wake_.notify_all();
}

}  // namespace shepherd::server
