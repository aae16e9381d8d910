// The dev server's HTTP API on loopback: listings, submit, stop, faults, and clear 4xx errors.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/running_dev_server.hpp"

namespace shepherd {
namespace {

using nlohmann::json;

class DevApiTest : public ::testing::Test {
 protected:
  json post(const std::string& path, const std::string& body, int expected_status) {
    auto res = client_->Post(path, body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, expected_status) << path << " " << res->body;
    return json::parse(res->body);
  }
  json get(const std::string& path) {
    auto res = client_->Get(path);
    EXPECT_TRUE(res && res->status == 200);
    return res ? json::parse(res->body) : json{};
  }

  test::RunningDevServer server_;
  std::unique_ptr<httplib::Client> client_ =
      std::make_unique<httplib::Client>("127.0.0.1", server_.port());
};

TEST_F(DevApiTest, SubmitListStop) {
  EXPECT_EQ(get("/api/nodes").size(), 4u);
  json job = post("/api/jobs", R"({"id":"t1","nodes":["node-1","node-2"],"runtime":600})", 201);
  EXPECT_EQ(job["status"], "IN_PROGRESS");
  EXPECT_EQ(get("/api/jobs").size(), 1u);
  EXPECT_EQ(get("/api/jobs/t1")["tasks"].size(), 2u);
  json counted = post("/api/jobs", R"({"id":"t2","nodes":2})", 201);
  EXPECT_EQ(counted["assigned_nodes"], json({"node-3", "node-4"}));
  json stopped = post("/api/jobs/t1/stop", "", 200);
  EXPECT_EQ(stopped["status"], "USER_STOPPED");
  EXPECT_FALSE(get("/api/timeline?since=0").empty());
}

TEST_F(DevApiTest, BadInputNamesTheField) {
  EXPECT_EQ(post("/api/jobs", "not json", 400)["error"]["field"], "body");
  EXPECT_EQ(post("/api/jobs", R"({"nodes":["node-1"]})", 400)["error"]["field"], "id");
  EXPECT_EQ(post("/api/jobs", R"({"id":"x","nodes":"node-1"})", 400)["error"]["field"], "nodes");
  EXPECT_EQ(post("/api/jobs", R"({"id":"x","nodes":["nope"]})", 404)["error"]["field"], "nodes[0]");
  EXPECT_EQ(post("/api/jobs", R"({"id":"x","nodes":9})", 409)["error"]["field"], "nodes");
  EXPECT_EQ(post("/api/jobs", R"({"id":"x y","nodes":1})", 400)["error"]["field"], "job_id");
  EXPECT_EQ(post("/api/jobs", R"({"id":"x","nodes":1,"runtime":-1})", 400)["error"]["field"],
            "runtime");
  post("/api/jobs", R"({"id":"x","nodes":1})", 201);
  EXPECT_EQ(post("/api/jobs", R"({"id":"x","nodes":1})", 409)["error"]["field"], "job_id");
  EXPECT_EQ(post("/api/jobs/none/stop", "", 404)["error"]["code"], "not_found");
  EXPECT_EQ(post("/api/faults", R"({"fault":"meteor","node":"node-1"})", 400)["error"]["field"],
            "fault");
  EXPECT_EQ(post("/api/faults", R"({"fault":"gpu","node":"node-9"})", 404)["error"]["field"],
            "node");
  EXPECT_EQ(post("/api/faults", R"({"fault":"exit_code","node":"node-1","code":999})",
                 400)["error"]["field"],
            "code");
  auto res = client_->Get("/api/timeline?since=abc");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

// Values that used to get through: a count that wraps to 1, an endless runtime, unknown fields
// and duplicate keys. Each is a 400 naming the field, and nothing is submitted.
TEST_F(DevApiTest, OutOfRangeUnknownAndDuplicateFieldsAreRefused) {
  auto field_of = [&](const std::string& body) {
    return post("/api/jobs", body, 400)["error"]["field"];
  };
  EXPECT_EQ(field_of(R"({"id":"x","nodes":4294967297})"), "nodes");
  EXPECT_EQ(field_of(R"({"id":"x","nodes":1.5})"), "nodes");
  EXPECT_EQ(field_of(R"({"id":"x","nodes":0})"), "nodes");
  EXPECT_EQ(field_of(R"({"id":"x","nodes":1,"runtime":1e308})"), "runtime");
  EXPECT_EQ(field_of(R"({"id":"x","nodes":1,"runtime":"600"})"), "runtime");
  EXPECT_EQ(field_of(R"({"id":"x","nodes":1,"runtme":600})"), "runtme");
  EXPECT_EQ(field_of(R"({"id":"x","id":"y","nodes":1})"), "id");
  EXPECT_EQ(field_of(R"({"id":7,"nodes":1})"), "id");
  const json msg = post("/api/jobs", R"({"id":"x","nodes":4294967297})", 400)["error"]["message"];
  EXPECT_NE(msg.get<std::string>().find("1..100000"), std::string::npos) << msg;
  EXPECT_EQ(
      post("/api/faults", R"({"fault":"app","node":"node-1","code":256})", 400)["error"]["field"],
      "code");
  EXPECT_EQ(post("/api/faults", R"({"fault":"agent_lost","node":"node-1","duration":1e16})",
                 400)["error"]["field"],
            "duration");
  EXPECT_TRUE(get("/api/jobs").empty());
}

TEST_F(DevApiTest, DeadLettersAreListedAndAnUnknownRetryIs404) {
  EXPECT_TRUE(get("/api/dead-letters").empty());
  EXPECT_EQ(post("/api/dead-letters/nosuch/retry", "", 404)["error"]["field"], "id");
}

TEST_F(DevApiTest, InjectedFaultStartsRecovery) {
  post("/api/jobs", R"({"id":"t","nodes":["node-1"],"runtime":3600})", 201);
  post("/api/faults", R"({"fault":"gpu","node":"node-1"})", 202);
  // The task dies on the broken GPU, the diagnostic fails (60 virtual s), the node reboots.
  for (int i = 0; i < 400; ++i) {
    if (get("/api/jobs/t")["status"] == "PENDING_RESTART") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(get("/api/jobs/t")["status"], "PENDING_RESTART");
  EXPECT_EQ(get("/api/nodes")[0]["status"], "REBOOTING");
}

}  // namespace
}  // namespace shepherd
