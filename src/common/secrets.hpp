#pragma once
#include <string>
#include <string_view>

namespace shepherd {

// Hex SHA-256 (OpenSSL).
std::string sha256_hex(std::string_view text);
// A random secret of `bytes` bytes from OpenSSL's RAND_bytes, in hex (tokens, node credentials).
std::string random_secret_hex(std::size_t bytes = 32);

}  // namespace shepherd
