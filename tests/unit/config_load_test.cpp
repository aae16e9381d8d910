#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.hpp"

namespace shepherd {
namespace {

namespace fs = std::filesystem;
using Env = std::map<std::string, std::string>;
constexpr const char* kSecretUrl = "http://127.0.0.1:9/hooks/s3cr3t-token";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shepherd-config-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  // The ConfigError message of loading `yaml` (written as shepherd.yaml) with `env`.
  std::string error_of(const std::string& yaml, const Env& env = {}) {
    const std::string path = yaml.empty() ? "" : write("shepherd.yaml", yaml);
    try {
      load_config(path, env);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << yaml;
    return {};
  }

  std::string yaml_path() const { return (dir_ / "shepherd.yaml").string(); }

  fs::path dir_;
};

TEST_F(ConfigTest, DefaultsEqualPolicyDefaults) {
  const Config c = load_config("", {});
  const Policy p;
  EXPECT_EQ(c.policy.max_retries, p.max_retries);
  EXPECT_EQ(c.policy.diag_level, p.diag_level);
  EXPECT_EQ(c.policy.diag_timeout, p.diag_timeout);
  EXPECT_EQ(c.policy.reboot_timeout, p.reboot_timeout);
  EXPECT_EQ(c.policy.heartbeat_timeout, p.heartbeat_timeout);
  EXPECT_EQ(c.policy.app_exit_codes, p.app_exit_codes);
  EXPECT_EQ(c.cluster_name, "shepherd");
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.store_path, "");
  EXPECT_EQ(c.webhook_url, "");
  // An empty file is all defaults too.
  EXPECT_EQ(load_config(write("empty.yaml", ""), {}).policy.diag_timeout, p.diag_timeout);
}

TEST_F(ConfigTest, YamlValues) {
  const Config c = load_config(write("shepherd.yaml", R"(cluster_name: gpu-a
store:
  path: /var/lib/shepherd/db.sqlite
listen: 0.0.0.0:9090
policy:
  max_retries: 3
  diag_level: 2
  diag_timeout: 600
  reboot_timeout: 1500.5
  heartbeat_timeout: 30
  start_timeout: 120
  app_exit_codes: [1, 2, 137]
)"),
                               {});
  EXPECT_EQ(c.cluster_name, "gpu-a");
  EXPECT_EQ(c.store_path, "/var/lib/shepherd/db.sqlite");
  EXPECT_EQ(c.listen, "0.0.0.0:9090");
  EXPECT_EQ(c.policy.max_retries, 3);
  EXPECT_EQ(c.policy.diag_level, 2);
  EXPECT_EQ(c.policy.diag_timeout, 600);
  EXPECT_EQ(c.policy.reboot_timeout, 1500.5);
  EXPECT_EQ(c.policy.heartbeat_timeout, 30);
  EXPECT_EQ(c.policy.start_timeout, 120);
  EXPECT_EQ(c.policy.app_exit_codes, (std::vector<int>{1, 2, 137}));
}

// Several controllers: each one's name and URL, and the lease's ttl; each its own variable.
TEST_F(ConfigTest, ControllerSettings) {
  const Config defaults = load_config("", {});
  EXPECT_EQ(defaults.controller_name, "");
  EXPECT_EQ(defaults.controller_url, "");
  EXPECT_EQ(defaults.controller_lease_ttl, 10);
  const Config c =
      load_config(write("shepherd.yaml",
                        "controller:\n  name: ctl1\n  url: https://ctl1:8443\n  lease_ttl: 4\n"),
                  {{"SHEPHERD_CONTROLLER_URL", "https://ctl1.example.org:8443"}});
  EXPECT_EQ(c.controller_name, "ctl1");
  EXPECT_EQ(c.controller_url, "https://ctl1.example.org:8443");
  EXPECT_EQ(c.controller_lease_ttl, 4);
  EXPECT_THROW(load_config(write("bad.yaml", "controller:\n  lease_ttl: 0\n"), {}), ConfigError);
  EXPECT_EQ(redacted_json(c)["controller"]["lease_ttl"], 4);
}

TEST_F(ConfigTest, EnvironmentOverridesYaml) {
  const std::string path = write("shepherd.yaml", "cluster_name: a\npolicy:\n  max_retries: 3\n");
  const Config c = load_config(path, {{"SHEPHERD_CLUSTER_NAME", "b"},
                                      {"SHEPHERD_POLICY_MAX_RETRIES", "5"},
                                      {"SHEPHERD_POLICY_DIAG_TIMEOUT", " 120 "},
                                      {"SHEPHERD_POLICY_APP_EXIT_CODES", "1, 42"},
                                      {"SHEPHERD_STORE_PATH", "/tmp/x.db"},
                                      {"SHEPHERD_LISTEN", "127.0.0.1:1"},
                                      {"SHEPHERD_POLICY_DIAG_LEVEL", ""}});  // blank: unset
  EXPECT_EQ(c.cluster_name, "b");
  EXPECT_EQ(c.policy.max_retries, 5);
  EXPECT_EQ(c.policy.diag_timeout, 120);
  EXPECT_EQ(c.policy.app_exit_codes, (std::vector<int>{1, 42}));
  EXPECT_EQ(c.store_path, "/tmp/x.db");
  EXPECT_EQ(c.listen, "127.0.0.1:1");
  EXPECT_EQ(c.policy.diag_level, 1);
}

TEST_F(ConfigTest, SeedNamesWorkAndShepherdNamesWin) {
  const Env seeds{{"ECS_CLUSTER_NAME", "ecs-cluster"}};
  Config c = load_config(write("s.yaml", "cluster_name: from-yaml\n"), seeds);
  EXPECT_EQ(c.cluster_name, "ecs-cluster");
  Env both = seeds;
  both["SHEPHERD_CLUSTER_NAME"] = "new";
  c = load_config("", both);
  EXPECT_EQ(c.cluster_name, "new");
}

// The health check and the reboot command run as root on each node, so each agent names its own;
// a server told to set them says where they went instead of ignoring them.
TEST_F(ConfigTest, AgentSettingsGivenToTheServerAreErrorsThatSayWhereTheyWent) {
  for (const char* yaml :
       {"diagnostic:\n  command: dcgmi diag -r 1 -j\n", "reboot:\n  command: /sbin/reboot\n"}) {
    try {
      load_config(write("agent.yaml", yaml), {});
      ADD_FAILURE() << "accepted " << yaml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("shepherd agent --"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("agent.yaml:1"), std::string::npos) << e.what();
    }
  }
  for (const char* var :
       {"SHEPHERD_DIAGNOSTIC_COMMAND", "SHEPHERD_REBOOT_COMMAND", "DCGM_HEALTH_CHECK_TASK"}) {
    try {
      load_config("", {{var, "x"}});
      ADD_FAILURE() << "accepted " << var;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("shepherd agent --"), std::string::npos) << e.what();
    }
  }
}

TEST_F(ConfigTest, YamlErrorsNameFileLineAndKey) {
  const std::string f = yaml_path();
  EXPECT_EQ(error_of("cluster_name: a\n\npolicy:\n  diag_timeout: abc\n"),
            f + ":4: policy.diag_timeout: expected a number of seconds, got 'abc'");
  EXPECT_EQ(error_of("policy:\n  reboot_timeout: -5\n"),
            f + ":2: policy.reboot_timeout: must be > 0, got -5");
  // The same rule as a scenario's: a zero timeout would make every wait end at once.
  EXPECT_EQ(error_of("policy:\n  diag_timeout: 0\n"),
            f + ":2: policy.diag_timeout: must be > 0, got 0");
  EXPECT_EQ(error_of("policy:\n  app_exit_codes: [2, 300]\n"),
            f + ":2: policy.app_exit_codes: exit codes are 0..255, got 300");
  EXPECT_EQ(error_of("policy:\n  max_retries: -1\n"),
            f + ":2: policy.max_retries: must be at least 0, got -1");
  EXPECT_EQ(error_of("policy:\n  max_retries: 1.5\n"),
            f + ":2: policy.max_retries: expected an integer, got '1.5'");
  EXPECT_EQ(error_of("policy:\n  diag_level: 5\n"),
            f + ":2: policy.diag_level: must be in 1..4, got 5");
  EXPECT_EQ(error_of("policy:\n  app_exit_codes: [1,\n    x]\n"),
            f + ":3: policy.app_exit_codes[1]: expected an integer exit code, got 'x'");
  EXPECT_EQ(error_of("policy:\n  app_exit_codes: 1\n"),
            f + ":2: policy.app_exit_codes: expected a list of exit codes");
  EXPECT_EQ(error_of("cluster_name: [a, b]\n"),
            f + ":1: cluster_name: expected a string, got a list");
  EXPECT_EQ(error_of("listen: localhost\n"),
            f + ":1: listen: expected host:port with a port in 1..65535, got 'localhost'");
  EXPECT_EQ(error_of("policy: 3\n"), f + ":1: policy: expected a mapping, got '3'");
  EXPECT_EQ(error_of("policy:\n  diag_timeout:\nlisten: a:1\n"),  // points at the key's line
            f + ":2: policy.diag_timeout: expected a number of seconds, got nothing");
  EXPECT_EQ(error_of("cluster_name: a\ncluster_name: b\n"),
            f + ":2: cluster_name: duplicate key (first on line 1)");
  // Unknown keys, top level and nested, with what is known there.
  EXPECT_NE(error_of("cluster_name: a\npolcy: {}\n").find(f + ":2: polcy: unknown key (known: "),
            std::string::npos);
  EXPECT_EQ(error_of("policy:\n  max_retries: 1\n  max_retry: 2\n"),
            f + ":3: policy.max_retry: unknown key (known under policy: app_exit_codes, "
                "diag_level, diag_timeout, heartbeat_timeout, max_retries, other_exit_codes, "
                "reboot_timeout, "
                "start_timeout)");
  // Syntax errors carry their line too.
  EXPECT_EQ(error_of("policy:\n  max_retries: [1\n").rfind(f + ":", 0), 0u);
  // A second document is not ignored.
  EXPECT_NE(error_of("cluster_name: a\n---\ncluster_name: b\n").find("holds one YAML document"),
            std::string::npos);
  EXPECT_EQ(error_of("store:\n  retention:\n    events_max_rows: 10\n"),
            f + ":3: store.retention.events_max_rows: must be at least 1000, got 10");
}

TEST_F(ConfigTest, MissingFile) {
  EXPECT_THROW(load_config((dir_ / "nope.yaml").string(), {}), ConfigError);
  EXPECT_THROW(load_config(dir_.string(), {}), ConfigError);  // a directory is no file
}

// yaml-cpp 0.7 may loop forever on a NUL byte (fuzz/README.md): refused before parsing.
TEST_F(ConfigTest, RawNulByteIsRefused) {
  EXPECT_NE(
      error_of(std::string("cluster_name: a\n\0\0x: 1\n", 22)).find(":2: the file contains a NUL"),
      std::string::npos);
}

TEST_F(ConfigTest, EnvironmentErrorsNameTheVariable) {
  EXPECT_EQ(error_of("", {{"SHEPHERD_POLICY_DIAG_TIMEOUT", "abc"}}),
            "SHEPHERD_POLICY_DIAG_TIMEOUT (policy.diag_timeout): expected a number of seconds, "
            "got 'abc'");
  EXPECT_EQ(error_of("", {{"SHEPHERD_POLICY_DIAG_LEVEL", "0"}}),
            "SHEPHERD_POLICY_DIAG_LEVEL (policy.diag_level): must be in 1..4, got 0");
  EXPECT_EQ(error_of("", {{"SHEPHERD_POLICY_APP_EXIT_CODES", "1,,2"}}),
            "SHEPHERD_POLICY_APP_EXIT_CODES (policy.app_exit_codes): expected an integer exit "
            "code, got ''");
}

TEST_F(ConfigTest, WebhookUrlInYamlIsRefused) {
  const std::string message = error_of(std::string("notify:\n  webhook_url: ") + kSecretUrl + "\n");
  EXPECT_EQ(message.rfind(yaml_path() + ":2: notify.webhook_url: ", 0), 0u) << message;
  EXPECT_NE(message.find("SHEPHERD_WEBHOOK_URL"), std::string::npos);
  EXPECT_EQ(message.find("s3cr3t"), std::string::npos);
}

TEST_F(ConfigTest, WebhookUrlFromEnvOrPrivateFile) {
  EXPECT_EQ(load_config("", {{"SHEPHERD_WEBHOOK_URL", kSecretUrl}}).webhook_url, kSecretUrl);

  const std::string secret = write("url", std::string(kSecretUrl) + "\n", 0600);
  EXPECT_EQ(load_config("", {{"SHEPHERD_WEBHOOK_URL_FILE", secret}}).webhook_url, kSecretUrl);
  const std::string yaml = write("y.yaml", "notify:\n  webhook_url_file: " + secret + "\n");
  EXPECT_EQ(load_config(yaml, {}).webhook_url, kSecretUrl);

  // Readable by group or others: refused, naming the variable or the YAML line, not the URL.
  const std::string open_file = write("open-url", kSecretUrl, 0640);
  std::string message = error_of("", {{"SHEPHERD_WEBHOOK_URL_FILE", open_file}});
  EXPECT_EQ(message.rfind("SHEPHERD_WEBHOOK_URL_FILE: ", 0), 0u) << message;
  EXPECT_NE(message.find("mode 0640"), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
  message = error_of("notify:\n  webhook_url_file: " + open_file + "\n");
  EXPECT_EQ(message.rfind(yaml_path() + ":2: notify.webhook_url_file: ", 0), 0u) << message;
  EXPECT_NE(
      error_of("", {{"SHEPHERD_WEBHOOK_URL_FILE", (dir_ / "none").string()}}).find("cannot open"),
      std::string::npos);
  EXPECT_NE(
      error_of("", {{"SHEPHERD_WEBHOOK_URL_FILE", write("blank", "\n", 0600)}}).find("is empty"),
      std::string::npos);
  // Both the URL and a file in the environment: ambiguous.
  EXPECT_NE(
      error_of("", {{"SHEPHERD_WEBHOOK_URL", kSecretUrl}, {"SHEPHERD_WEBHOOK_URL_FILE", secret}})
          .find("both set"),
      std::string::npos);
}

// The shared store: its URL, its password (environment or a private file, never shown), and the
// table names, also by seed 001's variables.
TEST_F(ConfigTest, SharedStoreSettings) {
  const std::string yaml = write("store.yaml",
                                 "store:\n  url: mariadb://shepherd@db1/devops_platform\n"
                                 "  tables:\n    jobs: my_ecs_job\n");
  Config c = load_config(yaml, {{"SHEPHERD_STORE_PASSWORD", "pa55word"},
                                {"TASK_TABLE_NAME", "my_ecs_task"},
                                {"NODE_TABLE_NAME", "my_ecs_node"}});
  EXPECT_EQ(c.store_url, "mariadb://shepherd@db1/devops_platform");
  EXPECT_EQ(c.store_password, "pa55word");
  EXPECT_EQ(c.store_table_jobs, "my_ecs_job");
  EXPECT_EQ(c.store_table_tasks, "my_ecs_task");
  EXPECT_EQ(c.store_table_nodes, "my_ecs_node");
  const nlohmann::json shown = redacted_json(c);
  EXPECT_EQ(shown["store"]["password"], "(set)");
  EXPECT_EQ(shown.dump().find("pa55word"), std::string::npos);
  EXPECT_EQ(shown["store"]["tables"]["jobs"], "my_ecs_job");

  const Config defaults = load_config("", {});
  EXPECT_EQ(defaults.store_table_jobs, "training_jobs");
  EXPECT_EQ(defaults.store_table_nodes, "nodes");

  const std::string secret = write("db-password", "pa55word\n", 0600);
  EXPECT_EQ(load_config("", {{"SHEPHERD_STORE_PASSWORD_FILE", secret}}).store_password, "pa55word");
  const std::string open_file = write("open-password", "pa55word\n", 0644);
  std::string message = error_of("", {{"SHEPHERD_STORE_PASSWORD_FILE", open_file}});
  EXPECT_NE(message.find("store.password_file"), std::string::npos) << message;
  EXPECT_EQ(message.find("pa55word"), std::string::npos) << message;
  EXPECT_NE(
      error_of("", {{"SHEPHERD_STORE_PASSWORD", "x"}, {"SHEPHERD_STORE_PASSWORD_FILE", secret}})
          .find("both set"),
      std::string::npos);
  EXPECT_NE(error_of("store:\n  path: /var/lib/x.db\n  url: mariadb://u@h/d\n").find("both set"),
            std::string::npos);
  // A password written into the URL anyway is not shown (the store refuses the URL).
  Config typed = load_config("", {{"SHEPHERD_STORE_URL", "mariadb://u:pa55word@h/d"}});
  EXPECT_EQ(redacted_json(typed)["store"]["url"], "mariadb://u:(password)@h/d");
}

TEST_F(ConfigTest, RedactedJsonHidesOnlyTheWebhookUrl) {
  Config c = load_config("", {{"SHEPHERD_WEBHOOK_URL", kSecretUrl}});
  nlohmann::json j = redacted_json(c);
  EXPECT_EQ(j["notify"]["webhook_url"], "(set)");
  EXPECT_EQ(j.dump().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(j["cluster_name"], "shepherd");
  EXPECT_EQ(j["store"]["path"], "");
  EXPECT_EQ(j["listen"], "127.0.0.1:8080");
  EXPECT_EQ(j["policy"]["max_retries"], 1);
  EXPECT_EQ(j["policy"]["diag_timeout"], 900.0);
  EXPECT_EQ(j["policy"]["app_exit_codes"], nlohmann::json::array());
  EXPECT_FALSE(j.contains("diagnostic"));
  c.webhook_url.clear();
  EXPECT_EQ(redacted_json(c)["notify"]["webhook_url"], "(not set)");
}

TEST_F(ConfigTest, ProcessEnvironment) {
  ::setenv("SHEPHERD_CONFIG_TEST_VAR", "a=b", 1);
  EXPECT_EQ(process_environment().at("SHEPHERD_CONFIG_TEST_VAR"), "a=b");
  ::unsetenv("SHEPHERD_CONFIG_TEST_VAR");
}

}  // namespace
}  // namespace shepherd
