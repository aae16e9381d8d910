#include "protocol/agent_protocol.hpp"

#include <array>
#include <utility>

#include "common/json_depth.hpp"

namespace shepherd::protocol {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<ReportKind, std::string_view>, 5> kReportKinds{{
    {ReportKind::TaskStarted, "task_started"},
    {ReportKind::TaskExited, "task_exited"},
    {ReportKind::DiagnosticStarted, "diagnostic_started"},
    {ReportKind::DiagnosticFinished, "diagnostic_finished"},
    {ReportKind::Xid, "xid"},
}};

// Strict field access: a missing or mistyped field is a ProtocolError naming it.
class Fields {
 public:
  explicit Fields(const json& j) : j_(j) {}
  std::string text(const char* name, bool required = true) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) {
      if (required) throw ProtocolError(name, std::string(name) + " is required");
      return {};
    }
    if (!it->is_string()) throw ProtocolError(name, std::string(name) + " must be a string");
    return it->get<std::string>();
  }
  int integer(const char* name, int fallback = 0) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number_integer())
      throw ProtocolError(name, std::string(name) + " must be an integer");
    // Above INT64_MAX an unsigned value would read as a negative one.
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > (1ULL << 31) - 1)
      throw ProtocolError(name, std::string(name) + " is out of range");
    const auto v = it->get<std::int64_t>();
    if (v < -(1LL << 31) || v > (1LL << 31) - 1)
      throw ProtocolError(name, std::string(name) + " is out of range");
    return static_cast<int>(v);
  }
  std::uint64_t count(const char* name) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return 0;
    if (!it->is_number_unsigned())
      throw ProtocolError(name, std::string(name) + " must be a non-negative integer");
    return it->get<std::uint64_t>();
  }
  bool boolean(const char* name, bool fallback) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw ProtocolError(name, std::string(name) + " must be true or false");
    return it->get<bool>();
  }
  json object(const char* name) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return json::object();
    if (!it->is_object()) throw ProtocolError(name, std::string(name) + " must be an object");
    return *it;
  }

 private:
  const json& j_;
};

// Deeper nesting than any message (a diagnostic report nests 6 deep), refused before parsing:
// copying or writing such a document recurses once per level, past the end of the stack.
constexpr int kMaxDepth = 64;

bool too_deep(std::string_view text) {
  return json_nests_deeper_than(text, kMaxDepth);
}

json parse(std::string_view text) {
  if (text.size() > kMaxFrameBytes) throw ProtocolError("", "the message is too large");
  if (too_deep(text)) throw ProtocolError("", "the message nests too deeply");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw ProtocolError("", "the message is not a JSON object");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer() || v->get<std::int64_t>() != kVersion)
    throw ProtocolError(
        "v", "unsupported protocol version (this side speaks v" + std::to_string(kVersion) + ")");
  return j;
}

json head(std::string_view type) {
  return json{{"v", kVersion}, {"type", type}};
}

struct EncodeAgent {
  json operator()(const Hello& h) const {
    json j = head("hello");
    j.update({{"node", h.node},
              {"boot_id", h.boot_id},
              {"ip", h.ip},
              {"ibdev", h.ibdev},
              {"gpus", h.gpus},
              {"gpu_type", h.gpu_type},
              {"driver_version", h.driver_version},
              {"agent_version", h.agent_version}});
    return j;
  }
  json operator()(const Report& r) const {
    json j = head("report");
    j["id"] = r.id;
    j["kind"] = to_string(r.kind);
    switch (r.kind) {
      case ReportKind::TaskStarted:
        j["task_id"] = r.task_id;
        break;
      case ReportKind::TaskExited:
        j.update({{"task_id", r.task_id}, {"exit_code", r.exit_code}, {"signal", r.signal}});
        if (r.interrupted) j["interrupted"] = true;
        break;
      case ReportKind::DiagnosticStarted:
        j["operation_id"] = r.operation_id;
        break;
      case ReportKind::DiagnosticFinished:
        j.update({{"operation_id", r.operation_id},
                  {"verdict", r.verdict},
                  {"detail", r.detail},
                  {"diagnostic", r.diagnostic.is_null() ? json::object() : r.diagnostic}});
        break;
      case ReportKind::Xid:
        j.update(
            {{"xid", r.xid}, {"pci", r.pci}, {"xid_action", r.xid_action}, {"message", r.message}});
        if (!r.boot_id.empty()) j["boot_id"] = r.boot_id;
        break;
    }
    return j;
  }
  json operator()(const Heartbeat&) const { return head("heartbeat"); }
  json operator()(const LogData& l) const {
    json j = head("log");
    j.update({{"request_id", l.request_id},
              {"data", l.data},
              {"next_offset", l.next_offset},
              {"ended", l.ended},
              {"error", l.error}});
    return j;
  }
  json operator()(const ActionAck& a) const {
    json j = head("ack");
    j.update({{"action_id", a.action_id}, {"ok", a.ok}});
    if (!a.ok) j.update({{"permanent", a.permanent}, {"error", a.error}});
    return j;
  }
};

struct EncodeServer {
  json operator()(const Welcome& w) const {
    json j = head("welcome");
    j.update({{"node", w.node}, {"heartbeat_seconds", w.heartbeat_seconds}});
    return j;
  }
  json operator()(const ActionRequest& a) const {
    json j = head("action");
    j.update({{"id", a.id},
              {"kind", a.kind},
              {"job_id", a.job_id},
              {"task_id", a.task_id},
              {"payload", a.payload}});
    return j;
  }
  json operator()(const LogRequest& r) const {
    json j = head("log_request");
    j.update({{"request_id", r.request_id},
              {"task_id", r.task_id},
              {"offset", r.offset},
              {"max_bytes", r.max_bytes}});
    return j;
  }
  json operator()(const ReportAck& a) const {
    json j = head("ack");
    j["report_id"] = a.report_id;
    return j;
  }
};

Report decode_report(const Fields& f) {
  Report r;
  r.id = f.text("id");
  if (r.id.empty() || r.id.size() > 200) throw ProtocolError("id", "id must be 1-200 characters");
  const std::string kind = f.text("kind");
  bool known = false;
  for (const auto& [k, name] : kReportKinds)
    if (name == kind) r.kind = k, known = true;
  if (!known) throw ProtocolError("kind", "unknown report kind '" + kind + "'");
  switch (r.kind) {
    case ReportKind::TaskStarted:
      r.task_id = f.text("task_id");
      break;
    case ReportKind::TaskExited:
      r.task_id = f.text("task_id");
      r.exit_code = f.integer("exit_code");
      r.signal = f.integer("signal");
      r.interrupted = f.boolean("interrupted", false);
      break;
    case ReportKind::DiagnosticStarted:
      r.operation_id = f.text("operation_id");
      break;
    case ReportKind::DiagnosticFinished:
      r.operation_id = f.text("operation_id");
      r.verdict = f.text("verdict");
      if (r.verdict != "pass" && r.verdict != "fail" && r.verdict != "inconclusive")
        throw ProtocolError("verdict", "verdict must be pass, fail or inconclusive");
      r.detail = f.text("detail", false);
      r.diagnostic = f.object("diagnostic");
      break;
    case ReportKind::Xid:
      r.xid = f.integer("xid");
      r.pci = f.text("pci", false);
      r.xid_action = f.text("xid_action");
      r.boot_id = f.text("boot_id", false);
      r.message = f.text("message", false);
      break;
  }
  return r;
}

}  // namespace

std::string_view to_string(ReportKind k) {
  for (const auto& [kind, name] : kReportKinds)
    if (kind == k) return name;
  return "unknown";
}

// A task's log or a kernel line may hold bytes that are not UTF-8: replaced, never thrown.
std::string encode(const AgentMessage& m) {
  return std::visit(EncodeAgent{}, m).dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string encode(const ServerMessage& m) {
  return std::visit(EncodeServer{}, m).dump(-1, ' ', false, json::error_handler_t::replace);
}

AgentMessage decode_agent_message(std::string_view text) {
  const json j = parse(text);
  const Fields f(j);
  const std::string type = f.text("type");
  if (type == "hello") {
    Hello h;
    h.node = f.text("node");
    h.boot_id = f.text("boot_id");
    h.ip = f.text("ip", false);
    h.ibdev = f.text("ibdev", false);
    h.gpus = f.integer("gpus");
    if (h.gpus < 0) throw ProtocolError("gpus", "gpus must not be negative");
    h.gpu_type = f.text("gpu_type", false);
    h.driver_version = f.text("driver_version", false);
    h.agent_version = f.text("agent_version", false);
    return h;
  }
  if (type == "report") return decode_report(f);
  if (type == "heartbeat") return Heartbeat{};
  if (type == "log") {
    LogData l;
    l.request_id = f.text("request_id");
    l.data = f.text("data", false);
    l.next_offset = f.count("next_offset");
    l.ended = f.boolean("ended", false);
    l.error = f.text("error", false);
    return l;
  }
  if (type == "ack") {
    ActionAck a;
    a.action_id = f.text("action_id");
    a.ok = f.boolean("ok", true);
    a.permanent = f.boolean("permanent", false);
    a.error = f.text("error", false);
    return a;
  }
  throw ProtocolError("type", "unknown message type '" + type + "'");
}

ServerMessage decode_server_message(std::string_view text) {
  const json j = parse(text);
  const Fields f(j);
  const std::string type = f.text("type");
  if (type == "welcome") return Welcome{f.text("node"), f.integer("heartbeat_seconds", 10)};
  if (type == "action") {
    ActionRequest a;
    a.id = f.text("id");
    a.kind = f.text("kind");
    a.job_id = f.text("job_id", false);
    a.task_id = f.text("task_id", false);
    a.payload = f.object("payload");
    return a;
  }
  if (type == "ack") return ReportAck{f.text("report_id")};
  if (type == "log_request") {
    LogRequest r;
    r.request_id = f.text("request_id");
    r.task_id = f.text("task_id");
    r.offset = f.count("offset");
    r.max_bytes = f.count("max_bytes");
    return r;
  }
  throw ProtocolError("type", "unknown message type '" + type + "'");
}

}  // namespace shepherd::protocol
