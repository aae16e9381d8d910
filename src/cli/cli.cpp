#include "cli/cli.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int exit = app.exit(e);
    return exit == 0 ? 0 : 2;
  }
  return code;
}

}  // namespace shepherd::cli
