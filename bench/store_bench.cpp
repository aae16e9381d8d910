// Events per second applied durably: Runtime + SqliteStore on a file database (WAL) in a temporary
// directory, and with --mariadb URL the same stream through MariadbStore on that server, N events
// per transaction (Runtime::enqueue + flush), each followed by the dispatch of the new outbox
// actions to a no-op ClusterDriver and Notifier. See bench/README.md.
//
// The events are a realistic stream for a 10,000-node fleet, generated once before any timing by
// a small discrete-event world that drives the engine directly: job submissions, task starts and
// exits, GPU faults -> stopped tasks -> diagnostics -> reboots -> restarts, failed jobs, agent
// reconnects, and re-sent (duplicate) events. The same stream is then replayed for every
// configuration, on a fresh database that first gets the stream's warm-up part (node
// registrations and the first jobs, untimed).
//
//   build-bench/bench/store_bench [--seconds S] [--events N] [--nodes N] [--dir DIR]
//                                 [--batches 1,100,1000] [--sync NORMAL,FULL,none] [--keep]
//                                 [--mariadb mariadb://USER@HOST:PORT/DB]  (password: see README)
#include <spdlog/spdlog.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/runtime.hpp"
#include "store/mariadb_store.hpp"
#include "store/sqlite_store.hpp"

namespace {

using namespace shepherd;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  double seconds = 10;           // timed replay per configuration, at most
  std::size_t events = 300'000;  // timed events generated (after the warm-up)
  int nodes = 10'000;
  std::string dir;    // default: a new directory under $TMPDIR or /tmp
  bool keep = false;  // keep the databases (to inspect them)
  std::vector<std::size_t> batches = {1, 100, 1000};
  std::vector<std::string> syncs = {"NORMAL", "FULL", "none"};  // none: NullStore, no SQLite
  // A MariaDB server: each batch size also runs on MariadbStore ("mariadb" in --sync), in a fresh
  // database <DB>_b<batch> that is dropped afterwards.
  std::string mariadb_url;
};

// The server's endpoint with its password: SHEPHERD_STORE_PASSWORD, else the first line of the
// file SHEPHERD_TEST_MYSQL_PASSWORD_FILE names (what scripts/test's private server writes).
shepherd::mariadb::Endpoint bench_mariadb(const std::string& url, const std::string& database) {
  auto e = shepherd::mariadb::parse_url(url);
  if (const char* pw = std::getenv("SHEPHERD_STORE_PASSWORD"); pw && *pw) {
    e.password = pw;
  } else if (const char* file = std::getenv("SHEPHERD_TEST_MYSQL_PASSWORD_FILE"); file && *file) {
    std::ifstream in(file);
    std::getline(in, e.password);
  }
  if (!database.empty()) {
    auto server = e;
    server.database.clear();  // the URL's database need not exist
    shepherd::mariadb::Connection admin(server);
    auto flush = admin.query_with("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit");
    if (flush.empty() || flush[0][0].value_or("") != "1")
      throw std::runtime_error(url + ": innodb_flush_log_at_trx_commit is not 1: not durable");
    admin.exec("DROP DATABASE IF EXISTS " + database);
    admin.exec("CREATE DATABASE " + database);
    e.database = database;
  }
  return e;
}

Policy bench_policy() {
  Policy p;
  p.max_retries = 3;
  return p;
}

// ---------------------------------------------------------------------------------------------
// The event stream: a small simulated fleet on virtual time, driving the engine directly (decide,
// then apply to a Snapshot as the runtime does) and reacting to the actions it decides.

class StreamGenerator {
 public:
  StreamGenerator(int nodes, unsigned seed) : engine_(bench_policy(), "bench"), rng_(seed) {
    for (int i = 1; i <= nodes; ++i) {
      const std::string name = "node-" + std::to_string(i);
      names_.push_back(name);
      emit(NodeRegistered{name,
                          "boot-0",
                          "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256),
                          "mlx5_0",
                          8,
                          {},
                          {}});
    }
    capacity_ = nodes * 9 / 10;  // keep about 90 % of the fleet busy
    fill();
    // GPU faults: about 120 per virtual hour, each on a random node running a task.
    schedule_fault();
    // Node agents restarting (same boot id): about 60 per virtual hour.
    schedule_reconnect();
  }

  // Runs the world until virtual time `until` (ms) or until `count` events were produced.
  void run(TimeMs until, std::size_t count) {
    while (!agenda_.empty() && agenda_.top().at <= until && out.size() < count) {
      Item item = agenda_.top();
      agenda_.pop();
      now_ = item.at;
      item.run();
    }
  }
  TimeMs now() const { return now_; }

  std::vector<Event> out;

 private:
  struct SimNode {
    std::string task;  // the task process running there
    bool broken = false;
    int boots = 0;
  };
  struct Item {
    TimeMs at;
    std::uint64_t seq;
    std::function<void()> run;
  };
  struct Later {
    bool operator()(const Item& a, const Item& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  void at(TimeMs t, std::function<void()> fn) { agenda_.push(Item{t, ++seq_, std::move(fn)}); }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  TimeMs exponential_ms(double per_hour) {
    return static_cast<TimeMs>(std::exponential_distribution<double>(per_hour)(rng_) * 3.6e6) + 1;
  }

  // Decides and applies one event; false if it was refused (it is then not part of the stream).
  bool emit(EventBody body) {
    Event e{"ev-" + std::to_string(out.size() + 1), now_, std::move(body)};
    Decision d = engine_.decide(e, snap_);
    if (d.rejection) return false;
    for (Job j : d.jobs) ++j.version, snap_.put(j);
    for (Task t : d.tasks) ++t.version, snap_.put(t);
    for (Node n : d.nodes) ++n.version, snap_.put(n);
    out.push_back(e);
    for (const auto& t : d.transitions)
      if (t.entity == Entity::Job && (t.to == "COMPLETE" || t.to == "FAILED")) job_ended(t.id);
    for (const auto& a : d.actions) react(a);
    // At-least-once delivery: about 1 % of the reports arrive a second time, a little later.
    if (std::uniform_int_distribution<int>(0, 99)(rng_) == 0)
      at(now_ + uniform(1, 60) * 1000, [this, e] { out.push_back(e); });
    return true;
  }

  void react(const Action& a) {
    const std::string node = a.node, task = a.task_id, job = a.job_id;
    switch (a.kind) {
      case ActionKind::StartTask:
        at(now_ + 5000, [this, node, task, job] {
          SimNode& n = world_[node];
          const Task* t = snap_.task(task);
          if (!n.task.empty() || !t || t->status != TaskStatus::InProgress) return;
          n.task = task;
          emit(TaskStarted{task, {}});
          if (n.broken) return exit_later(node, task, 10'000, 1, 0);
          exit_later(node, task, runtime_[job], 0, 0);
        });
        return;
      case ActionKind::StopTask:
        if (world_[node].task == task) exit_later(node, task, 1000, 143, 15);
        return;
      case ActionKind::RunDiagnostic: {
        const std::string op = a.id;
        at(now_ + 1000, [this, node, op] { emit(DiagnosticStarted{node, op}); });
        at(now_ + 120'000, [this, node, op] {
          const bool broken = world_[node].broken;
          emit(DiagnosticFinished{node,
                                  op,
                                  broken ? Verdict::Fail : Verdict::Pass,
                                  broken ? "gpu 0: Diagnostic/memtest: fail (DCGM error 83)" : "",
                                  {}});
        });
        return;
      }
      case ActionKind::Reboot:
        world_[node].task.clear();
        at(now_ + 300'000, [this, node] {
          SimNode& n = world_[node];
          n.broken = false;
          emit(NodeRegistered{node, "boot-" + std::to_string(++n.boots), "", "", 0, {}, {}});
        });
        return;
      case ActionKind::Notify:
        return;
    }
  }

  void exit_later(const std::string& node, const std::string& task, TimeMs after, int code,
                  int signal) {
    at(now_ + after, [this, node, task, code, signal] {
      SimNode& n = world_[node];
      if (n.task != task) return;  // already gone (stopped, rebooted)
      n.task.clear();
      emit(TaskExited{task, code, signal, {}, false});
    });
  }

  // Submits jobs (1-32 nodes, 1-6 h per attempt) while the fleet has room for them.
  void fill() {
    static constexpr int kSizes[] = {1, 2, 4, 4, 8, 8, 8, 16, 16, 32};
    while (true) {
      const int size = kSizes[uniform(0, 9)];
      if (busy_ + size > capacity_ || snap_.available_nodes(size).size() < std::size_t(size))
        return;
      TaskDefinition def;
      def.name = "pretrain";
      def.command = {"torchrun", "--nproc-per-node=8", "train.py"};
      def.env = {{"NCCL_IB_HCA", "mlx5"}};
      def.runtime_seconds = uniform(3600, 6 * 3600);
      const std::string id = "job-" + std::to_string(++jobs_);
      runtime_[id] = static_cast<TimeMs>(def.runtime_seconds * 1000);
      if (!emit(JobSubmitted{id, {}, size, def})) return;
      busy_ += size;
      sizes_[id] = size;
    }
  }

  void job_ended(const std::string& id) {
    busy_ -= sizes_[id];
    at(now_ + 30'000, [this] { fill(); });
  }

  void schedule_fault() {
    at(now_ + exponential_ms(120), [this] {
      for (int tries = 0; tries < 100; ++tries) {
        const std::string& name = names_[std::size_t(uniform(0, int(names_.size()) - 1))];
        SimNode& n = world_[name];
        if (n.task.empty()) continue;
        n.broken = true;
        exit_later(name, n.task, 0, 1, 0);
        break;
      }
      schedule_fault();
    });
  }

  void schedule_reconnect() {
    at(now_ + exponential_ms(60), [this] {
      const std::string& name = names_[std::size_t(uniform(0, int(names_.size()) - 1))];
      emit(NodeRegistered{name, snap_.node(name)->boot_id, "", "", 8, {}, {}});
      schedule_reconnect();
    });
  }

  Engine engine_;
  Snapshot snap_;
  std::mt19937_64 rng_;
  std::priority_queue<Item, std::vector<Item>, Later> agenda_;
  std::uint64_t seq_ = 0;
  TimeMs now_ = 0;
  std::vector<std::string> names_;
  std::unordered_map<std::string, SimNode> world_;
  std::unordered_map<std::string, TimeMs> runtime_;
  std::unordered_map<std::string, int> sizes_;
  int capacity_ = 0, busy_ = 0, jobs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The replay.

class NoopDriver final : public ImmediateClusterDriver {
 public:
  void carry_out(const Action&) override {}
};
class NoopNotifier final : public ImmediateNotifier {
 public:
  void deliver(const Action&) override {}
};

// For comparison only (sync "none"): a Store that keeps nothing durable, so the Runtime's own cost
// (decide, cache, outbox bookkeeping) shows without SQLite's. Event keys are kept in memory so
// duplicates behave as with the real store; the runtime delivers actions from its own memory.
class NullStore final : public Store {
 public:
  void load(Snapshot&) override {}
  std::unordered_set<std::string> known_events(const std::vector<std::string>& keys) override {
    std::unordered_set<std::string> known;
    for (const auto& k : keys)
      if (keys_.count(k)) known.insert(k);
    return known;
  }
  void commit(const std::vector<Commit>& batch, const std::vector<std::string>&) override {
    for (const Commit& c : batch)
      if (!c.duplicate) keys_.insert(c.event_key);
  }
  std::vector<PendingAction> pending_actions(TimeMs, std::size_t) override { return {}; }
  void mark_actions_done(const std::vector<std::string>&) override {}
  void mark_action_failed(const std::string&, const std::string&, TimeMs) override {}
  void mark_action_dead(const std::string&, const std::string&, TimeMs) override {}
  std::vector<PendingAction> dead_letters(std::size_t) override { return {}; }
  std::optional<PendingAction> revive_action(const std::string&, TimeMs) override { return {}; }
  std::vector<TimelineEntry> timeline(std::int64_t, std::size_t) override { return {}; }
  std::int64_t duplicate_events() override { return 0; }
  std::int64_t begin_incarnation(TimeMs) override { return ++incarnations; }
  std::int64_t incarnations = 0;
  int schema_version() override { return 0; }

 private:
  std::unordered_set<std::string> keys_;
};

struct Result {
  std::size_t events = 0, batches = 0, transitions = 0, actions = 0, duplicates = 0;
  double commit_s = 0, dispatch_s = 0;
  std::uintmax_t db_bytes = 0;
};

double since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

void drain(Runtime& rt, TimeMs now) {
  constexpr std::size_t kLimit = 4096;
  while (rt.dispatch(now, kLimit) == kLimit) {
  }
}

Result replay(const std::vector<Event>& stream, std::size_t warmup, const std::string& path,
              const std::string& sync, std::size_t batch, double seconds,
              const std::string& mariadb_url) {
  std::unique_ptr<Store> owned;
  if (sync == "mariadb") {
    shepherd::MariadbOptions mo;
    mo.endpoint = bench_mariadb(mariadb_url, shepherd::mariadb::parse_url(mariadb_url).database +
                                                 "_b" + std::to_string(batch));
    owned = std::make_unique<shepherd::MariadbStore>(mo);
  } else if (sync == "none") {
    owned = std::make_unique<NullStore>();
  } else {
    SqliteOptions so;
    so.synchronous = sync;
    auto sqlite = std::make_unique<SqliteStore>(path, so);
    if (sqlite->journal_mode() != "wal") throw std::runtime_error(path + ": not in WAL mode");
    owned = std::move(sqlite);
  }
  Store& store = *owned;
  NoopDriver driver;
  NoopNotifier notifier;
  Result r;
  RuntimeHooks hooks;
  bool timing = false;
  hooks.on_transition = [&](const Transition&) { r.transitions += timing; };
  hooks.on_delivered = [&](const Action&, TimeMs) { r.actions += timing; };
  Runtime rt(store, driver, notifier, Engine(bench_policy(), "bench"), hooks);
  rt.start();

  // Warm-up, untimed: the fleet registers and the first jobs start.
  for (std::size_t i = 0; i < warmup; i += 1000) {
    const std::size_t end = std::min(warmup, i + 1000);
    for (std::size_t k = i; k < end; ++k) rt.enqueue(stream[k]);
    rt.flush();
    drain(rt, stream[end - 1].at);
  }

  timing = true;
  const std::uint64_t duplicates_before = rt.counters().duplicates;
  const auto start = SteadyClock::now();
  for (std::size_t i = warmup; i < stream.size() && since(start) < seconds; i += batch) {
    const std::size_t end = std::min(stream.size(), i + batch);
    for (std::size_t k = i; k < end; ++k) rt.enqueue(stream[k]);
    const auto t0 = SteadyClock::now();
    rt.flush();
    const auto t1 = SteadyClock::now();
    drain(rt, stream[end - 1].at);
    r.commit_s += std::chrono::duration<double>(t1 - t0).count();
    r.dispatch_s += since(t1);
    r.events += end - i;
    ++r.batches;
  }
  r.duplicates = rt.counters().duplicates - duplicates_before;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path + suffix, ec);
    if (!ec) r.db_bytes += size;
  }
  return r;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--seconds") {
      o.seconds = std::stod(value());
    } else if (arg == "--events") {
      o.events = std::stoul(value());
    } else if (arg == "--nodes") {
      o.nodes = std::stoi(value());
    } else if (arg == "--dir") {
      o.dir = value();
    } else if (arg == "--batches") {
      o.batches.clear();
      for (const auto& b : split(value())) o.batches.push_back(std::stoul(b));
    } else if (arg == "--keep") {
      o.keep = true;
    } else if (arg == "--sync") {
      o.syncs = split(value());
    } else if (arg == "--mariadb") {
      o.mariadb_url = value();
    } else {
      throw std::runtime_error(
          "usage: store_bench [--seconds S] [--events N] [--nodes N] [--dir DIR] "
          "[--batches 1,100,1000] [--sync NORMAL,FULL,none,mariadb] [--keep] [--mariadb URL]");
    }
  }
  const bool wants_mariadb = std::count(o.syncs.begin(), o.syncs.end(), "mariadb") > 0;
  if (!o.mariadb_url.empty() && !wants_mariadb) o.syncs.push_back("mariadb");
  if (wants_mariadb && o.mariadb_url.empty())
    throw std::runtime_error("--sync mariadb needs --mariadb URL");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);

  namespace fs = std::filesystem;
  fs::path dir = opt.dir;
  bool remove_dir = false;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/store_bench.XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    dir = tmpl;
    remove_dir = true;
  }
  fs::create_directories(dir);
  struct statfs fsinfo {};
  const bool tmpfs = statfs(dir.c_str(), &fsinfo) == 0 && fsinfo.f_type == 0x01021994;

  std::printf("generating the event stream (%d nodes, %zu timed events) ...\n", opt.nodes,
              opt.events);
  const auto g0 = SteadyClock::now();
  StreamGenerator gen(opt.nodes, 42);
  gen.run(15 * 60 * 1000, SIZE_MAX);  // warm-up: registrations, first jobs running
  const std::size_t warmup = gen.out.size();
  gen.run(INT64_MAX, warmup + opt.events);
  const std::vector<Event>& stream = gen.out;
  std::map<std::string, std::size_t> kinds;
  for (std::size_t i = warmup; i < stream.size(); ++i)
    ++kinds[std::string(event_kind(stream[i].body))];
  std::printf("  %.1f s: %zu warm-up events, then %zu timed events over %.1f virtual hours:\n",
              since(g0), warmup, stream.size() - warmup,
              static_cast<double>(gen.now() - 15 * 60 * 1000) / 3.6e6);
  for (const auto& [kind, n] : kinds)
    std::printf("    %-20s %7zu  %5.1f %%\n", kind.c_str(), n,
                100.0 * static_cast<double>(n) / static_cast<double>(stream.size() - warmup));

  std::printf("database directory: %s%s\n", dir.c_str(),
              tmpfs ? "  (WARNING: tmpfs, fsync costs nothing: not a durable figure)" : "");
  std::printf(
      "each configuration: a fresh WAL database, the warm-up untimed, then the timed "
      "events for at most %.0f s\n\n",
      opt.seconds);
  std::printf("%-7s %6s %8s %8s %8s %8s %11s %11s %11s %8s\n", "sync", "batch", "events",
              "trans/ev", "acts/ev", "dups", "commit ev/s", "+dispatch", "ms/batch", "db MiB");
  std::map<std::pair<std::string, std::size_t>, double> rates;  // (sync, batch) -> +dispatch ev/s
  for (const auto& sync : opt.syncs) {
    for (std::size_t batch : opt.batches) {
      const std::string path = (dir / ("bench-" + sync + "-" + std::to_string(batch) + ".db"));
      ::sync();  // the last configuration's writes reach the disk now, not during this one's timing
      Result r = replay(stream, warmup, path, sync, batch, opt.seconds, opt.mariadb_url);
      const double ev = static_cast<double>(r.events);
      rates[{sync, batch}] = ev / (r.commit_s + r.dispatch_s);
      std::printf("%-7s %6zu %8zu %8.2f %8.2f %8zu %11.0f %11.0f %11.2f %8.1f\n", sync.c_str(),
                  batch, r.events, static_cast<double>(r.transitions) / ev,
                  static_cast<double>(r.actions) / ev, r.duplicates, ev / r.commit_s,
                  ev / (r.commit_s + r.dispatch_s),
                  1000.0 * (r.commit_s + r.dispatch_s) / static_cast<double>(r.batches),
                  static_cast<double>(r.db_bytes) / (1 << 20));
      std::fflush(stdout);
      if (!opt.keep)
        for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
      if (sync == "mariadb" && !opt.keep) {
        auto e = bench_mariadb(opt.mariadb_url, "");
        const std::string database = e.database + "_b" + std::to_string(batch);
        e.database.clear();
        shepherd::mariadb::Connection(e).exec("DROP DATABASE IF EXISTS " + database);
      }
    }
  }
  if (rates.count({"mariadb", opt.batches.front()}) && rates.count({"FULL", opt.batches.front()})) {
    std::printf("\nMariaDB / SQLite FULL, +dispatch ev/s (same stream, both durable):\n");
    for (std::size_t batch : opt.batches)
      std::printf("  batch %5zu: %8.0f / %8.0f = %.2f\n", batch, rates[{"mariadb", batch}],
                  rates[{"FULL", batch}], rates[{"mariadb", batch}] / rates[{"FULL", batch}]);
  }
  std::printf(
      "\ncommit ev/s: events / time in Runtime::flush() (decide + one SQLite transaction);\n"
      "+dispatch: events / (flush + dispatch of the new outbox actions to a no-op driver)\n"
      "sync mariadb: MariadbStore on the --mariadb server (innodb_flush_log_at_trx_commit=1;\n"
      "db MiB not measured)\n"
      "sync none: the same Runtime over an in-memory store that writes nothing (no SQLite), for\n"
      "comparison: what the engine and runtime cost without the database\n");
  if (remove_dir && !opt.keep) fs::remove_all(dir);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "store_bench: %s\n", e.what());
  return 1;
}
