#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "scenario/scenario.hpp"

namespace shepherd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = ScenarioEvent::Kind;

const std::string kQuickstart =
    std::string(SHEPHERD_SOURCE_DIR) + "/examples/scenarios/quickstart.yaml";

// The error message parse_scenario gives for `yaml`, or "" when it parses.
std::string error_of(const std::string& yaml) {
  try {
    parse_scenario(yaml, "t.yaml");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

// Found by fuzz/scenario_fuzz.cpp: yaml-cpp 0.7 never returned on this input (a raw NUL byte).
TEST(ScenarioParse, RawNulByteIsRefusedNotHung) {
  const std::string text =
      std::string("# a comment\n8\0\0\0\0seed: 2\n", 23) + "cluster: {nodes: 1}\n";
  EXPECT_THAT(error_of(text), HasSubstr("t.yaml:2: the file contains a NUL byte"));
}

TEST(ScenarioParse, QuickstartExample) {
  const Scenario s = load_scenario(kQuickstart);
  EXPECT_EQ(s.file, kQuickstart);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.until, 86400);
  EXPECT_EQ(s.policy.max_retries, 1);
  EXPECT_EQ(s.policy.diag_level, 1);
  EXPECT_EQ(s.policy.diag_timeout, 900);
  EXPECT_EQ(s.policy.reboot_timeout, 1200);
  EXPECT_EQ(s.policy.heartbeat_timeout, Policy{}.heartbeat_timeout);
  EXPECT_THAT(s.cluster.nodes, ElementsAre("node-1", "node-2", "node-3", "node-4"));
  EXPECT_EQ(s.cluster.gpus_per_node, 8);
  EXPECT_EQ(s.cluster.reboot_seconds, 300);
  EXPECT_EQ(s.cluster.diag_seconds, 120);
  EXPECT_EQ(s.cluster.task_start_seconds, 5);

  ASSERT_EQ(s.jobs.size(), 2u);
  EXPECT_EQ(s.jobs[0].id, "train-a");
  EXPECT_THAT(s.jobs[0].nodes, ElementsAre("node-1", "node-2"));
  EXPECT_EQ(s.jobs[0].node_count, 2);
  EXPECT_FALSE(s.jobs[0].any_nodes());
  EXPECT_EQ(s.jobs[0].runtime, 3600);
  EXPECT_EQ(s.jobs[0].submit_at, 0);
  EXPECT_EQ(s.jobs[1].id, "train-b");
  EXPECT_TRUE(s.jobs[1].any_nodes());
  EXPECT_EQ(s.jobs[1].node_count, 2);
  EXPECT_EQ(s.jobs[1].runtime, 7200);
  EXPECT_EQ(s.jobs[1].submit_at, 60);

  ASSERT_EQ(s.events.size(), 8u);
  const auto& e = s.events;
  EXPECT_EQ(e[0].at, 600);
  EXPECT_EQ(e[0].kind, Kind::GpuFault);
  EXPECT_EQ(e[0].node, "node-1");
  EXPECT_EQ(e[0].line, 13);
  EXPECT_EQ(e[1].kind, Kind::GpuPersistentFault);
  EXPECT_EQ(e[1].node, "node-3");
  EXPECT_EQ(e[2].kind, Kind::AppFault);
  EXPECT_EQ(e[2].job, "train-b");
  EXPECT_EQ(e[2].node, "node-4");
  EXPECT_EQ(e[2].exit_code, 1);
  EXPECT_EQ(e[3].kind, Kind::ExitCode);
  EXPECT_EQ(e[3].exit_code, 137);
  EXPECT_EQ(e[3].node, "node-2");
  EXPECT_EQ(e[4].kind, Kind::RebootHang);
  EXPECT_EQ(e[5].kind, Kind::DiagHang);
  EXPECT_EQ(e[6].kind, Kind::AgentLost);
  EXPECT_EQ(e[6].duration, 0);
  EXPECT_EQ(e[7].at, 2000);
  EXPECT_EQ(e[7].kind, Kind::StopJob);
  EXPECT_EQ(e[7].job, "train-a");
  EXPECT_FALSE(e[7].is_fault());
  EXPECT_TRUE(s.expect.empty());
}

TEST(ScenarioParse, DefaultsForAMinimalFile) {
  const Scenario s = parse_scenario("cluster: {nodes: 1}\n", "min.yaml");
  EXPECT_EQ(s.file, "min.yaml");
  EXPECT_EQ(s.seed, 1u);
  EXPECT_EQ(s.until, 86400);
  EXPECT_EQ(s.policy.max_retries, Policy{}.max_retries);
  EXPECT_EQ(s.policy.diag_timeout, Policy{}.diag_timeout);
  EXPECT_THAT(s.cluster.nodes, ElementsAre("node-1"));
  EXPECT_TRUE(s.jobs.empty());
  EXPECT_TRUE(s.events.empty());
}

TEST(ScenarioParse, NodesAsAListKeepTheNames) {
  const Scenario s = parse_scenario(R"(
cluster:
  nodes: [gpu-a, gpu-b, gpu-c]
jobs:
  - id: j
    nodes: [gpu-c]
  - {id: k, nodes: 3}
events:
  - {at: 1.5, fault: agent_lost, node: gpu-b, duration: 30}
)",
                                    "list.yaml");
  EXPECT_THAT(s.cluster.nodes, ElementsAre("gpu-a", "gpu-b", "gpu-c"));
  EXPECT_THAT(s.jobs[0].nodes, ElementsAre("gpu-c"));
  EXPECT_EQ(s.jobs[1].node_count, 3);
  EXPECT_EQ(s.events[0].at, 1.5);
  EXPECT_EQ(s.events[0].duration, 30);
}

TEST(ScenarioParse, NodeCountExpands) {
  const Scenario s = parse_scenario("cluster: {nodes: 12}\n", "n.yaml");
  ASSERT_EQ(s.cluster.nodes.size(), 12u);
  EXPECT_EQ(s.cluster.nodes.front(), "node-1");
  EXPECT_EQ(s.cluster.nodes.back(), "node-12");
}

TEST(ScenarioParse, PolicyAndExpectBlocks) {
  const Scenario s = parse_scenario(R"(
policy:
  max_retries: 3
  diag_level: 4
  diag_timeout: 60
  reboot_timeout: 600.5
  heartbeat_timeout: 30
  start_timeout: 45
  app_exit_codes: [2, 137]
cluster: {nodes: 2, gpus_per_node: 4, reboot_seconds: 0, diag_seconds: 10, task_start_seconds: 1}
jobs: [{id: a, nodes: 1}]
events:
expect:
  jobs: {a: COMPLETE}
  nodes: {node-1: AVAILABLE, node-2: FAILED}
  job_retries: {a: 1}
  notifications: 2
  stats: {reboots: 1, diagnostics: 2, restarts: 0}
)",
                                    "p.yaml");
  EXPECT_EQ(s.policy.max_retries, 3);
  EXPECT_EQ(s.policy.diag_level, 4);
  EXPECT_EQ(s.policy.diag_timeout, 60);
  EXPECT_EQ(s.policy.reboot_timeout, 600.5);
  EXPECT_EQ(s.policy.heartbeat_timeout, 30);
  EXPECT_EQ(s.policy.start_timeout, 45);
  EXPECT_THAT(s.policy.app_exit_codes, ElementsAre(2, 137));
  EXPECT_EQ(s.cluster.gpus_per_node, 4);
  EXPECT_EQ(s.cluster.reboot_seconds, 0);
  EXPECT_EQ(s.cluster.task_start_seconds, 1);
  EXPECT_TRUE(s.events.empty());
  EXPECT_EQ(s.expect.jobs.at("a"), "COMPLETE");
  EXPECT_EQ(s.expect.nodes.at("node-2"), "FAILED");
  EXPECT_EQ(s.expect.job_retries.at("a"), 1);
  EXPECT_EQ(s.expect.notifications, 2);
  EXPECT_EQ(s.expect.reboots, 1);
  EXPECT_EQ(s.expect.diagnostics, 2);
  EXPECT_EQ(s.expect.restarts, 0);
  EXPECT_FALSE(s.expect.empty());
}

TEST(ScenarioParse, EventKindWordsRoundTrip) {
  for (Kind k : {Kind::GpuFault, Kind::GpuPersistentFault, Kind::AppFault, Kind::ExitCode,
                 Kind::RebootHang, Kind::DiagHang, Kind::AgentLost, Kind::StopJob})
    EXPECT_EQ(parse_event_kind(to_string(k)), k);
  EXPECT_EQ(parse_event_kind("meteor"), std::nullopt);
}

TEST(ScenarioParse, ErrorCarriesItsParts) {
  try {
    parse_scenario("cluster: {nodes: 2}\nevents:\n  - {at: 1, fault: gpu, node: node-9}\n",
                   "x.yaml");
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(std::string(e.what()),
              "x.yaml:3: events[0].node: 'node-9' is not a node of the cluster");
    EXPECT_EQ(e.file(), "x.yaml");
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.path(), "events[0].node");
  }
}

TEST(ScenarioParse, MissingFileNamesThePath) {
  EXPECT_THROW(
      {
        try {
          load_scenario("/nonexistent/s.yaml");
        } catch (const ScenarioError& e) {
          EXPECT_THAT(e.what(), HasSubstr("/nonexistent/s.yaml: cannot open"));
          throw;
        }
      },
      ScenarioError);
}

// Error cases: the text after a fixed head, the expected "t.yaml:LINE: PATH" prefix and a part
// of the problem.
constexpr const char* kHead =
    "cluster: {nodes: 4}\n"                   // 1
    "jobs:\n"                                 // 2
    "  - {id: a, nodes: [node-1, node-2]}\n"  // 3
    "  - {id: b, nodes: 2}\n";                // 4

struct ErrorCase {
  const char* name;
  std::string yaml;
  std::string where;    // "t.yaml:LINE: PATH"
  std::string problem;  // a part of the message after it
};

// gtest prints a failing case's name, not its bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

class ScenarioErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ScenarioErrors, NameFileLineAndField) {
  const ErrorCase& c = GetParam();
  const std::string msg = error_of(c.yaml);
  EXPECT_THAT(msg, HasSubstr(c.where + ": ")) << c.yaml;
  EXPECT_THAT(msg, HasSubstr(c.problem)) << c.yaml;
  EXPECT_EQ(msg.rfind("t.yaml:", 0), 0u) << msg;
}

std::string head(const std::string& rest) {
  return kHead + rest;
}

const ErrorCase kErrorCases[] = {
    {"UnknownEventNode",
     head("events:\n  - {at: 1, fault: gpu, node: node-1}\n  - {at: 2, fault: gpu, node: node-2}\n"
          "  - {at: 3, fault: gpu, node: node-9}\n"),
     "t.yaml:8: events[2].node", "'node-9' is not a node of the cluster"},
    {"UnknownTopKey", head("\nsede: 4\n"), "t.yaml:6: sede", "unknown key"},
    {"UnknownClusterKey", "cluster:\n  nodes: 2\n  gpu_per_node: 8\n",
     "t.yaml:3: cluster.gpu_per_node", "unknown key"},
    {"UnknownJobKey", "cluster: {nodes: 2}\njobs:\n  - {id: a, nodes: 1, runtim: 5}\n",
     "t.yaml:3: jobs[0].runtim", "unknown key"},
    {"MissingCluster", "seed: 1\njobs: []\n", "t.yaml:1: cluster", "required field is missing"},
    {"MissingClusterNodes", "seed: 1\ncluster:\n  gpus_per_node: 8\n", "t.yaml:2: cluster.nodes",
     "required field is missing"},
    {"MissingJobId", "cluster: {nodes: 2}\njobs:\n  - {id: a, nodes: 1}\n  - {nodes: 1}\n",
     "t.yaml:4: jobs[1].id", "required field is missing"},
    {"MissingJobIdBlock", "cluster: {nodes: 2}\njobs:\n  - nodes: 1\n    runtime: 5\n",
     "t.yaml:3: jobs[0].id", "required field is missing"},
    {"MissingAt", head("events:\n  - {fault: gpu, node: node-1}\n"), "t.yaml:6: events[0].at",
     "required field is missing"},
    {"MissingStopJobJob", head("events:\n  - {at: 5, action: stop_job}\n"),
     "t.yaml:6: events[0].job", "required field is missing"},
    {"MissingFaultNode", head("events:\n  - {at: 5, fault: diag_hang}\n"),
     "t.yaml:6: events[0].node", "required field is missing"},
    {"MissingExitCode", head("events:\n  - {at: 5, fault: exit_code, node: node-1}\n"),
     "t.yaml:6: events[0].code", "required field is missing"},
    {"ExitCodeOutOfRange",
     head("events:\n  - {at: 5, fault: exit_code, node: node-1, code: 300}\n"),
     "t.yaml:6: events[0].code", "between 0 and 255"},
    {"ExitCodeNotANumber",
     head("events:\n  - at: 5\n    fault: exit_code\n    node: node-1\n    code: kill\n"),
     "t.yaml:9: events[0].code", "expected an integer, got 'kill'"},
    {"UnknownEventJob", head("events:\n  - {at: 5, action: stop_job, job: zz}\n"),
     "t.yaml:6: events[0].job", "'zz' is not a job of the file"},
    {"AppNodeNotOfJob", head("events:\n  - {at: 5, fault: app, job: a, node: node-3}\n"),
     "t.yaml:6: events[0].node", "not one of the nodes of job 'a'"},
    {"FaultAndAction", head("events:\n  - {at: 5, fault: gpu, action: stop_job, node: node-1}\n"),
     "t.yaml:6: events[0].action", "either 'fault' or 'action'"},
    {"NeitherFaultNorAction", head("events:\n  - {at: 5, node: node-1}\n"), "t.yaml:6: events[0]",
     "needs 'fault'"},
    {"UnknownFault", head("events:\n  - {at: 5, fault: meteor, node: node-1}\n"),
     "t.yaml:6: events[0].fault", "unknown fault 'meteor'"},
    {"UnknownAction", head("events:\n  - {at: 5, action: reboot, job: a}\n"),
     "t.yaml:6: events[0].action", "unknown action 'reboot'"},
    {"KeyNotForThisFault", head("events:\n  - {at: 5, fault: gpu, node: node-1, code: 3}\n"),
     "t.yaml:6: events[0].code", "unknown key for fault 'gpu'"},
    {"NegativeAt", head("events:\n  - {at: -1, fault: gpu, node: node-1}\n"),
     "t.yaml:6: events[0].at", "must be >= 0"},
    {"UntilNotANumber", "until: soon\ncluster: {nodes: 1}\n", "t.yaml:1: until",
     "expected a number of seconds, got 'soon'"},
    {"QuotedNumber", "cluster: {nodes: 1, gpus_per_node: \"8\"}\n",
     "t.yaml:1: cluster.gpus_per_node", "quoted string"},
    {"SeedNegative", "seed: -3\ncluster: {nodes: 1}\n", "t.yaml:1: seed", "at least 0"},
    {"NodeCountZero", "cluster:\n  nodes: 0\n", "t.yaml:2: cluster.nodes", "between 1 and 100000"},
    {"NodeCountTooBig", "cluster:\n  nodes: 100001\n", "t.yaml:2: cluster.nodes",
     "between 1 and 100000"},
    {"DuplicateNodeName", "cluster:\n  nodes:\n    - n1\n    - n2\n    - n1\n",
     "t.yaml:5: cluster.nodes[2]", "duplicate node name 'n1'"},
    {"EmptyNodeName", "cluster:\n  nodes: [n1, \"\"]\n", "t.yaml:2: cluster.nodes[1]",
     "must not be empty"},
    {"NodesWrongType", "cluster:\n  nodes: {a: 1}\n", "t.yaml:2: cluster.nodes",
     "expected an integer"},
    // Names the engine would refuse are refused here, not dropped silently later.
    {"NodeNameWithSpace", "cluster:\n  nodes: [n1, \"n 2\"]\n", "t.yaml:2: cluster.nodes[1]",
     "'n 2' is not a valid name"},
    {"JobIdWithSlash", "cluster: {nodes: 1}\njobs:\n  - {id: a/b, nodes: 1}\n",
     "t.yaml:3: jobs[0].id", "is not a valid name"},
    {"SecondDocument", "cluster: {nodes: 1}\n---\ncluster: {nodes: 2}\n", "t.yaml:2",
     "holds one YAML document; a second begins here"},
    {"NulInKey", std::string("cluster: {nodes: 1}\n\"se\\0ed\": 1\n"), "t.yaml:2: se\\x00ed",
     "unknown key"},
    {"DuplicateJobId", head("  - {id: a, nodes: 1}\n"), "t.yaml:5: jobs[2].id",
     "duplicate job id 'a'"},
    {"JobUnknownNode", "cluster: {nodes: 2}\njobs:\n  - id: a\n    nodes: [node-1, node-7]\n",
     "t.yaml:4: jobs[0].nodes[1]", "'node-7' is not a node of the cluster"},
    {"JobCountTooBig", "cluster: {nodes: 2}\njobs:\n  - {id: a, nodes: 3}\n",
     "t.yaml:3: jobs[0].nodes", "asks for 3 nodes but the cluster has 2"},
    {"JobRuntimeZero", "cluster: {nodes: 2}\njobs:\n  - {id: a, nodes: 1, runtime: 0}\n",
     "t.yaml:3: jobs[0].runtime", "must be > 0"},
    {"JobsNotAList", "cluster: {nodes: 2}\njobs:\n  a: 1\n", "t.yaml:2: jobs", "expected a list"},
    // Seconds past kMaxSeconds used to overflow into a job COMPLETE as it starts.
    {"JobRuntimeTooLong", "cluster: {nodes: 2}\njobs:\n  - {id: a, nodes: 1, runtime: 1e16}\n",
     "t.yaml:3: jobs[0].runtime", "must be at most 1000000000 seconds"},
    {"UntilTooLong", "until: 1e300\ncluster: {nodes: 1}\n", "t.yaml:1: until",
     "must be at most 1000000000 seconds"},
    {"OtherExitCodesUnknown", "policy: {other_exit_codes: maybe}\ncluster: {nodes: 1}\n",
     "t.yaml:1: policy.other_exit_codes", "expected diagnose or ignore"},
    {"DuplicateKey", "cluster: {nodes: 2}\nseed: 1\nseed: 2\n", "t.yaml:3: seed",
     "duplicate key (first on line 2)"},
    {"DiagLevelOutOfRange", "policy:\n  diag_level: 5\ncluster: {nodes: 1}\n",
     "t.yaml:2: policy.diag_level", "must be in 1..4"},
    {"PolicyUnknownKey", "policy: {retries: 2}\ncluster: {nodes: 1}\n", "t.yaml:1: policy.retries",
     "unknown key"},
    {"AppExitCodesNotAList", "policy: {app_exit_codes: 3}\ncluster: {nodes: 1}\n",
     "t.yaml:1: policy.app_exit_codes", "expected a list"},
    {"ExpectBadJobStatus", head("expect:\n  jobs:\n    a: DONE\n"), "t.yaml:7: expect.jobs.a",
     "unknown job status 'DONE'"},
    {"ExpectUnknownJob", head("expect:\n  jobs:\n    zz: COMPLETE\n"), "t.yaml:7: expect.jobs.zz",
     "'zz' is not a job of the file"},
    {"ExpectBadNodeStatus", head("expect:\n  nodes: {node-1: BROKEN}\n"),
     "t.yaml:6: expect.nodes.node-1", "unknown node status 'BROKEN'"},
    {"ExpectUnknownNode", head("expect:\n  nodes:\n    node-8: FAILED\n"),
     "t.yaml:7: expect.nodes.node-8", "not a node of the cluster"},
    {"ExpectUnknownStat", head("expect:\n  stats: {reboots: 1, crashes: 2}\n"),
     "t.yaml:6: expect.stats.crashes", "unknown key"},
    {"ExpectRetriesNegative", head("expect:\n  job_retries: {b: -1}\n"),
     "t.yaml:6: expect.job_retries.b", "at least 0"},
    {"TopLevelNotAMapping", "- a\n- b\n", "t.yaml:1", "a scenario is a mapping"},
    {"EmptyFile", "", "t.yaml:1", "a scenario is a mapping"},
    {"SyntaxError", "cluster: {nodes: 2}\njobs: [{id: a, nodes: 1}\nevents: []\n", "t.yaml:3",
     "YAML syntax error"},
    {"SyntaxErrorBadIndent", "cluster:\n  nodes: 2\n gpus_per_node: 8\n", "t.yaml:3",
     "YAML syntax error"},
};

INSTANTIATE_TEST_SUITE_P(All, ScenarioErrors, ::testing::ValuesIn(kErrorCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace shepherd
