// libFuzzer target: the agent protocol's decoders, both ways (the server reads what agents send,
// an agent what the server sends). A finding is an exception other than ProtocolError, or an
// accepted frame that the decoder changed: what it encodes again must decode, encode the same,
// and hold every field of the input as it was (a number out of range is refused, not wrapped).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/agent_protocol.hpp"

namespace {

using nlohmann::json;
using shepherd::protocol::ProtocolError;

template <class Decode>
void check(std::string_view text, Decode decode) {
  std::string once;
  try {
    once = shepherd::protocol::encode(decode(text));
  } catch (const ProtocolError& e) {
    (void)e.field();  // refused: what the protocol allows
    return;
  }
  // Outside the try: a ProtocolError on our own encoding is a finding.
  if (shepherd::protocol::encode(decode(once)) != once) __builtin_trap();
  // Compared as text: nlohmann's == would find 18446744073709551615 equal to -1.
  const json in = json::parse(text);
  const json out = json::parse(once);
  for (const auto& [key, value] : out.items()) {
    const auto it = in.find(key);
    if (it != in.end() && !it->is_null() && it->dump() != value.dump()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(text, [](std::string_view t) { return shepherd::protocol::decode_agent_message(t); });
  check(text, [](std::string_view t) { return shepherd::protocol::decode_server_message(t); });
  return 0;
}
