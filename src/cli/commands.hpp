#pragma once
#include <CLI/CLI.hpp>

namespace shepherd::cli {
// Each adds its subcommand; the callback stores the exit code in `code`.
void add_sim_commands(CLI::App& app, int& code);
void add_dev_command(CLI::App& app, int& code);
void add_server_command(CLI::App& app, int& code);
void add_agent_command(CLI::App& app, int& code);
}  // namespace shepherd::cli
