#include "cli/cli.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/client_commands.hpp"
#include "cli/commands.hpp"

namespace shepherd::cli {

int run(int argc, char** argv) {
  // Logs go to stderr: stdout carries the command's output (`sim run --json` must stay pure JSON).
  spdlog::set_default_logger(spdlog::stderr_color_mt("shepherd"));
  spdlog::set_level(spdlog::level::warn);
  CLI::App app{"Shepherd: recovery and delivery for GPU training clusters"};
  app.require_subcommand(1);
  int code = 0;
  add_sim_commands(app, code);
  add_dev_command(app, code);
  add_server_command(app, code);
  add_agent_command(app, code);
  add_client_commands(app, code);
  // CLI11 answers `--help` before it checks the words before it, so `shepherd nosuch --help` would
  // print the top-level help and exit 0: an unknown command is refused first.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      found = found || sub->get_name() == word;
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    if (!found) {
      std::cerr << "shepherd: unknown command '" << word << "' (commands: " << known
                << "; see shepherd --help)\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int exit = app.exit(e);
    return exit == 0 ? 0 : 2;
  }
  return code;
}

}  // namespace shepherd::cli
