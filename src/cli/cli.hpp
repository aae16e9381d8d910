#pragma once

namespace shepherd::cli {
// `shepherd <command> ...`: returns the process exit code (0 ok, 1 failure, 2 bad input).
int run(int argc, char** argv);
}  // namespace shepherd::cli
