#pragma once
// `shepherd agent`: the daemon on each GPU node. It keeps one connection to the server, carries out
// the engine's actions (start and stop tasks, run the diagnostic, reboot), and reports what happens
// on the node (task starts and exits, diagnostics, kernel Xids), each report kept on disk until the
// server has committed it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/diagnostic_runner.hpp"
#include "agent/identity.hpp"
#include "agent/kernel_log.hpp"
#include "agent/report_spool.hpp"
#include "agent/server_link.hpp"
#include "agent/task_runner.hpp"

namespace shepherd::agent {

inline constexpr std::string_view kAgentVersion = "0.1.0";

struct AgentOptions {
  std::string name;        // the node's name; "" : the credential's
  std::string server_url;  // https://HOST:PORT, or several controllers' comma-separated
  std::string ca_file;
  std::string state_dir = "/var/lib/shepherd-agent";  // credential, spools, task logs
  std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
  std::string ip;  // "" : the first IPv4 address of an interface that is up
  std::string infiniband_dir = "/sys/class/infiniband";
  std::string nvml_library = "libnvidia-ml.so.1";
  std::vector<std::string> diagnostic_command = kDefaultDiagCommand;
  std::vector<std::string> reboot_command = {"systemctl", "reboot"};
  std::string kernel_log = "/dev/kmsg";  // "" : Xids are not followed
  std::string xid_catalogue_file;        // "" : the built-in catalogue only
  std::chrono::milliseconds xid_burst_window{60'000};
  std::chrono::milliseconds stop_grace{10'000};
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_cap{60'000};
};

// Where the node's credential is kept ("<node>:<secret>", mode 0600).
std::string credential_path(const std::string& state_dir);

class Agent {
 public:
  explicit Agent(AgentOptions options);  // throws std::runtime_error (no credential, bad CA, ...)
  ~Agent();

  // Runs until stop() (from a signal's thread).
  void run();
  void stop();

 private:
  protocol::Hello hello();
  void on_connected();
  void on_message(const protocol::ServerMessage& message);
  void on_action(const protocol::ActionRequest& action);
  void start_task(const protocol::ActionRequest& action);
  void run_diagnostic(const protocol::ActionRequest& action);
  void reboot(const protocol::ActionRequest& action);
  void ack(const std::string& action_id, bool ok, bool permanent = false,
           const std::string& error = "");
  void report(protocol::Report report);  // spooled, then sent
  void send_exit(const TaskResult& result);
  void spawn(std::function<void()> work);  // a worker thread, joined at the end

  AgentOptions options_;
  std::string node_;
  NodeIdentity identity_;
  std::unique_ptr<ReportSpool> spool_;
  // Names Xid reports from lines without a kernel timestamp: this run's start and a count.
  std::string run_id_;
  std::atomic<std::uint64_t> untimed_xids_{0};
  std::unique_ptr<TaskRunner> runner_;
  std::unique_ptr<KernelLogFollower> kernel_log_;
  std::unique_ptr<ServerLink> link_;

  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopping_ = false;
  std::set<std::string> diagnostics_;  // operation ids run (or running) by this agent
  std::vector<std::thread> workers_;
};

}  // namespace shepherd::agent
