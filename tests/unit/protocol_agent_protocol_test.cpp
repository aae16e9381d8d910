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
  EXPECT_FALSE(back.interrupted);
  EXPECT_EQ(encode(AgentMessage{r}).find("interrupted"), std::string::npos);  // only when true
  r.interrupted = true;
  EXPECT_TRUE(std::get<Report>(decode_agent_message(encode(AgentMessage{r}))).interrupted);
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
      R"({"v":1,"type":"report","id":"x","kind":"task_exited","task_id":"t","interrupted":1})",
      "interrupted");
  expect_error(
      R"({"v":1,"type":"report","id":"x","kind":"diagnostic_finished","operation_id":"o","verdict":"ok"})",
      "verdict");
  expect_error(R"({"v":1,"type":"ack","ok":true})", "action_id");
  expect_error(std::string(kMaxFrameBytes + 1, ' '), "");
}

// Found by fuzz/agent_message_fuzz.cpp: numbers past INT64_MAX wrapped around (v 2^32 + 1 read
// as 1, an exit code of 2^64 - 3 as -3), and a deeply nested frame under the size limit
// overflowed the stack when the decoder copied it.
TEST(AgentProtocol, NumbersOutOfRangeAreRefusedNotWrapped) {
  expect_error(R"({"v":4294967297,"type":"heartbeat"})", "v");
  expect_error(R"({"v":18446744073709551617,"type":"heartbeat"})", "v");
  expect_error(
      R"({"v":1,"type":"report","id":"x","kind":"task_exited","task_id":"t","exit_code":18446744073709551613})",
      "exit_code");
  expect_error(R"({"v":1,"type":"hello","node":"n","boot_id":"b","gpus":2147483648})", "gpus");
  const auto hello = std::get<Hello>(
      decode_agent_message(R"({"v":1,"type":"hello","node":"n","boot_id":"b","gpus":2147483647})"));
  EXPECT_EQ(hello.gpus, 2147483647);
}

TEST(AgentProtocol, DeepNestingIsRefusedBeforeParsing) {
  const int depth = 200'000;  // 400 kB: well under kMaxFrameBytes
  const std::string frame =
      R"({"v":1,"type":"report","id":"x","kind":"diagnostic_finished","operation_id":"o",)"
      R"("verdict":"pass","diagnostic":{"a":)" +
      std::string(depth, '[') + std::string(depth, ']') + "}}";
  expect_error(frame, "");
  // What a diagnostic report nests, and brackets inside strings, are not depth.
  const auto r = std::get<Report>(decode_agent_message(
      R"({"v":1,"type":"report","id":"x","kind":"diagnostic_finished","operation_id":"o",)"
      R"("verdict":"fail","detail":")" +
      std::string(100, '[') + R"(","diagnostic":{"results":[{"errors":[{"error_id":83}]}]}})"));
  EXPECT_EQ(r.diagnostic["results"][0]["errors"][0]["error_id"], 83);
}

}  // namespace
}  // namespace shepherd::protocol
