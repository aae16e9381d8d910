#include "agent/agent.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/private_file.hpp"

namespace shepherd::agent {
namespace {

using nlohmann::json;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A payload field of the expected type, or `fallback`.
template <class T>
T field(const json& payload, const char* name, T fallback) {
  auto it = payload.find(name);
  if (it == payload.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

}  // namespace

std::string credential_path(const std::string& state_dir) {
  return state_dir + "/credential";
}

Agent::Agent(AgentOptions options)
    : options_(std::move(options)),
      run_id_("run" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count())) {
  std::filesystem::create_directories(options_.state_dir);
  // 0700: the credential, the tasks' logs and results are this node's business alone.
  std::filesystem::permissions(options_.state_dir, std::filesystem::perms::owner_all);
  const std::string credential = read_secret_file(credential_path(options_.state_dir));
  const auto colon = credential.find(':');
  if (colon == std::string::npos || colon == 0)
    throw std::runtime_error(credential_path(options_.state_dir) +
                             " is not a node credential (enrol again: shepherd agent enrol)");
  node_ = credential.substr(0, colon);
  if (!options_.name.empty() && options_.name != node_)
    throw std::runtime_error("the credential is node " + node_ + "'s, not " + options_.name + "'s");

  identity_.name = node_;
  identity_.boot_id = read_boot_id(options_.boot_id_file);
  identity_.ip = options_.ip.empty() ? primary_ipv4() : options_.ip;
  identity_.ibdev = list_ib_devices(options_.infiniband_dir);
  const GpuInventory gpus = query_gpus(options_.nvml_library);
  identity_.gpus = gpus.count;
  identity_.gpu_model = gpus.model;
  identity_.driver_version = gpus.driver_version;
  if (!gpus.problem.empty()) spdlog::warn("agent: GPUs: {}", gpus.problem);

  spool_ = std::make_unique<ReportSpool>(options_.state_dir);
  runner_ = std::make_unique<TaskRunner>(
      options_.state_dir, [this](const TaskResult& r) { send_exit(r); }, options_.stop_grace);

  LinkOptions link;
  link.servers = parse_server_urls(options_.server_url);
  link.ca_file = options_.ca_file;
  link.credential = credential;
  link.backoff_base = options_.backoff_base;
  link.backoff_cap = options_.backoff_cap;
  ServerLink::Callbacks callbacks;
  callbacks.hello = [this] { return hello(); };
  callbacks.connected = [this](const protocol::Welcome&) { on_connected(); };
  callbacks.message = [this](const protocol::ServerMessage& m) { on_message(m); };
  link_ = std::make_unique<ServerLink>(link, callbacks);

  if (!options_.kernel_log.empty()) {
    health::XidCatalogue catalogue = health::XidCatalogue::built_in();
    if (!options_.xid_catalogue_file.empty())
      catalogue = catalogue.with_overrides(health::XidCatalogue::from_yaml(
          read_text(options_.xid_catalogue_file), options_.xid_catalogue_file));
    kernel_log_ = std::make_unique<KernelLogFollower>(
        options_.kernel_log, catalogue, options_.xid_burst_window, [this](const XidEvent& x) {
          protocol::Report r;
          // A kernel line is named by its boot and timestamp, so the same line read twice is one
          // report. A line without a timestamp (a test's plain file) by this run and a count.
          const std::string at = x.kernel_usec >= 0
                                     ? std::to_string(x.kernel_usec)
                                     : run_id_ + "-" + std::to_string(++untimed_xids_);
          r.id = "xid:" + identity_.boot_id + ":" + at + ":" + x.pci + ":" + std::to_string(x.xid);
          r.kind = protocol::ReportKind::Xid;
          r.xid = x.xid;
          r.pci = x.pci;
          r.xid_action = std::string(health::to_string(x.action));
          r.boot_id = identity_.boot_id;
          r.message = x.message;
          spdlog::warn("agent: Xid {} on {} ({})", x.xid, x.pci, r.xid_action);
          report(std::move(r));
        });
  }
}

Agent::~Agent() {
  stop();
  if (link_) link_->stop();
  if (kernel_log_) kernel_log_->stop();
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void Agent::run() {
  // A task that ran while no agent watched it is ended now, and its result is sent (TaskRunner).
  for (const auto& r : runner_->recover())
    spdlog::info("agent: result of task {} to send: exit {} signal {} {}", r.task_id, r.exit_code,
                 r.signal, r.note);
  if (kernel_log_) kernel_log_->start();
  link_->start();
  spdlog::info("agent {}: boot {}, {} GPUs, server {}", node_, identity_.boot_id, identity_.gpus,
               options_.server_url);
  std::unique_lock lock(mu_);
  stopped_cv_.wait(lock, [this] { return stopping_; });
}

void Agent::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stopped_cv_.notify_all();
}

protocol::Hello Agent::hello() {
  protocol::Hello h;
  h.node = node_;
  h.boot_id = identity_.boot_id;
  h.ip = identity_.ip;
  h.ibdev = identity_.ibdev;
  h.gpus = identity_.gpus;
  h.gpu_type = identity_.gpu_model;
  h.driver_version = identity_.driver_version;
  h.agent_version = std::string(kAgentVersion);
  return h;
}

// Everything not acknowledged goes again, oldest first; task exits after the other reports (a
// task's start report is older than its exit).
void Agent::on_connected() {
  for (auto& frame : spool_->frames()) link_->send(std::move(frame));
  for (const auto& r : runner_->unacked_results()) send_exit(r);
}

void Agent::on_message(const protocol::ServerMessage& message) {
  if (const auto* action = std::get_if<protocol::ActionRequest>(&message))
    return on_action(*action);
  if (const auto* acked = std::get_if<protocol::ReportAck>(&message)) {
    spool_->remove(acked->report_id);
    if (acked->report_id.rfind("exit:", 0) == 0) runner_->acknowledge(acked->report_id.substr(5));
    return;
  }
  if (const auto* req = std::get_if<protocol::LogRequest>(&message)) {
    protocol::LogData out;
    out.request_id = req->request_id;
    std::uint64_t next = req->offset;
    const std::size_t max =
        static_cast<std::size_t>(std::min<std::uint64_t>(req->max_bytes, 1 << 20));
    if (!safe_task_id(req->task_id) || !std::filesystem::exists(runner_->log_path(req->task_id))) {
      out.error = "no log for task " + req->task_id + " on " + node_;
    } else {
      out.data = runner_->read_log(req->task_id, req->offset, max, &next);
      out.next_offset = next;
      out.ended = !runner_->running(req->task_id);
    }
    link_->send(protocol::encode(protocol::AgentMessage{std::move(out)}));
  }
}

void Agent::on_action(const protocol::ActionRequest& a) {
  spdlog::info("agent: action {} {} {}", a.kind, a.id, a.task_id);
  if (a.kind == "start_task") return start_task(a);
  if (a.kind == "stop_task") {
    runner_->stop(a.task_id);  // not running (ended, or never started here) is done as well
    return ack(a.id, true);
  }
  if (a.kind == "run_diagnostic") return run_diagnostic(a);
  if (a.kind == "reboot") return reboot(a);
  ack(a.id, false, true, "this agent does not know the action kind '" + a.kind + "'");
}

void Agent::start_task(const protocol::ActionRequest& a) {
  TaskSpec spec;
  spec.task_id = a.task_id;
  spec.job_id = a.job_id;
  spec.command = field<std::vector<std::string>>(a.payload, "command", {});
  spec.env = field<std::map<std::string, std::string>>(a.payload, "env", {});
  spec.working_dir = field<std::string>(a.payload, "working_dir", "");
  spec.env["SHEPHERD_IBDEV"] = identity_.ibdev;
  spec.env["SHEPHERD_NODE"] = node_;
  if (spec.command.empty())
    return ack(a.id, false, true, "the job has no command for a real node to run");
  try {
    const bool started = runner_->start(spec);
    ack(a.id, true);
    if (!started) return;  // a repeat: its start was reported already
    protocol::Report r;
    r.id = "start:" + spec.task_id;
    r.kind = protocol::ReportKind::TaskStarted;
    r.task_id = spec.task_id;
    report(std::move(r));
  } catch (const TaskStartError& e) {
    ack(a.id, false, true, e.what());
  }
}

void Agent::run_diagnostic(const protocol::ActionRequest& a) {
  {
    std::lock_guard lock(mu_);
    if (!diagnostics_.insert(a.id).second) return ack(a.id, true);  // running or done: a repeat
  }
  ack(a.id, true);
  const int level = field<int>(a.payload, "level", 1);
  const double timeout = field<double>(a.payload, "timeout_seconds", 900);
  protocol::Report started;
  started.id = "diag-start:" + a.id;
  started.kind = protocol::ReportKind::DiagnosticStarted;
  started.operation_id = a.id;
  report(std::move(started));
  spawn([this, id = a.id, level, timeout] {
    // A little under the server's deadline, so the verdict (a timeout) still reaches it in time.
    const double own_timeout = std::max(1.0, timeout - 5);
    const health::DiagReport result =
        agent::run_diagnostic(options_.diagnostic_command, level, own_timeout);
    protocol::Report r;
    r.id = "diag:" + id;
    r.kind = protocol::ReportKind::DiagnosticFinished;
    r.operation_id = id;
    r.verdict = std::string(to_string(result.verdict));
    r.detail = result.detail;
    r.diagnostic = result.to_json();
    spdlog::info("agent: diagnostic {}: {} {}", id, r.verdict, r.detail);
    report(std::move(r));
  });
}

// The reboot's payload names the boot it is meant to end: if this node has booted since, the
// reboot is done (a repeat after the agent's answer was lost) and must not run again.
void Agent::reboot(const protocol::ActionRequest& a) {
  const std::string of_boot = field<std::string>(a.payload, "boot_id", "");
  if (!of_boot.empty() && of_boot != identity_.boot_id) return ack(a.id, true);
  spawn([this, id = a.id] {
    spdlog::warn("agent: rebooting ({})", id);
    const CommandOutcome out = run_command(options_.reboot_command, std::chrono::seconds(60));
    if (out.not_found) return ack(id, false, true, "reboot command not found: " + out.err);
    if (out.timed_out || out.exit_code != 0)
      return ack(id, false, false,
                 "reboot command failed (exit " + std::to_string(out.exit_code) + "): " + out.err);
    ack(id, true);
  });
}

void Agent::ack(const std::string& action_id, bool ok, bool permanent, const std::string& error) {
  link_->send(protocol::encode(
      protocol::AgentMessage{protocol::ActionAck{action_id, ok, permanent, error}}));
}

void Agent::report(protocol::Report r) {
  const std::string id = r.id;
  std::string frame = protocol::encode(protocol::AgentMessage{std::move(r)});
  spool_->add(id, frame);
  link_->send(std::move(frame));
}

// Exits are spooled by the runner (results/); the report's id is the task's, so a resend after a
// restart is the same report.
void Agent::send_exit(const TaskResult& result) {
  protocol::Report r;
  r.id = "exit:" + result.task_id;
  r.kind = protocol::ReportKind::TaskExited;
  r.task_id = result.task_id;
  r.exit_code = result.exit_code;
  r.signal = result.signal;
  r.interrupted = result.interrupted;
  link_->send(protocol::encode(protocol::AgentMessage{std::move(r)}));
}

void Agent::spawn(std::function<void()> work) {
  std::lock_guard lock(mu_);
  workers_.emplace_back(std::move(work));
}

}  // namespace shepherd::agent
