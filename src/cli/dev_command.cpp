// `shepherd dev`: the demo a newcomer runs first.
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "common/stop_signals.hpp"
#include "config/config.hpp"
#include "dev/dev_server.hpp"

namespace shepherd::cli {

void add_dev_command(CLI::App& app, int& code) {
  auto* dev = app.add_subcommand("dev", "Run the engine with simulated nodes and the HTTP API");
  auto opts = std::make_shared<DevOptions>();
  auto duration = std::make_shared<double>(0);
  auto config_file = std::make_shared<std::string>();
  dev->add_option("--config", *config_file,
                  "YAML config (policy, notify); env SHEPHERD_* overrides");
  dev->add_option("--nodes", opts->nodes, "Simulated nodes")->check(CLI::Range(1, 10000));
  dev->add_option("--speed", opts->speed, "Virtual seconds per wall-clock second")
      ->check(CLI::Range(0.1, 10000.0));
  dev->add_option("--port", opts->port, "HTTP port on 127.0.0.1 (0: any free)")
      ->check(CLI::Range(0, 65535));
  dev->add_option("--duration", *duration, "Stop after this many seconds (0: run until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  dev->add_flag("!--no-demo", opts->demo, "Do not submit the demo job and GPU fault");
  dev->callback([opts, duration, config_file, &code] {
    namespace fs = std::filesystem;
    char dir_template[] = "/tmp/shepherd-dev-XXXXXX";
    if (!mkdtemp(dir_template)) {
      std::cerr << "error: cannot create a temporary directory\n";
      code = 1;
      return;
    }
    opts->store_dir = dir_template;
    try {
      const Config config = load_config(*config_file, process_environment());
      opts->policy = config.policy;
      opts->webhook_url = config.webhook_url;
      opts->retention.events_max_age = config.events_max_age;
      opts->retention.events_max_rows = config.events_max_rows;
      opts->retention.timeline_max_age = config.timeline_max_age;
      opts->retention.timeline_max_rows = config.timeline_max_rows;
      StopSignals signals;  // before the server starts a thread
      DevServer server(*opts, [](const std::string& line) { std::cout << line << std::endl; });
      const auto stopping = signals.on_stop([&server] { server.stop(); });  // gone before it
      std::cout << "store: " << opts->store_dir << "/shepherd.db (SQLite)\n";
      server.run(*duration);
    } catch (const ConfigError& e) {
      std::cerr << "error: " << e.what() << "\n";
      code = 2;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      code = 1;
    }
    std::error_code ignored;
    fs::remove_all(opts->store_dir, ignored);
  });
}

}  // namespace shepherd::cli
