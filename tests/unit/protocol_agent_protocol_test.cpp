// The agent protocol's frames: what one side encodes the other decodes, and a bad frame is a
// ProtocolError naming its field, never a crash.
#include <gtest/gtest.h>

#include "protocol/agent_protocol.hpp"

namespace shepherd::protocol {
namespace {

TEST(AgentProtocol, ReportRoundTrips) {
  Report r;
  r.id = "exit:j.0.1";
  r.kind = ReportKind::TaskExited;
  r.task_id = "j.0.1";
  r.exit_code = 3;
  r.signal = 9;
  const auto back = std::get<Report>(decode_agent_message(encode(AgentMessage{r})));
  EXPECT_EQ(back.id, r.id);
  EXPECT_EQ(back.kind, ReportKind::TaskExited);
  EXPECT_EQ(back.task_id, "j.0.1");
  EXPECT_EQ(back.exit_code, 3);
  EXPECT_EQ(back.signal, 9);
}

TEST(AgentProtocol, ActionRoundTripsWithItsPayload) {
  ActionRequest a{"c1.2/0", "start_task", "j", "j.0.0", {{"env", {{"NODE_RANK", "0"}}}}};
  const auto back = std::get<ActionRequest>(decode_server_message(encode(ServerMessage{a})));
  EXPECT_EQ(back.id, "c1.2/0");
  EXPECT_EQ(back.payload["env"]["NODE_RANK"], "0");
}

TEST(AgentProtocol, BytesThatAreNotUtf8AreReplacedNotThrown) {
  LogData l;
  l.request_id = "1";
  l.data = std::string("ok \xff\xfe end");
  const auto back = std::get<LogData>(decode_agent_message(encode(AgentMessage{l})));
  EXPECT_NE(back.data.find("end"), std::string::npos);
}

void expect_error(std::string_view frame, const std::string& field) {
  try {
    decode_agent_message(frame);
    ADD_FAILURE() << "accepted: " << frame;
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.field(), field) << frame << ": " << e.what();
  }
}

TEST(AgentProtocol, BadFramesNameTheirField) {
  expect_error("not json", "");
  expect_error("[1,2]", "");
  expect_error(R"({"type":"hello","node":"n","boot_id":"b"})", "v");
  expect_error(R"({"v":2,"type":"hello","node":"n","boot_id":"b"})", "v");
  expect_error(R"({"v":1,"type":"nosuch"})", "type");
  expect_error(R"({"v":1,"type":"hello","boot_id":"b"})", "node");
  expect_error(R"({"v":1,"type":"hello","node":"n","boot_id":"b","gpus":-1})", "gpus");
  expect_error(R"({"v":1,"type":"hello","node":"n","boot_id":"b","gpus":"8"})", "gpus");
  expect_error(R"({"v":1,"type":"report","id":"x","kind":"nosuch"})", "kind");
  expect_error(R"({"v":1,"type":"report","kind":"task_started","task_id":"t"})", "id");
  expect_error(
      R"({"v":1,"type":"report","id":"x","kind":"task_exited","task_id":"t","exit_code":1e99})",
      "exit_code");
  expect_error(
      R"({"v":1,"type":"report","id":"x","kind":"diagnostic_finished","operation_id":"o","verdict":"ok"})",
      "verdict");
  expect_error(R"({"v":1,"type":"ack","ok":true})", "action_id");
  expect_error(std::string(kMaxFrameBytes + 1, ' '), "");
}

}  // namespace
}  // namespace shepherd::protocol
