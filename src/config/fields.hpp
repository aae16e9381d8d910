#pragma once
// Internal to the config layer: the table of settings shared by the YAML and environment readers.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace shepherd::config_detail {

enum class Type { String, Int, Seconds, IntList, OtherExitCodes };

struct Field {
  std::string_view path;  // YAML key path, e.g. "policy.diag_timeout"
  Type type;
  std::string Config::*text = nullptr;       // String
  int Policy::*integer = nullptr;            // Int
  double Policy::*seconds = nullptr;         // Seconds
  int min = 0, max = 0;                      // Int bounds
  bool allow_empty = false;                  // String
  int Config::*config_integer = nullptr;     // Int of the Config itself (not its policy)
  double Config::*config_seconds = nullptr;  // Seconds likewise
};

std::span<const Field> fields();
const Field* find_field(std::string_view path);
// For a key the server once read and each agent now owns (diagnostic.command, reboot.command, or
// their sections): the message that says where it went; nullptr for any other key.
const char* agent_setting(std::string_view path);

// The key holding the path of the webhook URL file, and keys refused because they would put the
// URL itself in the YAML file.
inline constexpr std::string_view kWebhookFileKey = "notify.webhook_url_file";
bool is_refused_secret_key(std::string_view path);

// "SHEPHERD_" + path with dots as underscores, upper case.
std::string env_name(std::string_view path);

// Parse `text` into the field; on failure throw fail(reason), which adds where the value came from.
using Fail = std::function<ConfigError(const std::string& reason)>;
void set_scalar(Config& c, const Field& f, const std::string& text, const Fail& fail);
void set_scalar_unchecked(Config& c, const Field& f, const std::string& text, const Fail& fail);
// A policy value just set must satisfy the domain's rule (policy_problem); throws fail(reason).
void check_policy_value(const Config& c, const Field& f, const Fail& fail);
int parse_exit_code(const std::string& text, const Fail& fail);

// The YAML reader: applies the file to `c`; returns the webhook URL file named in it, if any, with
// the "file:line: key" prefix to use in errors about it.
struct SecretFileRef {
  std::string path;
  std::string where;
};
std::optional<SecretFileRef> apply_yaml(Config& c, const std::string& yaml_path);

}  // namespace shepherd::config_detail
