// Kernel Xid lines (real ones from tests/fixtures/kmsg/, README.md there says where each comes
// from), the Xid catalogue and the burst filter.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>

#include "health/xid.hpp"

namespace shepherd::health {
namespace {

std::string read(const std::string& relative) {
  const std::string path = std::string(SHEPHERD_SOURCE_DIR) + "/" + relative;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> lines(const std::string& fixture) {
  std::istringstream in(read("tests/fixtures/kmsg/" + fixture));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

XidLine xid(std::string bus, int number, std::string pid, std::string process, std::string message,
            std::int64_t usec = -1) {
  return {std::move(bus), number, std::move(pid), std::move(process), std::move(message), usec};
}

// --- Lines ---------------------------------------------------------------------------------

TEST(XidLine, RealLines) {
  const std::vector<XidLine> expected = {
      xid("0000:07:00", 48, "<unknown>", "<unknown>",
          "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at "
          "physAddr 0x7fffa8860 partition 7, subpartition 1.",
          219470994),
      xid("0000:07:00", 64, "<unknown>", "<unknown>",
          "Dynamic Page Retirement: Blacklisting failed.  Page should have been blacklisted on "
          "boot(0x00000000007fffa8).",
          219471050),
      xid("0000:9b:00", 119, "2024380", "nvidia-smi",
          "Timeout after 6s of waiting for RPC response from GPU4 GSP! Expected function 103 "
          "(GSP_RM_ALLOC) (0x2081 0x4)."),
      xid("0000:38:00", 13, "<unknown>", "<unknown>",
          "Graphics SM Warp Exception on (GPC 9, TPC 1, SM 1): Out Of Range Address"),
      xid("0000:c6:00", 79, "1101234", "nvc:[driver]", "GPU has fallen off the bus."),
      xid("0000:10:1c", 63, "1896", "",
          "Row Remapper: New row marked for remapping, reset gpu to activate."),
      xid("0000:01:00", 31, "", "",
          "Ch 0000003a, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_3 faulted @ "
          "0x17_00592000. Fault is of type FAULT_PDE ACCESS_TYPE_READ",
          31543449443),
      xid("0000:01:00", 32, "", "", "Channel ID 00000052 intr 02000000", 31609615516),
      xid("0000:01:00", 31, "13705", "UnrealEditor",
          "channel 0x0000000c, intr 00000000. MMU Fault: ENGINE GRAPHICS GPC2 GPCCLIENT_PROP_0 "
          "faulted @ 0x0_00000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
          365969681),
      xid("0000:dc:00", 45, "1818990", "python3", "Ch 00000001 caused by previous Xid 149"),
      xid("0000:c1:00", 31, "12890", "",
          "Ch 0000003b, intr 00000000. MMU Fault: ENGINE HOST0 HUBCLIENT_HOST_CPU faulted @ "
          "0x1_0c3c0000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_WRITE"),
      xid("0000:44:00", 79, "", "", "GPU has fallen off the bus"),
      xid("0000:00:16", 119, "36055", "dcgm-exporter",
          "Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 "
          "(GSP_RM_CONTROL) (0x90cc0301 0xc)."),
      xid("0000:2a:00", 79, "<unknown>", "<unknown>", "GPU has fallen off the bus"),
      xid("0008:01:00", 154, "", "",
          "GPU recovery action changed from 0x4 (Drain and Reset) to 0x1 (GPU Reset Required)",
          171168601459),
  };
  const auto real = lines("xid-real.log");
  ASSERT_EQ(real.size(), expected.size());
  for (std::size_t i = 0; i < real.size(); ++i) {
    const auto parsed = parse_xid_line(real[i]);
    ASSERT_TRUE(parsed) << real[i];
    EXPECT_EQ(*parsed, expected[i])
        << "line " << i + 1 << ": " << real[i] << "\n got bus " << parsed->pci_bus << " xid "
        << parsed->xid << " pid '" << parsed->pid << "' name '" << parsed->process << "' usec "
        << parsed->kernel_usec << " message '" << parsed->message << "'";
  }
}

TEST(XidLine, KmsgRecords) {
  const auto records = lines("kmsg-real.log");
  ASSERT_EQ(records.size(), 5u);
  EXPECT_FALSE(parse_xid_line(records[0]));  // nvidia-nvswitch2: open
  EXPECT_FALSE(parse_xid_line(records[1]));
  const XidLine expected =
      xid("0000:01:00", 43, "1814139", "cuda_assert_64b", "Ch 00000018", 437812449);
  EXPECT_EQ(parse_xid_line(records[2]), expected);
  EXPECT_EQ(parse_xid_line(records[3]), expected);  // more prefix fields: "c,1,-"
  EXPECT_FALSE(parse_xid_line(records[4]));         // no parentheses around the bus

  // The forms of the brief.
  EXPECT_EQ(parse_xid_line("4,1234,5678901,-;NVRM: Xid (PCI:0000:3b:00): 63, pid=77, name=x, "
                           "Row remapping pending\n"),
            xid("0000:3b:00", 63, "77", "x", "Row remapping pending", 5678901));
  EXPECT_EQ(parse_xid_line("NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has "
                           "fallen off the bus."),
            xid("0000:3b:00", 79, "1234", "python", "GPU has fallen off the bus."));
  EXPECT_EQ(
      parse_xid_line("[12345.678] NVRM: Xid (PCI:0000:b1:00): 48, pid='<unknown>', "
                     "name=<unknown>, An uncorrectable double bit error (DBE) has been "
                     "detected on GPU in the framebuffer at partition 0, subpartition 0.\r\n"),
      xid("0000:b1:00", 48, "<unknown>", "<unknown>",
          "An uncorrectable double bit error (DBE) has been detected on GPU in the "
          "framebuffer at partition 0, subpartition 0.",
          12345678000));
  // Older drivers: no "PCI:"; an upper-case bus is read in lower case; nothing after the number.
  EXPECT_EQ(parse_xid_line("NVRM: Xid (0000:3B:00): 13, 0001 00000000"),
            xid("0000:3b:00", 13, "", "", "0001 00000000"));
  EXPECT_EQ(parse_xid_line("NVRM: Xid (PCI:0000:3b:00): 79"), xid("0000:3b:00", 79, "", "", ""));
}

TEST(XidLine, OtherLinesAreNotXids) {
  for (const auto& line : lines("non-xid.log")) EXPECT_FALSE(parse_xid_line(line)) << line;
  EXPECT_FALSE(parse_xid_line(""));
  EXPECT_FALSE(parse_xid_line("NVRM: SXid (PCI:0000:3b:00): 12028, Non-fatal, Link 32"));
}

TEST(XidLine, MalformedXidLinesAreRefused) {
  for (const auto& line : lines("xid-malformed.log")) EXPECT_FALSE(parse_xid_line(line)) << line;
}

TEST(XidLine, HostileInputNeverThrows) {
  std::mt19937 rng(7);
  const auto real = lines("xid-real.log");
  const std::string alphabet = "NVRM: Xid(PCI)0123456789abcdef,;'=-[]. \x01\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string text = real[rng() % real.size()];
    for (int e = 0; e < 1 + static_cast<int>(rng() % 6) && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      if (rng() % 2)
        text[at] = alphabet[rng() % alphabet.size()];
      else
        text.erase(at, 1 + rng() % 8);
    }
    ASSERT_NO_THROW((void)parse_xid_line(text)) << text;
  }
  EXPECT_FALSE(parse_xid_line(std::string(1 << 20, '(')));
  EXPECT_FALSE(parse_xid_line("99999999999999999999999,1,1,-;NVRM: Xid"));
  const auto big = parse_xid_line("1,2,99999999999999999999,-;NVRM: Xid (PCI:0:0): 79, x");
  ASSERT_TRUE(big);  // not a kmsg header (the time overflows): read as a plain line
  EXPECT_EQ(big->kernel_usec, -1);
}

// --- Actions and the catalogue -------------------------------------------------------------

TEST(XidAction, Names) {
  for (const auto a : {XidAction::Ignore, XidAction::RestartApp, XidAction::ResetGpu,
                       XidAction::RestartBm, XidAction::ContactSupport})
    EXPECT_EQ(parse_xid_action(to_string(a)), a);
  EXPECT_EQ(to_string(XidAction::RestartBm), "RESTART_BM");
  EXPECT_FALSE(parse_xid_action("restart_bm"));
  EXPECT_FALSE(parse_xid_action("REBOOT"));
}

TEST(XidCatalogue, BuiltInAgreesWithTheShippedFile) {
  const std::string file = read("src/health/xid_catalogue.yaml");
  EXPECT_EQ(std::string(built_in_xid_catalogue_yaml()), file)
      << "src/health/xid_catalogue_data.cpp no longer holds the text of xid_catalogue.yaml";
  const auto from_file = XidCatalogue::from_yaml(file, "xid_catalogue.yaml");
  EXPECT_EQ(from_file.entries(), XidCatalogue::built_in().entries());
}

TEST(XidCatalogue, BuiltInActions) {
  const auto& c = XidCatalogue::built_in();
  const std::pair<int, XidAction> expected[] = {
      {13, XidAction::RestartApp},      {31, XidAction::RestartApp}, {32, XidAction::RestartApp},
      {43, XidAction::Ignore},          {45, XidAction::RestartApp}, {48, XidAction::ResetGpu},
      {61, XidAction::ContactSupport},  {62, XidAction::ResetGpu},   {63, XidAction::Ignore},
      {64, XidAction::ResetGpu},        {68, XidAction::RestartApp}, {69, XidAction::RestartApp},
      {74, XidAction::ContactSupport},  {79, XidAction::RestartBm},  {92, XidAction::Ignore},
      {94, XidAction::RestartApp},      {95, XidAction::ResetGpu},   {109, XidAction::ResetGpu},
      {119, XidAction::ResetGpu},       {120, XidAction::ResetGpu},  {140, XidAction::ResetGpu},
      {154, XidAction::ContactSupport},
  };
  for (const auto& [number, action] : expected) {
    EXPECT_EQ(c.action(number), action) << "Xid " << number;
    ASSERT_NE(c.find(number), nullptr);
    EXPECT_FALSE(c.find(number)->name.empty());
  }
  EXPECT_EQ(c.find(79)->name, "GPU has fallen off the bus");
  EXPECT_EQ(c.find(144)->name, "NVLINK: SAW Error");
  EXPECT_EQ(c.find(999), nullptr);
  EXPECT_EQ(c.action(999), XidAction::ContactSupport);  // unknown Xids
  EXPECT_EQ(c.unknown_action(), XidAction::ContactSupport);
}

TEST(XidCatalogue, OperatorOverridesWin) {
  const auto op = XidCatalogue::from_yaml(R"(
unknown_action: RESET_GPU
xids:
  - {xid: 79, action: RESET_GPU}
  - xid: 500
    action: IGNORE
    name: Something new
)",
                                          "/etc/shepherd/xids.yaml");
  const auto c = XidCatalogue::built_in().with_overrides(op);
  EXPECT_EQ(c.action(79), XidAction::ResetGpu);
  EXPECT_EQ(c.find(79)->name, "");  // the operator's entry replaces the whole entry
  EXPECT_EQ(c.action(500), XidAction::Ignore);
  EXPECT_EQ(c.action(48), XidAction::ResetGpu);  // untouched
  EXPECT_EQ(c.action(13), XidAction::RestartApp);
  EXPECT_EQ(c.action(999), XidAction::ResetGpu);                         // its unknown_action
  EXPECT_EQ(XidCatalogue::built_in().action(79), XidAction::RestartBm);  // unchanged

  // A file without unknown_action keeps the base one.
  const auto partial = XidCatalogue::built_in().with_overrides(
      XidCatalogue::from_yaml("xids: [{xid: 13, action: RESET_GPU}]", "x.yaml"));
  EXPECT_EQ(partial.action(13), XidAction::ResetGpu);
  EXPECT_EQ(partial.action(999), XidAction::ContactSupport);

  const auto empty = XidCatalogue::from_yaml("", "empty.yaml");
  EXPECT_TRUE(empty.entries().empty());
  EXPECT_EQ(XidCatalogue::built_in().with_overrides(empty).entries(),
            XidCatalogue::built_in().entries());
  EXPECT_TRUE(XidCatalogue::from_yaml("# nothing\nxids:\n", "c.yaml").entries().empty());
}

std::string error_of(const std::string& yaml) {
  try {
    (void)XidCatalogue::from_yaml(yaml, "ops.yaml");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return {};
}

TEST(XidCatalogue, BadFilesNameTheLineAndField) {
  EXPECT_EQ(error_of("xids:\n  - {xid: 79, action: RESTART_BM}\n  - {xid: 48, action: REBOOT}\n"),
            "ops.yaml:3: xids[1].action: unknown action 'REBOOT' (known: IGNORE, RESTART_APP, "
            "RESET_GPU, RESTART_BM, CONTACT_SUPPORT)");
  EXPECT_EQ(error_of("xids:\n  - {xid: seventy, action: IGNORE}\n"),
            "ops.yaml:2: xids[0].xid: expected an Xid number 0..100000, got 'seventy'");
  EXPECT_EQ(error_of("xids:\n  - {xid: -1, action: IGNORE}\n"),
            "ops.yaml:2: xids[0].xid: expected an Xid number 0..100000, got '-1'");
  EXPECT_EQ(error_of("xids:\n  - {action: IGNORE}\n"),
            "ops.yaml:2: xids[0].xid: required field is missing");
  EXPECT_EQ(error_of("xids:\n  - {xid: 3}\n"),
            "ops.yaml:2: xids[0].action: required field is missing");
  EXPECT_EQ(
      error_of("xids:\n  - {xid: 3, action: IGNORE, level: 2}\n"),
      "ops.yaml:2: xids[0].level: unknown key for an Xid entry; expected one of xid, action, name");
  EXPECT_EQ(error_of("xids:\n  - {xid: 3, action: IGNORE}\n  - {xid: 3, action: RESET_GPU}\n"),
            "ops.yaml:3: xids[1].xid: Xid 3 is listed twice (first on line 2)");
  EXPECT_EQ(error_of("xids:\n  - 79\n"), "ops.yaml:2: xids[0]: expected a mapping, got '79'");
  EXPECT_EQ(error_of("xids: {xid: 79}\n"), "ops.yaml:1: xids: expected a list, got a mapping");
  EXPECT_EQ(
      error_of("xid:\n  - {xid: 79, action: IGNORE}\n"),
      "ops.yaml:1: xid: unknown key for an Xid catalogue; expected one of unknown_action, xids");
  EXPECT_EQ(
      error_of("unknown_action: PANIC\n").rfind("ops.yaml:1: unknown_action: unknown action", 0),
      0u);
  EXPECT_EQ(error_of("xids:\n  - {xid: 3, action: [IGNORE]}\n"),
            "ops.yaml:2: xids[0].action: expected an action, got a list");
  EXPECT_EQ(error_of("- 1\n- 2\n"), "ops.yaml:1: expected a mapping, got a list");
  EXPECT_EQ(error_of("xids: [\n")
                .rfind("ops.yaml:2: YAML syntax error: end of sequence flow not found", 0),
            0u);
  EXPECT_EQ(
      error_of("xids: []\n---\nxids: []\n").rfind("ops.yaml:2: an Xid catalogue holds one", 0), 0u);
  EXPECT_EQ(
      error_of(std::string("xids: []\n\0", 10)).rfind("ops.yaml:2: the file contains a NUL", 0),
      0u);
}

// --- The burst filter ----------------------------------------------------------------------

TEST(XidBurstFilter, OneEventPerGpuAndXidPerWindow) {
  XidBurstFilter filter(60'000);
  const auto a79 = xid("0000:3b:00", 79, "", "", "");
  const auto a48 = xid("0000:3b:00", 48, "", "", "");
  const auto b79 = xid("0000:b1:00", 79, "", "", "");
  EXPECT_TRUE(filter.admit(a79, 1'000));
  EXPECT_FALSE(filter.admit(a79, 1'001));   // the burst
  EXPECT_FALSE(filter.admit(a79, 60'999));  // still within the window of the first
  EXPECT_TRUE(filter.admit(a48, 2'000));    // another Xid on the same GPU
  EXPECT_TRUE(filter.admit(b79, 2'000));    // the same Xid on another GPU
  EXPECT_FALSE(filter.admit(b79, 30'000));
  EXPECT_TRUE(filter.admit(a79, 61'000));  // the window has passed: reported again
  EXPECT_FALSE(filter.admit(a79, 100'000));
  EXPECT_TRUE(filter.admit(a79, 121'000));
}

TEST(XidBurstFilter, MemoryIsBounded) {
  XidBurstFilter filter(1'000, 100);
  for (int i = 0; i < 10'000; ++i) EXPECT_TRUE(filter.admit(xid("0000:00:00", i, "", "", ""), 0));
  EXPECT_EQ(filter.size(), 100u);  // the cap: the oldest went first
  EXPECT_TRUE(filter.admit(xid("0000:00:00", 9'999, "", "", ""), 500) == false);
  EXPECT_TRUE(filter.admit(xid("0000:00:01", 1, "", "", ""), 1'000));
  EXPECT_EQ(filter.size(), 1u);  // everything older than the window is forgotten

  XidBurstFilter unbounded_keys(1'000);
  for (int t = 0; t < 100'000; t += 10)
    unbounded_keys.admit(xid("bus" + std::to_string(t), 79, "", "", ""), t);
  EXPECT_LE(unbounded_keys.size(), 200u);  // at most two windows of distinct keys
}

TEST(XidBurstFilter, EdgeCases) {
  const auto line = xid("0000:3b:00", 79, "", "", "");
  XidBurstFilter off(0);
  EXPECT_TRUE(off.admit(line, 0));
  EXPECT_TRUE(off.admit(line, 0));
  EXPECT_EQ(off.size(), 0u);
  XidBurstFilter negative(-5);
  EXPECT_TRUE(negative.admit(line, 0));
  EXPECT_TRUE(negative.admit(line, 0));

  XidBurstFilter filter(1'000);
  EXPECT_TRUE(filter.admit(line, 50'000));
  EXPECT_TRUE(filter.admit(line, 10'000));  // the clock went back: reported
  EXPECT_FALSE(filter.admit(line, 10'500));
  EXPECT_TRUE(filter.admit(line, INT64_MAX));
  EXPECT_TRUE(filter.admit(line, INT64_MIN));
  EXPECT_FALSE(filter.admit(line, INT64_MIN + 1));
}

}  // namespace
}  // namespace shepherd::health
