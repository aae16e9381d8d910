// The API client against a tiny httplib server on loopback: what it sends, how each failure reads,
// and where its options come from.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client/api_client.hpp"

namespace shepherd::client {
namespace {

using nlohmann::json;

class FakeServer {
 public:
  FakeServer() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  httplib::Server& http() { return server_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

ClientOptions options(const std::string& server, const std::string& token = "") {
  ClientOptions o;
  o.server = server;
  o.token = token;
  o.timeout = std::chrono::seconds(2);
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ClientError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ApiClient, SendsTheBearerTokenOnlyWhenSet) {
  FakeServer server;
  std::string seen = "(none)";
  server.http().Get("/api/jobs", [&](const httplib::Request& req, httplib::Response& res) {
    seen = req.has_header("Authorization") ? req.get_header_value("Authorization") : "";
    res.set_content("[]", "application/json");
  });
  EXPECT_EQ(ApiClient(options(server.url(), "s3cret")).get("/api/jobs"), json::array());
  EXPECT_EQ(seen, "Bearer s3cret");
  ApiClient(options(server.url())).get("/api/jobs");
  EXPECT_EQ(seen, "");
}

TEST(ApiClient, PostsJsonOrNoBody) {
  FakeServer server;
  std::string body, type;
  server.http().Post("/p", [&](const httplib::Request& req, httplib::Response& res) {
    body = req.body;
    type = req.get_header_value("Content-Type");
    res.set_content(R"({"ok":true})", "application/json");
  });
  ApiClient api(options(server.url() + "/"));  // a trailing slash is fine
  EXPECT_EQ(api.post("/p", json{{"id", "a"}}), json({{"ok", true}}));
  EXPECT_EQ(body, R"({"id":"a"})");
  EXPECT_EQ(type, "application/json");
  api.post("/p");
  EXPECT_EQ(body, "");
}

// A standby controller answers a command with 307 to the leader. The client follows it only over
// https with the server's CA pinned (tests/e2e: `shepherd job submit` on a standby); over http, or
// trusting any public CA, the admin token would go to whatever host the redirect names: the 307
// is an error that says where the leader is.
TEST(ApiClient, DoesNotFollowARedirectWithoutAPinnedCa) {
  FakeServer standby, elsewhere;
  bool reached = false;
  standby.http().Post("/api/jobs", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 307;
    res.set_header("Location", elsewhere.url() + "/api/jobs");
    res.set_content(R"({"error":{"code":"not_leader","field":"","message":"the leader is at X"}})",
                    "application/json");
  });
  elsewhere.http().Post("/api/jobs", [&](const httplib::Request&, httplib::Response& res) {
    reached = true;
    res.status = 201;
    res.set_content("{}", "application/json");
  });
  const std::string error = error_of([&] {
    ApiClient(options(standby.url(), "tok")).post("/api/jobs", json{{"id", "a"}});
  });
  EXPECT_NE(error.find("307"), std::string::npos) << error;
  EXPECT_NE(error.find("the leader is at X"), std::string::npos) << error;
  EXPECT_FALSE(reached);
}

TEST(ApiClient, ErrorBodyBecomesTheMessage) {
  FakeServer server;
  server.http().Get("/api/jobs/x", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":{"code":"not_found","field":"job_id","message":"no job named x"}})",
                    "application/json");
  });
  server.http().Get("/proxy", [](const httplib::Request&, httplib::Response& res) {
    res.status = 502;
    res.set_content("Bad Gateway\n<html>...</html>", "text/html");
  });
  server.http().Get("/locked", [](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_content(
        R"({"error":{"code":"unauthorized","field":"authorization","message":"the token is not valid"}})",
        "application/json");
  });
  ApiClient api(options(server.url(), "s3cret"));
  EXPECT_EQ(error_of([&] { api.get("/api/jobs/x"); }),
            "HTTP 404 not_found (job_id): no job named x");
  EXPECT_EQ(error_of([&] { api.get("/proxy"); }), "HTTP 502: Bad Gateway");
  const std::string refused = error_of([&] { api.get("/locked"); });
  EXPECT_NE(refused.find("HTTP 401 unauthorized"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--token-file"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("s3cret"), std::string::npos) << refused;
}

TEST(ApiClient, TextAnswersKeepTheirHeaders) {
  FakeServer server;
  server.http().Get("/api/tasks/t.0.0/logs",
                    [](const httplib::Request& req, httplib::Response& res) {
                      res.set_header("X-Next-Offset", "5");
                      res.set_header("X-Task-Ended", "false");
                      res.set_content("hello" + req.get_param_value("offset"), "text/plain");
                    });
  ApiClient api(options(server.url()));
  std::map<std::string, std::string> headers;
  EXPECT_EQ(api.get_text("/api/tasks/t.0.0/logs?offset=0", &headers), "hello0");
  EXPECT_EQ(headers["x-next-offset"], "5");
  EXPECT_EQ(headers["x-task-ended"], "false");
}

TEST(ApiClient, NonJsonAnswerIsAnError) {
  FakeServer server;
  server.http().Get("/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>", "text/html");
  });
  EXPECT_NE(error_of([&] { ApiClient(options(server.url())).get("/x"); }).find("not JSON"),
            std::string::npos);
}

TEST(ApiClient, ConnectionRefusedNamesTheServer) {
  std::string url;
  {
    FakeServer gone;  // a port that was just free: nothing listens there now
    url = gone.url();
  }
  EXPECT_EQ(error_of([&] { ApiClient(options(url)).get("/api/jobs"); }),
            "cannot reach " + url + ": connection refused");
}

TEST(ApiClient, TlsToAPlainServerFailsInOneLine) {
  FakeServer server;
  server.http().Get("/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{}", "application/json");
  });
  const std::string https = "https" + server.url().substr(4);
  const std::string msg = error_of([&] { ApiClient(options(https)).get("/x"); });
  EXPECT_EQ(msg.rfind("cannot reach " + https, 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ApiClient, ServerUrlMustBeHttpOrHttpsHostPort) {
  for (const char* bad : {"127.0.0.1:8080", "ftp://h:1", "http://h:99999", "http://h:1/api",
                          "http://:1", "http://::1:8080", "http://h:x"})
    EXPECT_NE(error_of([&] { ApiClient a(options(bad)); }).find("http://HOST:PORT"),
              std::string::npos)
        << bad;
  EXPECT_EQ(ApiClient(options("http://[::1]:9")).server(), "http://[::1]:9");
  EXPECT_EQ(ApiClient(options("https://example.com")).server(), "https://example.com:443");
}

TEST(ApiClient, PathIdsFollowTheServersRule) {
  EXPECT_TRUE(is_path_id("job-1.0.2"));
  EXPECT_TRUE(is_path_id("node_7"));
  for (const char* bad : {"", "a/b", "..", ".", "a b", "a%2f", "x?y"})
    EXPECT_FALSE(is_path_id(bad)) << bad;
  EXPECT_NE(error_of([] { path_id("job id", "a/b"); }).find("job id 'a/b' is not valid"),
            std::string::npos);
}

class ResolveOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("shepherd-client-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) {
    const auto path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }
  ClientOptions resolve(const ClientFlags& flags) {
    return resolve_client_options(flags, [this](const std::string& name) {
      auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
  }
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ResolveOptions, DefaultsThenEnvironmentThenFlags) {
  EXPECT_EQ(resolve({}).server, "http://127.0.0.1:8080");
  EXPECT_EQ(resolve({}).token, "");
  env_["SHEPHERD_SERVER"] = "https://ctl:8443";
  env_["SHEPHERD_CA"] = "/etc/ca.crt";
  env_["SHEPHERD_TOKEN"] = "from-env\n";
  EXPECT_EQ(resolve({}).server, "https://ctl:8443");
  EXPECT_EQ(resolve({}).ca_file, "/etc/ca.crt");
  EXPECT_EQ(resolve({}).token, "from-env");
  env_["SHEPHERD_TOKEN_FILE"] = write("env-token", "file-token\n");
  EXPECT_EQ(resolve({}).token, "file-token");
  ClientFlags flags{"http://other:1", write("flag-token", "  flag-token \r\n"), "/my/ca"};
  const ClientOptions o = resolve(flags);
  EXPECT_EQ(o.server, "http://other:1");
  EXPECT_EQ(o.token, "flag-token");
  EXPECT_EQ(o.ca_file, "/my/ca");
}

TEST_F(ResolveOptions, AnUnreadableOrEmptyTokenFileIsAnErrorNamingIt) {
  const std::string missing = (dir_ / "nope").string();
  const std::string msg = error_of([&] { resolve({"", missing, ""}); });
  EXPECT_EQ(msg, "cannot read the token file " + missing + ": no such file or directory");
  env_["SHEPHERD_TOKEN_FILE"] = missing;
  EXPECT_NE(error_of([&] { resolve({}); }).find(missing), std::string::npos);
  const std::string empty = write("empty", " \n");
  EXPECT_EQ(error_of([&] { resolve({"", empty, ""}); }), "the token file " + empty + " is empty");
  const std::string two = write("two", "a b\n");
  EXPECT_NE(error_of([&] {
              resolve({"", two, ""});
            }).find("does not hold a token"),
            std::string::npos);
  // The wrong file (a certificate): named as such, not sent to become a corrupt header line.
  const std::string pem =
      write("ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(error_of([&] {
              resolve({"", pem, ""});
            }),
            "the token file " + pem +
                " does not hold a token (one word of printable characters; is it the right file?)");
  EXPECT_NE(error_of([&] { token_in_file("caf\xc3\xa9", "t"); }).find("does not hold a token"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve({"", dir_.string(), ""});
            }).find("directory"),
            std::string::npos);
}

}  // namespace
}  // namespace shepherd::client
