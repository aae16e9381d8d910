#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/private_file.hpp"
#include "config/fields.hpp"

extern char** environ;  // POSIX: the process environment

namespace shepherd {
namespace {

using namespace config_detail;
using Env = std::map<std::string, std::string>;

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

// A variable counts as set when it is present and not blank.
std::optional<std::string> lookup(const Env& env, const std::string& name) {
  const auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  std::string value = trim(it->second);
  if (value.empty()) return std::nullopt;
  return value;
}

void apply_env_var(Config& c, const Field& f, const std::string& var, const std::string& value) {
  const Fail fail = [&](const std::string& reason) {
    return ConfigError(var + " (" + std::string(f.path) + "): " + reason);
  };
  if (f.type != Type::IntList) return set_scalar(c, f, value, fail);
  std::vector<int> codes;  // comma-separated
  std::string_view rest = value;
  while (true) {
    const auto comma = rest.find(',');
    codes.push_back(parse_exit_code(trim(rest.substr(0, comma)), fail));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  c.policy.app_exit_codes = std::move(codes);
  check_policy_value(c, f, fail);
}

void apply_env(Config& c, const Env& env) {
  // The seeds' names first, so that SHEPHERD_* (applied after) wins when both are set.
  if (auto value = lookup(env, "ECS_CLUSTER_NAME"))
    apply_env_var(c, *find_field("cluster_name"), "ECS_CLUSTER_NAME", *value);
  for (auto [var, path] : {std::pair{"JOB_TABLE_NAME", "store.tables.jobs"},
                           std::pair{"TASK_TABLE_NAME", "store.tables.tasks"},
                           std::pair{"NODE_TABLE_NAME", "store.tables.nodes"}})
    if (auto value = lookup(env, var)) apply_env_var(c, *find_field(path), var, *value);
  for (const char* var :
       {"SHEPHERD_DIAGNOSTIC_COMMAND", "SHEPHERD_REBOOT_COMMAND", "DCGM_HEALTH_CHECK_TASK"})
    if (lookup(env, var))
      throw ConfigError(std::string(var) + ": " +
                        agent_setting(std::string_view(var).starts_with("SHEPHERD_REBOOT")
                                          ? "reboot.command"
                                          : "diagnostic.command"));
  for (const auto& f : fields()) {
    const std::string var = env_name(f.path);
    if (auto value = lookup(env, var)) apply_env_var(c, f, var, *value);
  }
}

// Reads the webhook URL from a file only its owner can access: a URL readable by other users
// would hand them the token.
std::string read_secret_file(const std::string& path, const std::string& where) {
  try {
    return shepherd::read_secret_file(path);
  } catch (const std::runtime_error& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

// The environment beats the YAML file, as for every other key. The URL and a URL file in the
// environment at once are ambiguous, so that is an error rather than a silent choice.
void resolve_webhook(Config& c, const Env& env, const std::optional<SecretFileRef>& from_yaml) {
  const auto url = lookup(env, "SHEPHERD_WEBHOOK_URL");
  std::optional<SecretFileRef> file;
  for (const char* var : {"SHEPHERD_NOTIFY_WEBHOOK_URL_FILE", "SHEPHERD_WEBHOOK_URL_FILE"})
    if (auto path = lookup(env, var)) file = SecretFileRef{*path, var};
  if (url && file)
    throw ConfigError("SHEPHERD_WEBHOOK_URL and " + file->where +
                      " are both set; set only one of them");
  if (url) {
    c.webhook_url = *url;
  } else if (file || from_yaml) {
    const SecretFileRef& ref = file ? *file : *from_yaml;
    c.webhook_url = read_secret_file(ref.path, ref.where);
  }
}

// A URL with user:password@ (refused when the store opens) shown without the password.
std::string redacted_url(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":(password)" + url.substr(at);
}

// The store's password: SHEPHERD_STORE_PASSWORD, or the private file SHEPHERD_STORE_PASSWORD_FILE
// or store.password_file names (already in c.store_password_file, the environment applied).
void resolve_store(Config& c, const Env& env) {
  if (!c.store_url.empty() && !c.store_path.empty())
    throw ConfigError(
        "store.url and store.path are both set: store.path is the SQLite file, "
        "store.url the shared database; set only one");
  const auto password = lookup(env, "SHEPHERD_STORE_PASSWORD");
  if (password && !c.store_password_file.empty())
    throw ConfigError("SHEPHERD_STORE_PASSWORD and a password file (" + c.store_password_file +
                      ") are both set; set only one of them");
  if (password) {
    c.store_password = *password;
  } else if (!c.store_password_file.empty()) {
    // Only the line's end is cut: spaces may belong to a password.
    std::string text = read_secret_file(c.store_password_file, "store.password_file");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    c.store_password = text;
  }
}

}  // namespace

Config load_config(const std::string& yaml_path_or_empty, const Env& env) {
  Config c;
  std::optional<SecretFileRef> webhook_file;
  if (!yaml_path_or_empty.empty()) webhook_file = apply_yaml(c, yaml_path_or_empty);
  apply_env(c, env);
  resolve_webhook(c, env, webhook_file);
  resolve_store(c, env);
  return c;
}

std::map<std::string, std::string> process_environment() {
  Env env;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string_view kv(*entry);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

nlohmann::json redacted_json(const Config& c) {
  const Policy& p = c.policy;
  return nlohmann::json{
      {"cluster_name", c.cluster_name},
      {"store",
       {{"path", c.store_path},
        {"url", redacted_url(c.store_url)},
        {"password", c.store_password.empty() ? "(not set)" : "(set)"},
        {"tables",
         {{"jobs", c.store_table_jobs},
          {"tasks", c.store_table_tasks},
          {"nodes", c.store_table_nodes}}},
        {"retention",
         {{"events_max_age", c.events_max_age},
          {"events_max_rows", c.events_max_rows},
          {"timeline_max_age", c.timeline_max_age},
          {"timeline_max_rows", c.timeline_max_rows}}}}},
      {"listen", c.listen},
      {"controller",
       {{"name", c.controller_name},
        {"url", c.controller_url},
        {"lease_ttl", c.controller_lease_ttl}}},
      {"policy",
       {{"max_retries", p.max_retries},
        {"diag_level", p.diag_level},
        {"diag_timeout", p.diag_timeout},
        {"reboot_timeout", p.reboot_timeout},
        {"heartbeat_timeout", p.heartbeat_timeout},
        {"start_timeout", p.start_timeout},
        {"app_exit_codes", p.app_exit_codes},
        {"other_exit_codes", to_string(p.other_exit_codes)}}},
      {"notify", {{"webhook_url", c.webhook_url.empty() ? "(not set)" : "(set)"}}},
  };
}

}  // namespace shepherd
