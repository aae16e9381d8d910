// The HTTP API on a controller with no simulator behind it (the api layer links none): reads come
// from the store, commands run on the controller's loop, and every error is a JSON body.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/http_api.hpp"
#include "store/sqlite_store.hpp"
#include "support/doubles.hpp"

namespace shepherd {
namespace {

using nlohmann::json;

using test::AcceptingDriver;
using test::QuietNotifier;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    controller_ = std::make_unique<Controller>(store_, driver_, notifier_, Engine(Policy{}), clock_,
                                               Policy{});
    controller_->start();
    for (const char* n : {"node-1", "node-2"})
      controller_->post(
          Event{std::string("reg-") + n, 0, NodeRegistered{n, "b", "", "", 8, {}, {}}});
    controller_->settle();
    api_ = std::make_unique<HttpApi>(*controller_, store_);
    port_ = api_->bind("127.0.0.1", 0);
    loop_ = std::thread([this] { controller_->run(std::chrono::milliseconds(10)); });
    api_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    for (int i = 0; i < 100 && !client_->Get("/healthz"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void TearDown() override {
    api_->stop();
    controller_->stop();
    loop_.join();
  }

  SystemClock clock_;
  SqliteStore store_{":memory:"};
  AcceptingDriver driver_;
  QuietNotifier notifier_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<HttpApi> api_;
  int port_ = 0;
  std::thread loop_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpApiTest, ReadsTheStoreAndRunsCommandsOnTheLoop) {
  auto nodes = client_->Get("/api/nodes");
  ASSERT_TRUE(nodes);
  EXPECT_EQ(json::parse(nodes->body).size(), 2u);
  auto made = client_->Post("/api/jobs", R"({"id":"t1","nodes":2})", "application/json");
  ASSERT_TRUE(made);
  EXPECT_EQ(made->status, 201) << made->body;
  auto job = client_->Get("/api/jobs/t1");
  ASSERT_TRUE(job);
  EXPECT_EQ(json::parse(job->body)["tasks"].size(), 2u);
  auto timeline = client_->Get("/api/timeline?since=0");
  ASSERT_TRUE(timeline);
  const json entries = json::parse(timeline->body);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries[0]["seq"], 1);
  auto later = client_->Get("/api/timeline?since=" + entries.back()["seq"].dump());
  EXPECT_TRUE(json::parse(later->body).empty());
}

TEST_F(HttpApiTest, EveryErrorIsAJsonBody) {
  auto unknown = client_->Get("/api/nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(json::parse(unknown->body)["error"]["code"], "not_found");
  auto huge = client_->Post("/api/jobs", std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_EQ(json::parse(huge->body)["error"]["field"], "body");
  auto since = client_->Get("/api/timeline?since=3x");
  ASSERT_TRUE(since);
  EXPECT_EQ(since->status, 400);
  EXPECT_EQ(json::parse(since->body)["error"]["field"], "since");
  auto stop = client_->Post("/api/jobs/none/stop", "", "application/json");
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->status, 404);
  EXPECT_EQ(json::parse(stop->body)["error"]["field"], "job_id");
}

// A standby's API (no controller): reads are served from the store; a command is redirected to
// the leader with 307 (same method and body, the path and query kept), or is 503 while none leads.
// (httplib decodes a Location header, so the target here needs no escapes.)
TEST(StandbyHttpApi, ServesReadsAndSendsCommandsToTheLeader) {
  SqliteStore store(":memory:");
  std::optional<std::string> leader;
  HttpApiOptions options;
  options.leader_url = [&] { return leader; };
  HttpApi api(store, options);
  const int port = api.bind("127.0.0.1", 0);
  api.start();
  httplib::Client client("127.0.0.1", port);
  for (int i = 0; i < 100 && !client.Get("/healthz"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  auto nodes = client.Get("/api/nodes");
  ASSERT_TRUE(nodes);
  EXPECT_EQ(nodes->status, 200);
  auto none = client.Post("/api/jobs", R"({"id":"t1","nodes":1})", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 503);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "no_leader");

  leader = "https://ctl2.example.org:8443";
  auto sent = client.Post("/api/jobs/t1/stop?why=x", "", "application/json");
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->status, 307);
  EXPECT_EQ(sent->get_header_value("Location"),
            "https://ctl2.example.org:8443/api/jobs/t1/stop?why=x");
  EXPECT_EQ(json::parse(sent->body)["error"]["code"], "not_leader");
  api.stop();
}

}  // namespace
}  // namespace shepherd
