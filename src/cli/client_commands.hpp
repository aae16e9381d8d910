#pragma once
#include <CLI/CLI.hpp>

namespace shepherd::cli {
// `shepherd job|node|task|timeline ...`: the HTTP API of a running server (or `shepherd dev`) from
// a terminal. The callback stores the exit code in `code` (0 ok, 1 the request failed).
void add_client_commands(CLI::App& app, int& code);
}  // namespace shepherd::cli
