// `shepherd job|node|task|timeline|cluster`: the HTTP API from a terminal. Each read prints a table
// or text, or with --json the API's JSON as it came; each failure is one line on stderr and exit 1.
#include "cli/client_commands.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "client/api_client.hpp"

namespace shepherd::cli {
namespace {

using client::ApiClient;
using client::ClientError;
using nlohmann::json;

// What every command of a group takes: where the server is, how to prove who we are, and --json.
struct Common {
  client::ClientFlags flags;
  bool json = false;
};

void add_common(CLI::App* cmd, Common& c, bool with_json = true) {
  cmd->add_option("--server", c.flags.server,
                  "API URL, http(s)://HOST:PORT (env SHEPHERD_SERVER; default " +
                      std::string(client::kDefaultServer) + ")");
  cmd->add_option("--token-file", c.flags.token_file,
                  "File holding the admin token (env SHEPHERD_TOKEN_FILE, or SHEPHERD_TOKEN)");
  cmd->add_option("--ca", c.flags.ca_file, "https: the server's CA certificate (env SHEPHERD_CA)");
  if (with_json) cmd->add_flag("--json", c.json, "Print the API's JSON answer");
}

// Ids go into URL paths: refused here, as a usage error, unless the server's rule allows them.
const CLI::Validator kId(
    [](std::string& id) {
      return client::is_path_id(id)
                 ? std::string()
                 : "'" + id + "' is not a valid id: 1 to 128 letters, digits, '.', '_' or '-'";
    },
    "ID");

const CLI::Validator kEnv(
    [](std::string& kv) {
      const auto eq = kv.find('=');
      return eq != std::string::npos && eq > 0 ? std::string()
                                               : "NAME=VALUE wanted, not '" + kv + "'";
    },
    "NAME=VALUE");

// Runs a command's request; a failure is "shepherd: <why>" and exit code 1.
void run_request(int& code, const Common& common, const std::function<void(ApiClient&)>& body) {
  try {
    ApiClient api(client::resolve_client_options(common.flags));
    body(api);
    code = 0;
  } catch (const std::exception& e) {
    std::cerr << "shepherd: " << e.what() << "\n";
    code = 1;
  }
}

void print_json(const json& j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

// A field as table text: "-" when absent or empty, lists joined, no control characters.
std::string cell(const json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key)) return "-";
  const json& v = obj[key];
  std::string out;
  if (v.is_null()) return "-";
  if (v.is_string()) {
    out = v.get<std::string>();
  } else if (v.is_array() &&
             std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x.get<std::string>();
  } else {
    out = v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  for (char& ch : out)
    if (std::iscntrl(static_cast<unsigned char>(ch))) ch = ' ';
  return out.empty() ? "-" : out;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::string& indent = "") {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = indent;
    for (std::size_t i = 0; i < row.size(); ++i)
      out += i + 1 < row.size() ? row[i] + std::string(width[i] - row[i].size() + 2, ' ') : row[i];
    std::cout << out << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
}

// Every field of a record, `key: value`, objects (a node's last_diagnostic) indented below.
void print_fields(const json& obj, const std::string& indent = "") {
  for (const auto& [key, value] : obj.items()) {
    if (value.is_object() && !value.empty()) {
      std::cout << indent << key << ":\n";
      print_fields(value, indent + "  ");
    } else {
      std::cout << indent << key << ": " << cell(obj, key) << "\n";
    }
  }
}

json array_answer(const json& j, const std::string& what) {
  if (!j.is_array()) throw ClientError("the answer to " + what + " is not a list");
  return j;
}

// ---- job ----

struct SubmitArgs {
  std::string id, name, workdir;
  int count = 0;
  double runtime = 0;
  std::vector<std::string> nodes, env, command;
  CLI::Option* count_opt = nullptr;
  CLI::Option* runtime_opt = nullptr;
};

json submit_body(const SubmitArgs& a) {
  json body{{"id", a.id}};
  body["nodes"] = a.count_opt->count() ? json(a.count) : json(a.nodes);
  if (!a.name.empty()) body["name"] = a.name;
  if (!a.command.empty()) body["command"] = a.command;
  if (!a.workdir.empty()) body["working_dir"] = a.workdir;
  if (a.runtime_opt->count()) body["runtime"] = a.runtime;
  if (!a.env.empty()) {
    json env = json::object();
    for (const std::string& kv : a.env) {
      const auto eq = kv.find('=');
      const std::string name = kv.substr(0, eq);
      if (env.contains(name)) throw CLI::ValidationError("--env", name + " is given twice");
      env[name] = kv.substr(eq + 1);
    }
    body["env"] = env;
  }
  return body;
}

void add_job_commands(CLI::App& app, int& code) {
  auto* job = app.add_subcommand("job", "Submit, list, show and stop jobs on a server");
  job->require_subcommand(1);
  auto common = std::make_shared<Common>();
  add_common(job, *common);

  auto* submit = job->add_subcommand(
      "submit", "Submit a job: shepherd job submit ID --nodes N -- COMMAND ARGS...");
  add_common(submit, *common);
  auto args = std::make_shared<SubmitArgs>();
  submit->add_option("id", args->id, "Job id")->required()->check(kId);
  auto* placement = submit->add_option_group("placement", "Where it runs: one of");
  args->count_opt = placement->add_option("--nodes", args->count, "Run on this many free nodes")
                        ->check(CLI::Range(1, 100000));
  placement->add_option("--node", args->nodes, "Run on this node (repeat for more)")
      ->check(kId)
      ->allow_extra_args(false);
  placement->require_option(1);
  submit->add_option("--name", args->name, "Task name");
  submit->add_option("--env", args->env, "NAME=VALUE in the task's environment (repeatable)")
      ->check(kEnv)
      ->allow_extra_args(false);
  submit->add_option("--workdir", args->workdir, "Working directory of the task on its node");
  args->runtime_opt = submit->add_option("--runtime", args->runtime,
                                         "Simulated nodes (shepherd dev): seconds each task runs");
  submit->add_option("command", args->command,
                     "The program and its arguments, after -- (simulated nodes need none)");
  submit->callback([args, common, &code] {
    const json body = submit_body(*args);  // a usage error (exit 2) before any request
    run_request(code, *common, [&](ApiClient& api) {
      const json j = api.post("/api/jobs", body);
      if (common->json) return print_json(j);
      std::cout << "job " << cell(j, "id") << " submitted: " << cell(j, "status") << " on "
                << cell(j, "assigned_nodes") << "\n";
    });
  });

  auto* list = job->add_subcommand("list", "List jobs");
  add_common(list, *common);
  list->callback([common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json jobs = array_answer(api.get("/api/jobs"), "GET /api/jobs");
      if (common->json) return print_json(jobs);
      if (jobs.empty()) return void(std::cout << "no jobs\n");
      std::vector<std::vector<std::string>> rows;
      for (const json& j : jobs)
        rows.push_back({cell(j, "id"), cell(j, "status"), cell(j, "retry"),
                        cell(j, "assigned_nodes"), cell(j, "reason")});
      print_table({"ID", "STATUS", "RETRY", "NODES", "REASON"}, rows);
    });
  });

  auto id = std::make_shared<std::string>();
  auto* show = job->add_subcommand("show", "Show a job and its tasks by attempt and node index");
  add_common(show, *common);
  show->add_option("id", *id, "Job id")->required()->check(kId);
  show->callback([id, common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json j = api.get("/api/jobs/" + client::path_id("job id", *id));
      if (common->json) return print_json(j);
      json fields = j;
      fields.erase("tasks");
      print_fields(fields);
      std::vector<json> tasks;
      if (j.contains("tasks") && j["tasks"].is_array())
        tasks.assign(j["tasks"].begin(), j["tasks"].end());
      auto num = [](const json& t, const char* k) {
        return t.contains(k) && t[k].is_number_integer() ? t[k].get<long long>() : -1;
      };
      std::stable_sort(tasks.begin(), tasks.end(), [&](const json& a, const json& b) {
        return std::pair(num(a, "retry"), num(a, "node_index")) <
               std::pair(num(b, "retry"), num(b, "node_index"));
      });
      for (std::size_t i = 0; i < tasks.size();) {
        const long long attempt = num(tasks[i], "retry");
        std::vector<std::vector<std::string>> rows;
        for (; i < tasks.size() && num(tasks[i], "retry") == attempt; ++i) {
          const json& t = tasks[i];
          rows.push_back({cell(t, "node_index"), cell(t, "id"), cell(t, "node_name"),
                          cell(t, "status"), cell(t, "exit_code"), cell(t, "reason")});
        }
        std::cout << "attempt " << attempt << ":\n";
        print_table({"INDEX", "TASK", "NODE", "STATUS", "EXIT", "REASON"}, rows, "  ");
      }
    });
  });

  auto* stop =
      job->add_subcommand("stop", "Stop a job: its tasks are stopped, it ends USER_STOPPED");
  add_common(stop, *common);
  stop->add_option("id", *id, "Job id")->required()->check(kId);
  stop->callback([id, common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json j = api.post("/api/jobs/" + client::path_id("job id", *id) + "/stop");
      if (common->json) return print_json(j);
      std::cout << "job " << cell(j, "id") << ": " << cell(j, "status") << "\n";
    });
  });
}

// ---- node ----

void add_node_commands(CLI::App& app, int& code) {
  auto* node = app.add_subcommand("node", "List, show, repair, revoke and reenrol nodes");
  node->require_subcommand(1);
  auto common = std::make_shared<Common>();
  add_common(node, *common);
  auto name = std::make_shared<std::string>();

  auto* list = node->add_subcommand("list", "List nodes");
  add_common(list, *common);
  list->callback([common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json nodes = array_answer(api.get("/api/nodes"), "GET /api/nodes");
      if (common->json) return print_json(nodes);
      if (nodes.empty()) return void(std::cout << "no nodes\n");
      std::vector<std::vector<std::string>> rows;
      for (const json& n : nodes)
        rows.push_back({cell(n, "name"), cell(n, "status"), cell(n, "job_id"),
                        cell(n, "last_verdict"), cell(n, "gpus"), cell(n, "node_pool"),
                        cell(n, "reason")});
      print_table({"NAME", "STATUS", "JOB", "VERDICT", "GPUS", "POOL", "REASON"}, rows);
    });
  });

  auto* show = node->add_subcommand("show", "Show a node (with its last diagnostic if any)");
  add_common(show, *common);
  show->add_option("name", *name, "Node name")->required()->check(kId);
  show->callback([name, common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json n = api.get("/api/nodes/" + client::path_id("node name", *name));
      if (common->json) return print_json(n);
      print_fields(n);
    });
  });

  // POST /api/nodes/NAME/<verb>; `done` says what the answer means.
  auto command = [&](const std::string& verb, const std::string& help,
                     std::function<void(const json&)> done) {
    auto* cmd = node->add_subcommand(verb, help);
    add_common(cmd, *common);
    cmd->add_option("name", *name, "Node name")->required()->check(kId);
    cmd->callback([name, common, verb, done, &code] {
      run_request(code, *common, [&](ApiClient& api) {
        const json j = api.post("/api/nodes/" + client::path_id("node name", *name) + "/" + verb);
        if (common->json) return print_json(j);
        done(j);
      });
    });
  };
  command("repair", "Mark a node repaired: it is checked again before it takes work",
          [](const json& j) {
            std::cout << "node " << cell(j, "name") << ": " << cell(j, "status") << "\n";
          });
  command("revoke", "Revoke a node's credentials: its agent can no longer connect",
          [name](const json& j) {
            const bool revoked = j.value("revoked", false);
            std::cout << "node " << *name << (revoked ? ": revoked" : ": not revoked") << "\n";
          });
  command("reenrol",
          "Let a node enrol again (re-installed, credential lost): its credential stops working",
          [name](const json&) {
            std::cout << "node " << *name << ": may enrol again (shepherd agent ... enrol --name "
                      << *name << ")\n";
          });
}

// ---- task ----

void add_task_commands(CLI::App& app, int& code) {
  auto* task = app.add_subcommand("task", "Read tasks' output");
  task->require_subcommand(1);
  auto common = std::make_shared<Common>();
  add_common(task, *common, false);

  auto* logs = task->add_subcommand("logs", "Print a task's output (--follow: until it ends)");
  add_common(logs, *common, false);
  auto id = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  auto offset = std::make_shared<long long>(0);
  logs->add_option("task_id", *id, "Task id (JOB.ATTEMPT.INDEX, see shepherd job show)")
      ->required()
      ->check(kId);
  logs->add_flag("-f,--follow", *follow, "Keep printing new output until the task ends");
  logs->add_option("--offset", *offset, "Start at this byte of the output")
      ->check(CLI::NonNegativeNumber);
  logs->callback([id, follow, offset, common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const std::string path = "/api/tasks/" + client::path_id("task id", *id) + "/logs?offset=";
      long long at = *offset;
      for (;;) {
        std::map<std::string, std::string> headers;
        const std::string text = api.get_text(path + std::to_string(at), &headers);
        std::cout << text << std::flush;
        const auto next = headers.find("x-next-offset");
        if (next == headers.end()) {
          if (*follow) throw ClientError("the server sent no X-Next-Offset: cannot follow");
          return;
        }
        long long next_at = 0;
        try {
          next_at = std::stoll(next->second);
        } catch (const std::exception&) {
          throw ClientError("the server sent a bad X-Next-Offset: " + next->second);
        }
        const bool ended = headers.count("x-task-ended") && headers["x-task-ended"] == "true";
        // Pages until the output read so far is all there is: without --follow, or once ended.
        if (text.empty() || next_at <= at) {
          if (!*follow || ended) return;
          std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        at = std::max(at, next_at);
      }
    });
  });
}

// ---- timeline ----

// A timeline entry about the job itself, or one of its tasks (JOB.ATTEMPT.INDEX: task_id_for).
bool about_job(const json& e, const std::string& job) {
  const std::string kind = cell(e, "kind"), id = cell(e, "id");
  if (kind == "job") return id == job;
  if (kind != "task" || !id.starts_with(job + ".")) return false;
  const std::string rest = id.substr(job.size() + 1);
  const auto dot = rest.find('.');
  auto digits = [](const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; });
  };
  return dot != std::string::npos && digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

void add_timeline_command(CLI::App& app, int& code) {
  auto* timeline = app.add_subcommand(
      "timeline", "Print the timeline of state changes (--job and --node: only theirs)");
  auto common = std::make_shared<Common>();
  add_common(timeline, *common);
  auto job = std::make_shared<std::string>();
  auto node = std::make_shared<std::string>();
  auto since = std::make_shared<long long>(0);
  timeline->add_option("--job", *job, "Only this job and its tasks")->check(kId);
  timeline->add_option("--node", *node, "Only this node")->check(kId);
  timeline->add_option("--since", *since, "Only entries after this sequence number")
      ->check(CLI::NonNegativeNumber);
  timeline->callback([job, node, since, common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      json entries = json::array();
      // The server answers a page at a time; the next page starts after the last entry's seq.
      for (long long after = *since;;) {
        const std::string path = "/api/timeline?since=" + std::to_string(after);
        const json page = array_answer(api.get(path), "GET " + path);
        if (page.empty()) break;
        for (const json& e : page) {
          const bool all = job->empty() && node->empty();
          if (all || (!job->empty() && about_job(e, *job)) ||
              (!node->empty() && cell(e, "kind") == "node" && cell(e, "id") == *node))
            entries.push_back(e);
        }
        const json& last = page.back();
        const long long seq = last.contains("seq") && last["seq"].is_number_integer()
                                  ? last["seq"].get<long long>()
                                  : after;
        if (seq <= after) break;  // a server that does not move on would loop forever
        after = seq;
      }
      if (common->json) return print_json(entries);
      if (entries.empty()) return void(std::cout << "no entries\n");
      std::vector<std::vector<std::string>> rows;
      for (const json& e : entries) {
        char t[32] = "-";
        if (e.contains("t") && e["t"].is_number())
          std::snprintf(t, sizeof t, "%.3f", e["t"].get<double>());
        rows.push_back({cell(e, "seq"), t, cell(e, "kind"), cell(e, "id"), cell(e, "from"),
                        cell(e, "to"), cell(e, "reason")});
      }
      print_table({"SEQ", "T", "KIND", "ID", "FROM", "TO", "REASON"}, rows);
    });
  });
}

// ---- cluster ----

void add_cluster_command(CLI::App& app, int& code) {
  auto* cluster = app.add_subcommand("cluster", "Show the controllers that share the store");
  cluster->require_subcommand(1);
  auto common = std::make_shared<Common>();
  auto* show = cluster->add_subcommand("show", "The controllers, the leader and its epoch");
  add_common(show, *common);
  show->callback([common, &code] {
    run_request(code, *common, [&](ApiClient& api) {
      const json c = api.get("/api/cluster");
      if (common->json) return print_json(c);
      const json leader = c.value("leader", json());
      if (leader.is_object())
        std::cout << "leader " << cell(leader, "name") << " at " << cell(leader, "url")
                  << ", epoch " << cell(leader, "epoch")
                  << (leader.value("lapsed", false) ? " (its lease lapsed: a take-over is due)"
                                                    : "")
                  << "\n";
      else
        std::cout << "no controller leads yet\n";
      std::vector<std::vector<std::string>> rows;
      for (const json& x : c.value("controllers", json::array()))
        rows.push_back({cell(x, "name"), cell(x, "role"), x.value("alive", false) ? "yes" : "no",
                        cell(x, "url"), cell(x, "version")});
      print_table({"NAME", "ROLE", "ALIVE", "URL", "VERSION"}, rows);
    });
  });
}

}  // namespace

void add_client_commands(CLI::App& app, int& code) {
  add_job_commands(app, code);
  add_node_commands(app, code);
  add_task_commands(app, code);
  add_timeline_command(app, code);
  add_cluster_command(app, code);
}

}  // namespace shepherd::cli
