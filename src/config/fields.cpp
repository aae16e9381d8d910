#include "config/fields.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>

namespace shepherd::config_detail {
namespace {

const std::array<Field, 24> kFields{{
    {"cluster_name", Type::String, &Config::cluster_name},
    {"store.path", Type::String, &Config::store_path, nullptr, nullptr, 0, 0, true},
    {"store.url", Type::String, &Config::store_url, nullptr, nullptr, 0, 0, true},
    {"store.password_file", Type::String, &Config::store_password_file, nullptr, nullptr, 0, 0,
     true},
    // Checked when the store opens (letters, digits, '_'), with a message naming the setting.
    {"store.tables.jobs", Type::String, &Config::store_table_jobs},
    {"store.tables.tasks", Type::String, &Config::store_table_tasks},
    {"store.tables.nodes", Type::String, &Config::store_table_nodes},
    {"listen", Type::String, &Config::listen},
    // Several controllers on one MariaDB store: each one's name and URL ("": from the host's name
    // and the listen port), and the leader lease's ttl.
    {"controller.name", Type::String, &Config::controller_name, nullptr, nullptr, 0, 0, true},
    {"controller.url", Type::String, &Config::controller_url, nullptr, nullptr, 0, 0, true},
    {.path = "controller.lease_ttl",
     .type = Type::Seconds,
     .config_seconds = &Config::controller_lease_ttl},
    // Policy values are range-checked by the domain's one rule (policy_problem), not here.
    {"policy.max_retries", Type::Int, nullptr, &Policy::max_retries, nullptr, INT_MIN, INT_MAX},
    {"policy.diag_level", Type::Int, nullptr, &Policy::diag_level, nullptr, INT_MIN, INT_MAX},
    {"policy.diag_timeout", Type::Seconds, nullptr, nullptr, &Policy::diag_timeout},
    {"policy.reboot_timeout", Type::Seconds, nullptr, nullptr, &Policy::reboot_timeout},
    {"policy.heartbeat_timeout", Type::Seconds, nullptr, nullptr, &Policy::heartbeat_timeout},
    {"policy.start_timeout", Type::Seconds, nullptr, nullptr, &Policy::start_timeout},
    {"policy.app_exit_codes", Type::IntList},
    {"policy.other_exit_codes", Type::OtherExitCodes},
    {.path = "store.retention.events_max_age",
     .type = Type::Seconds,
     .config_seconds = &Config::events_max_age},
    {.path = "store.retention.events_max_rows",
     .type = Type::Int,
     .min = 1000,
     .max = INT_MAX,
     .config_integer = &Config::events_max_rows},
    {.path = "store.retention.timeline_max_age",
     .type = Type::Seconds,
     .config_seconds = &Config::timeline_max_age},
    {.path = "store.retention.timeline_max_rows",
     .type = Type::Int,
     .min = 1000,
     .max = INT_MAX,
     .config_integer = &Config::timeline_max_rows},
}};

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// The listen address is host:port; the host may be empty (all interfaces) or [IPv6].
bool valid_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  const auto port = parse_number<int>(std::string_view(s).substr(colon + 1));
  return port && *port >= 1 && *port <= 65535;
}

}  // namespace

std::span<const Field> fields() {
  return kFields;
}

const Field* find_field(std::string_view path) {
  for (const auto& f : kFields)
    if (f.path == path) return &f;
  return nullptr;
}

const char* agent_setting(std::string_view path) {
  // The agent runs these as root on its own node, so each node names its own (src/agent/agent.hpp).
  if (path == "diagnostic" || path == "diagnostic.command")
    return "the health check is set on each node now: `shepherd agent --diag-command "
           "\"dcgmi diag -r {level} -j\"` (the default); the server no longer reads it";
  if (path == "reboot" || path == "reboot.command")
    return "the reboot command is set on each node now: `shepherd agent --reboot-command "
           "\"systemctl reboot\"` (the default); the server no longer reads it";
  return nullptr;
}

bool is_refused_secret_key(std::string_view path) {
  return path == "notify.webhook_url" || path == "webhook_url";
}

std::string env_name(std::string_view path) {
  std::string name = "SHEPHERD_";
  for (char c : path)
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

void set_scalar(Config& c, const Field& f, const std::string& text, const Fail& fail) {
  set_scalar_unchecked(c, f, text, fail);
  check_policy_value(c, f, fail);
}

void check_policy_value(const Config& c, const Field& f, const Fail& fail) {
  constexpr std::string_view kPolicy = "policy.";
  if (f.path.substr(0, kPolicy.size()) != kPolicy) return;
  if (auto why = policy_problem(f.path.substr(kPolicy.size()), c.policy)) throw fail(*why);
}

void set_scalar_unchecked(Config& c, const Field& f, const std::string& text, const Fail& fail) {
  switch (f.type) {
    case Type::String:
      if (text.empty() && !f.allow_empty) throw fail("must not be empty");
      if (f.path == "listen" && !valid_listen(text))
        throw fail("expected host:port with a port in 1..65535, got '" + text + "'");
      c.*f.text = text;
      return;
    case Type::Int: {
      const auto v = parse_number<int>(text);
      if (!v) throw fail("expected an integer, got '" + text + "'");
      if (f.config_integer && (*v < f.min || *v > f.max)) {
        throw fail(f.max == INT_MAX ? "must be at least " + std::to_string(f.min) + ", got " + text
                                    : "must be in " + std::to_string(f.min) + ".." +
                                          std::to_string(f.max) + ", got " + text);
      }
      if (f.config_integer)
        c.*f.config_integer = *v;
      else
        c.policy.*f.integer = *v;
      return;
    }
    case Type::Seconds: {
      const auto v = parse_number<double>(text);
      if (!v || !std::isfinite(*v)) throw fail("expected a number of seconds, got '" + text + "'");
      if (!(*v > 0) && f.config_seconds) throw fail("must be > 0, got " + text);
      if (*v > kMaxSeconds)
        throw fail("must be at most " + std::to_string(static_cast<long long>(kMaxSeconds)) +
                   " seconds, got " + text);
      if (f.config_seconds)
        c.*f.config_seconds = *v;
      else
        c.policy.*f.seconds = *v;
      return;
    }
    case Type::OtherExitCodes: {
      const auto v = parse_other_exit_codes(text);
      if (!v) throw fail("expected diagnose or ignore, got '" + text + "'");
      c.policy.other_exit_codes = *v;
      return;
    }
    case Type::IntList:  // read element by element by the callers
      throw fail("expected a list of exit codes");
  }
}

int parse_exit_code(const std::string& text, const Fail& fail) {
  const auto v = parse_number<int>(text);
  if (!v) throw fail("expected an integer exit code, got '" + text + "'");
  return *v;
}

}  // namespace shepherd::config_detail
