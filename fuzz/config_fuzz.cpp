// libFuzzer target: the config reader (YAML file and SHEPHERD_* environment). Any input is a
// Config or a ConfigError with a message.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The reader takes a file: one per process, rewritten for each input.
  static const std::string path = "/tmp/shepherd-config-fuzz-" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)shepherd::load_config(path, {});
  } catch (const shepherd::ConfigError& e) {
    if (std::string(e.what()).empty()) __builtin_trap();
  }
  // The same bytes as an environment value of each kind of setting.
  const std::string value(reinterpret_cast<const char*>(data), size);
  if (value.find('\0') == std::string::npos) {
    for (const char* name : {"SHEPHERD_POLICY_MAX_RETRIES", "SHEPHERD_POLICY_DIAG_TIMEOUT",
                             "SHEPHERD_POLICY_APP_EXIT_CODES", "SHEPHERD_LISTEN"}) {
      try {
        (void)shepherd::load_config("", {{name, value}});
      } catch (const shepherd::ConfigError&) {
      }
    }
  }
  return 0;
}
