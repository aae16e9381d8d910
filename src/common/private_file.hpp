#pragma once
#include <string>

namespace shepherd {

// Writes `content` to `path` readable by its owner only (0600), atomically (a temporary file,
// fsync, rename): a crash leaves the old file or the new one, never half of it. Throws
// std::runtime_error naming the path.
void write_private_file(const std::string& path, const std::string& content);

// Reads a secret (a token, a credential) trimmed of surrounding white space. Refuses a file that
// group or others may read, or an empty one: the error names the file, never its content.
std::string read_secret_file(const std::string& path);

}  // namespace shepherd
