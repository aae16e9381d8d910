#include "server/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>

#include "api/http_api.hpp"
#include "common/private_file.hpp"
#include "config/config.hpp"
#include "gateway/agent_gateway.hpp"
#include "notify/background_notifier.hpp"
#include "notify/sinks.hpp"
#include "notify/webhook.hpp"
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

}  // namespace

Server::Server(const std::string& dir, std::function<void(const std::string&)> print,
               const std::string& store)
    : layout_{dir}, print_(std::move(print)), clock_(std::make_unique<SystemClock>()) {
  Config config = load_config(layout_.config(), process_environment());
  override_store(config, store);
  listen_ = config.listen;
  const auto [host, port] = split_listen(config.listen);
  Stores stores = open_stores(config, layout_.database());
  store_ = std::move(stores.writer);
  reader_ = std::move(stores.reader);
  credentials_ = std::move(stores.credentials);
  store_description_ = stores.description;

  fanout_ = std::make_shared<FanoutNotifier>(
      std::vector<std::shared_ptr<NotificationSink>>{std::make_shared<LogSink>()});
  if (!config.webhook_url.empty()) {
    WebhookOptions webhook;
    webhook.url = config.webhook_url;
    fanout_->add(std::make_shared<WebhookSink>(webhook));
  }
  notifier_ =
      std::make_unique<BackgroundNotifier>(fanout_);  // a slow receiver never holds the loop

  gateway::GatewayOptions gw;
  gw.bootstrap_token = read_secret_file(layout_.bootstrap_token());
  gw.heartbeat_seconds = std::max(1, static_cast<int>(config.policy.heartbeat_timeout / 6));
  gateway_ = std::make_shared<gateway::AgentGateway>(*credentials_, gw);
  controller_ = std::make_unique<Controller>(*store_, *gateway_, *notifier_,
                                             Engine(config.policy, config.cluster_name), *clock_,
                                             config.policy);
  gateway_->set_controller(*controller_);

  HttpApiOptions api;
  api.tls = tls_context(layout_);
  api.admin_token = read_secret_file(layout_.admin_token());
  api.open_paths.emplace_back(protocol::kEnrolPath);
  api_ = std::make_unique<HttpApi>(*controller_, *reader_, api);
  api_->server().on_upgrade(std::string(protocol::kAgentPath), gateway_);
  gateway_->add_routes(api_->router());
  add_routes();
  port_ = api_->bind(host, port);
}

Server::~Server() {
  if (api_) api_->stop();
  if (gateway_) gateway_->close_all();
}

void Server::run() {
  controller_->start();
  api_->start();
  print_("shepherd server: " + layout_.dir + ", store " + store_description_ +
         ", listening on https://" + listen_.substr(0, listen_.rfind(':')) + ":" +
         std::to_string(port_) + " (API and agents; admin token " + layout_.admin_token() + ")");
  struct StopHttp {
    HttpApi& api;
    gateway::AgentGateway& gateway;
    ~StopHttp() {
      api.stop();
      gateway.close_all();
    }
  } stop_http{*api_, *gateway_};
  controller_->run();
}

void Server::stop() {
  stopping_ = true;
  if (controller_) controller_->stop();
}

}  // namespace shepherd::server
