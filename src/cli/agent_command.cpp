// `shepherd agent enrol` (once per node) and `shepherd agent` (the daemon).
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "agent/agent.hpp"
#include "cli/commands.hpp"
#include "client/api_client.hpp"
#include "common/private_file.hpp"
#include "common/stop_signals.hpp"
#include "protocol/agent_protocol.hpp"

namespace shepherd::cli {
namespace {
// A command line as argv words, split on white space: no shell reads it, so nothing in it is
// expanded or interpreted.
std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}
}  // namespace

void add_agent_command(CLI::App& app, int& code) {
  auto* cmd = app.add_subcommand("agent", "Run the node agent (GPU nodes), or enrol it once");
  auto o = std::make_shared<agent::AgentOptions>();
  auto diag = std::make_shared<std::string>();
  auto reboot = std::make_shared<std::string>();
  auto stop_grace = std::make_shared<double>(10);
  cmd->add_option("--server", o->server_url,
                  "The server, https://HOST:PORT; several controllers on one store: their URLs, "
                  "comma-separated (the agent finds the leader)");
  cmd->add_option("--ca", o->ca_file, "The server's CA certificate (its DIR/tls/ca.crt)");
  cmd->add_option("--dir", o->state_dir, "State: credential, unsent reports, task logs")
      ->capture_default_str();
  cmd->add_option("--boot-id-file", o->boot_id_file, "Where the boot id is read")
      ->capture_default_str();
  cmd->add_option("--ip", o->ip,
                  "The address other nodes reach this one at (default: the first "
                  "IPv4 address of an interface that is up)");
  cmd->add_option("--diag-command", *diag,
                  "Health check, {level} replaced (default: dcgmi diag -r {level} -j); no shell");
  cmd->add_option("--reboot-command", *reboot,
                  "Reboot command (default: systemctl reboot); no shell");
  cmd->add_option("--kernel-log", o->kernel_log, "Kernel log to follow for Xids (\"\": none)")
      ->capture_default_str();
  cmd->add_option("--xid-catalogue", o->xid_catalogue_file,
                  "YAML overriding the built-in Xid catalogue");
  cmd->add_option("--stop-grace", *stop_grace, "Seconds between SIGTERM and SIGKILL of a task")
      ->check(CLI::Range(0.0, 3600.0));
  auto backoff = std::make_shared<std::pair<double, double>>(1.0, 60.0);
  cmd->add_option("--backoff-base", backoff->first,
                  "Seconds: the first reconnection waits up to this (then doubling, jittered)")
      ->check(CLI::Range(0.01, 3600.0));
  cmd->add_option("--backoff-cap", backoff->second,
                  "Seconds: the longest wait between reconnections")
      ->check(CLI::Range(0.01, 3600.0));

  auto* enrol = cmd->add_subcommand("enrol", "Enrol this node with the bootstrap token (once)");
  auto token_file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  enrol->add_option("--name", *name, "This node's name")->required();
  enrol
      ->add_option("--bootstrap-token-file", *token_file,
                   "The server's DIR/secrets/bootstrap.token")
      ->required();
  enrol->callback([o, name, token_file, &code] {
    try {
      if (o->server_url.empty() || o->ca_file.empty())
        throw std::runtime_error("enrol needs --server and --ca (before `enrol`)");
      const std::string token = client::token_in_file(read_secret_file(*token_file), *token_file);
      // Any controller enrols (the credentials are in the shared store): the first that answers.
      nlohmann::json answer;
      const auto servers = agent::parse_server_urls(o->server_url);
      for (std::size_t i = 0; i < servers.size(); ++i) {
        client::ClientOptions c;
        c.server = "https://" + servers[i].host + ":" + servers[i].port;
        c.ca_file = o->ca_file;
        c.token = token;
        c.token_source = "--bootstrap-token-file: the server's DIR/secrets/bootstrap.token";
        try {
          answer = client::ApiClient(c).post(std::string(protocol::kEnrolPath), {{"node", *name}});
          break;
        } catch (const client::ClientError& e) {
          if (i + 1 == servers.size()) throw;
          std::cerr << "shepherd: " << e.what() << "; trying the next server\n";
        }
      }
      std::filesystem::create_directories(o->state_dir);
      std::filesystem::permissions(o->state_dir, std::filesystem::perms::owner_all);  // 0700
      write_private_file(agent::credential_path(o->state_dir),
                         answer.at("credential").get<std::string>() + "\n");
      std::cout << "enrolled " << *name << "; credential in "
                << agent::credential_path(o->state_dir) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "shepherd: " << e.what() << "\n";
      code = 1;
    }
  });

  cmd->callback([o, diag, reboot, stop_grace, backoff, enrol, &code] {
    if (enrol->parsed()) return;
    if (o->server_url.empty() || o->ca_file.empty()) {
      std::cerr << "shepherd: agent needs --server https://HOST:PORT and --ca FILE\n";
      code = 2;
      return;
    }
    if (!diag->empty()) o->diagnostic_command = words(*diag);
    if (!reboot->empty()) o->reboot_command = words(*reboot);
    auto ms = [](double s) {
      return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
    };
    o->stop_grace = ms(*stop_grace);
    o->backoff_base = ms(backoff->first);
    o->backoff_cap = ms(std::max(backoff->first, backoff->second));
    spdlog::set_level(spdlog::level::info);  // a daemon's log
    // The server's old names for the agent's settings: said once, not silently passed to tasks.
    for (const auto& [var, flag] : {std::pair{"SHEPHERD_DIAGNOSTIC_COMMAND", "--diag-command"},
                                    std::pair{"DCGM_HEALTH_CHECK_TASK", "--diag-command"},
                                    std::pair{"SHEPHERD_REBOOT_COMMAND", "--reboot-command"}})
      if (std::getenv(var))
        spdlog::warn("agent: {} is set but not read; the agent takes {}", var, flag);
    try {
      StopSignals signals;  // before the agent starts a thread; its spawns unblock them
      agent::Agent a(*o);
      const auto stopping = signals.on_stop([&a] { a.stop(); });  // gone before `a`
      a.run();
    } catch (const std::exception& e) {
      std::cerr << "shepherd: " << e.what() << "\n";
      code = 1;
    }
  });
}

}  // namespace shepherd::cli
