// `shepherd job|node|task|timeline`: the real binary as a subprocess against a real dev server on
// loopback (and a fake one for the routes the dev server lacks): output, exit codes, messages.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/running_dev_server.hpp"

namespace shepherd {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The binary under test; SHEPHERD_CLI_BINARY points at another build of it.
std::string binary() {
  const char* other = std::getenv("SHEPHERD_CLI_BINARY");
  return other && *other ? other : SHEPHERD_BINARY;
}

// Runs `shepherd args...` with `env` added to the environment; stdout and stderr kept apart.
Result shepherd(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) {
  const fs::path dir = fs::temp_directory_path() / ("shepherd-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "out").string(), err = (dir / "err").string();
  // Everything is made before fork: the dev server's threads may hold the allocator's locks.
  const std::string bin = binary();
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("SHEPHERD_")) vars.emplace_back(*e);
  for (const auto& [name, value] : env) vars.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
    ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
    ::execve(bin.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  Result run;
  int status = 0;
  for (int i = 0; i < 3000 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (::waitpid(pid, &status, WNOHANG) == 0) {  // still running after 30 s: a hang is a failure
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = slurp(out);
  run.err = slurp(err);
  fs::remove_all(dir);
  return run;
}

class CliClientTest : public ::testing::Test {
 protected:
  // `shepherd <args> --server <the dev server>`
  Result at(std::vector<std::string> args) {
    // Before a `--`, or it would be part of the job's command.
    const auto at = std::find(args.begin(), args.end(), "--");
    args.insert(args.insert(at, url_), "--server");
    return shepherd(args);
  }
  json json_of(std::vector<std::string> args) {
    args.push_back("--json");
    const Result r = at(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return json::parse(r.out, nullptr, false);
  }

  test::RunningDevServer server_;
  std::string url_ = "http://127.0.0.1:" + std::to_string(server_.port());
};

TEST_F(CliClientTest, SubmittedJobIsListedAndShown) {
  const Result submit = at({"job", "submit", "j1", "--nodes", "2", "--runtime", "600", "--env",
                            "A=1=2", "--", "python", "-m", "train", "--lr", "1"});
  ASSERT_EQ(submit.code, 0) << submit.err;
  EXPECT_EQ(submit.out.rfind("job j1 submitted: IN_PROGRESS on ", 0), 0u) << submit.out;
  const json jobs = json_of({"job", "list"});
  ASSERT_TRUE(jobs.is_array());
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["id"], "j1");
  const json shown = json_of({"job", "show", "j1"});
  EXPECT_EQ(shown["tasks"].size(), 2u);
  const Result text = at({"job", "show", "j1"});
  EXPECT_NE(text.out.find("attempt 0:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("j1.0.1"), std::string::npos) << text.out;
  const Result listed = at({"job", "list"});
  EXPECT_EQ(listed.out.rfind("ID  ", 0), 0u) << listed.out;
  EXPECT_NE(listed.out.find("j1  IN_PROGRESS"), std::string::npos) << listed.out;
}

TEST_F(CliClientTest, NamedNodesAndTheServerFromTheEnvironment) {
  const Result r = shepherd({"job", "submit", "--node", "node-2", "--node", "node-4", "j2"},
                            {{"SHEPHERD_SERVER", url_}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json_of({"job", "show", "j2"})["assigned_nodes"], json({"node-2", "node-4"}));
}

TEST_F(CliClientTest, StopEndsTheJob) {
  ASSERT_EQ(at({"job", "submit", "s1", "--nodes", "1"}).code, 0);
  const Result stop = at({"job", "stop", "s1"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(stop.out, "job s1: USER_STOPPED\n");
  EXPECT_EQ(json_of({"job", "show", "s1"})["status"], "USER_STOPPED");
}

TEST_F(CliClientTest, NodesAreListedAndShown) {
  EXPECT_EQ(json_of({"node", "list"}).size(), 4u);
  const Result list = at({"node", "list"});
  EXPECT_EQ(list.out.rfind("NAME", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("node-3  AVAILABLE"), std::string::npos) << list.out;
  const Result show = at({"node", "show", "node-1"});
  EXPECT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("status: AVAILABLE"), std::string::npos) << show.out;
}

TEST_F(CliClientTest, TimelineKeepsOnlyTheJobAskedFor) {
  ASSERT_EQ(at({"job", "submit", "a", "--nodes", "1"}).code, 0);
  ASSERT_EQ(at({"job", "submit", "a.0", "--nodes", "1"}).code, 0);  // its tasks: a.0.0.0
  const json all = json_of({"timeline"});
  const json mine = json_of({"timeline", "--job", "a"});
  ASSERT_FALSE(mine.empty());
  EXPECT_LT(mine.size(), all.size());
  for (const json& e : mine)
    EXPECT_TRUE((e["kind"] == "job" && e["id"] == "a") ||
                (e["kind"] == "task" && e["id"] == "a.0.0"))
        << e;
  const std::int64_t last = all.back()["seq"];
  // Only what came after: the simulated nodes may have reported meanwhile (slower under ASan).
  for (const json& e : json_of({"timeline", "--since", std::to_string(last)}))
    EXPECT_GT(e["seq"].get<std::int64_t>(), last) << e;
  for (const json& e : json_of({"timeline", "--node", "node-1"}))
    EXPECT_TRUE(e["kind"] == "node" && e["id"] == "node-1") << e;
}

TEST_F(CliClientTest, AnUnknownJobIsOneLineAndExit1) {
  const Result r = at({"job", "show", "nosuch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "shepherd: HTTP 404 not_found (job_id): no job named nosuch\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(CliClientTest, BadInputIsAUsageError) {
  EXPECT_EQ(at({"job", "submit", "x", "--nodes", "1", "--env", "NOEQUALS"}).code, 2);
  EXPECT_EQ(at({"job", "submit", "x", "--nodes", "1", "--env", "A=1", "--env", "A=2"}).code, 2);
  EXPECT_EQ(at({"job", "submit", "x"}).code, 2);  // neither --nodes nor --node
  EXPECT_EQ(at({"job", "submit", "x", "--nodes", "1", "--node", "node-1"}).code, 2);
  const Result slash = at({"job", "show", "a/b"});
  EXPECT_EQ(slash.code, 2);
  EXPECT_NE(slash.err.find("'a/b' is not a valid id"), std::string::npos) << slash.err;
  EXPECT_EQ(shepherd({"job"}).code, 2);
  EXPECT_TRUE(json_of({"job", "list"}).empty());  // nothing was submitted
}

TEST(CliClient, EveryCommandHasHelp) {
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"job"},
                                             {"job", "submit"},
                                             {"job", "list"},
                                             {"job", "show"},
                                             {"job", "stop"},
                                             {"node"},
                                             {"node", "list"},
                                             {"node", "show"},
                                             {"node", "repair"},
                                             {"node", "revoke"},
                                             {"task"},
                                             {"task", "logs"},
                                             {"timeline"}}) {
    std::vector<std::string> args = cmd;
    args.push_back("--help");
    const Result r = shepherd(args);
    EXPECT_EQ(r.code, 0) << cmd.back() << ": " << r.err;
    EXPECT_NE(r.out.find("--server"), std::string::npos) << cmd.back();
  }
}

TEST(CliClient, ADownServerExits1WithCannotReach) {
  // A port that was free a moment ago: bound, never listened on, closed.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const Result r = shepherd({"node", "list", "--server", url});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "shepherd: cannot reach " + url + ": connection refused\n");
}

// The routes `shepherd dev` does not serve (yet), on a fake server.
class CliFakeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    token_file_ =
        (fs::temp_directory_path() / ("shepherd-cli-token-" + std::to_string(getpid()))).string();
    std::ofstream(token_file_) << "t0ken\n";
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
    fs::remove(token_file_);
  }
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::string url_, token_file_;
};

TEST_F(CliFakeServerTest, LogsFollowUntilTheTaskEnds) {
  // Three pages of output, then nothing more and the task has ended.
  const std::map<std::string, std::pair<std::string, std::string>> pages{
      {"0", {"hello ", "6"}}, {"6", {"world\n", "12"}}, {"12", {"", "12"}}};
  server_.Get("/api/tasks/j.0.0/logs", [&](const httplib::Request& req, httplib::Response& res) {
    const auto it = pages.find(req.get_param_value("offset"));
    if (it == pages.end()) {
      res.status = 400;
      return;
    }
    res.set_header("X-Next-Offset", it->second.second);
    res.set_header("X-Task-Ended", it->first == "12" ? "true" : "false");
    res.set_content(it->second.first, "text/plain");
  });
  const Result follow = shepherd({"task", "logs", "j.0.0", "--follow", "--server", url_});
  EXPECT_EQ(follow.code, 0) << follow.err;
  EXPECT_EQ(follow.out, "hello world\n");
  const Result from = shepherd({"task", "logs", "j.0.0", "--offset", "6", "--server", url_});
  EXPECT_EQ(from.out, "world\n");
}

TEST_F(CliFakeServerTest, RevokeSendsTheTokenFromItsFile) {
  server_.Post("/api/nodes/n1/revoke", [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer t0ken") {
      res.status = 401;
      res.set_content(R"({"error":{"code":"unauthorized","field":"authorization","message":"no"}})",
                      "application/json");
      return;
    }
    res.set_content(R"({"node":"n1","revoked":true})", "application/json");
  });
  const Result ok =
      shepherd({"node", "revoke", "n1", "--server", url_, "--token-file", token_file_});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "node n1: revoked\n");
  const Result env =
      shepherd({"node", "revoke", "n1", "--server", url_}, {{"SHEPHERD_TOKEN_FILE", token_file_}});
  EXPECT_EQ(env.code, 0) << env.err;
  const Result refused = shepherd({"node", "revoke", "n1", "--server", url_});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("--token-file"), std::string::npos) << refused.err;
  const Result missing =
      shepherd({"node", "revoke", "n1", "--server", url_, "--token-file", "/nonexistent/token"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err,
            "shepherd: cannot read the token file /nonexistent/token: no such file or directory\n");
}

}  // namespace
}  // namespace shepherd
