#pragma once
#include <spawn.h>
// Runs a command with a deadline and captured output (the diagnostic, the reboot command), and the
// DCGM diagnostic on top of it. Never through a shell: argv words are passed as they are.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "health/dcgm_diag.hpp"

namespace shepherd::agent {

struct CommandOutcome {
  int exit_code = 0;  // the exit status; 128 + signal when a signal ended it (as a shell says)
  int signal = 0;     // the signal that ended it, 0 when it exited
  bool timed_out = false;
  bool not_found = false;  // argv[0] is not on PATH (or argv is empty): it never ran
  std::string out, err;    // each cut at its limit; err also says why it could not be run
  bool out_truncated = false;
};

// Attributes for a child in a process group of its own (so a stop or timeout reaches everything it
// starts), with an empty signal mask and default handlers (the agent's are not inherited).
void init_own_group_spawn(posix_spawnattr_t* attr);

inline constexpr std::size_t kMaxCommandOutput = 8 << 20;
inline constexpr std::size_t kMaxCommandError = 2048;

// Spawns argv (PATH lookup) in a process group of its own, stdin /dev/null, stdout and stderr
// through pipes, and waits until it exits. At `timeout` the group gets SIGTERM, and SIGKILL two
// seconds later; the outcome then says timed_out. Output past the limits is read and dropped, so
// the command never blocks on a full pipe. Once it has exited, a process it left behind that
// holds the pipes open is waited for at most one more second. Never throws for the command's
// sake (std::system_error when the agent runs out of pipes or threads).
CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           std::size_t max_output = kMaxCommandOutput,
                           std::size_t max_error = kMaxCommandError);

inline const std::vector<std::string> kDefaultDiagCommand = {"dcgmi", "diag", "-r", "{level}",
                                                             "-j"};

// Each word of `command_template` with every "{level}" in it replaced by `level`.
std::vector<std::string> diag_argv(const std::vector<std::string>& command_template, int level);

// Runs the diagnostic and reads its verdict: diag_command_missing when the command is not
// installed, diag_timed_out after `timeout_seconds`, otherwise parse_dcgm_diag(stdout, exit
// status); an inconclusive report's detail ends with the first line of what it wrote to stderr.
health::DiagReport run_diagnostic(const std::vector<std::string>& command_template, int level,
                                  double timeout_seconds);

}  // namespace shepherd::agent
