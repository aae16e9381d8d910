#pragma once
// Process-wide settings a long-running daemon makes at start (`shepherd server`).
#include <string>

namespace shepherd {

// Raises the soft limit on open files to the hard limit: every agent holds one connection, and
// the default soft limit (1024) would refuse the 1,025th. Returns the limit now in force, or a
// message why it could not be read.
std::string raise_open_files_limit();

// Asks tcmalloc, when the program runs on it, to give freed pages back to the system at once:
// after a fleet of TLS connections drops and reconnects, the freed buffers would otherwise stay in
// the process's RSS. Returns whether tcmalloc took the setting (false under another allocator).
bool return_freed_memory_promptly();

}  // namespace shepherd
