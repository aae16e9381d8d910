// `shepherd server init DIR` and `shepherd server --dir DIR`.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "common/process_tuning.hpp"
#include "common/stop_signals.hpp"
#include "config/config.hpp"
#include "server/layout.hpp"
#include "server/server.hpp"

namespace shepherd::cli {

void add_server_command(CLI::App& app, int& code) {
  auto* cmd = app.add_subcommand(
      "server", "Run the controller for real nodes: HTTPS API and agent gateway on one TLS port");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir, "The server's directory (made by `shepherd server init`)");
  auto flags = std::make_shared<server::ServerFlags>();
  cmd->add_option("--store", flags->store,
                  "The store instead of the config's: mariadb://USER@HOST[:PORT]/DATABASE (the "
                  "password in SHEPHERD_STORE_PASSWORD or store.password_file), or a SQLite file");
  cmd->add_option("--listen", flags->listen, "HOST:PORT to listen on, instead of the config's");
  cmd->add_option("--controller-name", flags->controller_name,
                  "This controller's name among those on one database (controller.name; "
                  "default HOST:PORT)");
  cmd->add_option("--url", flags->controller_url,
                  "The URL agents and clients reach this controller by (controller.url; default "
                  "https://HOST:PORT)");

  auto* init =
      cmd->add_subcommand("init", "Create a server directory: config, CA, certificate, tokens");
  auto init_dir = std::make_shared<std::string>();
  auto options = std::make_shared<server::InitOptions>();
  init->add_option("DIR", *init_dir, "Directory to create (must not hold a server yet)")
      ->required();
  init->add_option("--listen", options->listen, "HOST:PORT the server listens on");
  init->add_option("--name", options->names,
                   "A host name or IP address agents reach the server by (repeatable; default: "
                   "this host's name, localhost, 127.0.0.1)");
  init->callback([init_dir, options, &code] {
    try {
      server::init(*init_dir, *options);
      const server::Layout at{std::filesystem::absolute(*init_dir).lexically_normal().string()};
      std::cout << "created " << at.dir << "\n"
                << "  config:          " << at.config() << "\n"
                << "  CA certificate:  " << at.ca_cert() << "  (copy it to every agent)\n"
                << "  admin token:     " << at.admin_token() << "  (for the CLI: --token-file)\n"
                << "  bootstrap token: " << at.bootstrap_token()
                << "  (for `shepherd agent enrol`)\n"
                << "start it with: shepherd server --dir " << at.dir << "\n";
    } catch (const std::exception& e) {
      std::cerr << "shepherd: " << e.what() << "\n";
      code = 1;
    }
  });

  cmd->callback([cmd, init, dir, flags, &code] {
    if (init->parsed()) return;
    if (dir->empty()) {
      std::cerr
          << "shepherd: server needs --dir DIR (create one with `shepherd server init DIR`)\n";
      code = 2;
      return;
    }
    spdlog::set_level(spdlog::level::info);  // a daemon's log: connections, enrolments, refusals
    spdlog::info("server: open-files limit {}; freed memory returned promptly: {}",
                 raise_open_files_limit(), return_freed_memory_promptly() ? "yes" : "no");
    try {
      ::umask(0077);        // the database holds jobs' environments and credentials' hashes
      StopSignals signals;  // before the server starts a thread
      server::Server s(
          *dir, [](const std::string& line) { std::cout << line << std::endl; }, *flags);
      const auto stopping = signals.on_stop([&s] { s.stop(); });  // gone before `s`
      s.run();
    } catch (const server::LeadershipLost& e) {
      // Exits rather than go back to standby in-process: everything the leader held (sessions,
      // caches, threads) goes with the process; the service manager starts a fresh standby.
      std::cerr << "shepherd: " << e.what()
                << "; exiting (start it again: it joins as a standby)\n";
      code = 3;
    } catch (const ConfigError& e) {
      std::cerr << "shepherd: " << e.what() << "\n";
      code = 2;
    } catch (const std::exception& e) {
      std::cerr << "shepherd: " << e.what() << "\n";
      code = 1;
    }
    (void)cmd;
  });
}

}  // namespace shepherd::cli
