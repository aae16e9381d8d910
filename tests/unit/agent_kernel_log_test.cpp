// KernelLogFollower on real files fed with the lines of tests/fixtures/kmsg, as syslog or kmsg
// records; /dev/kmsg itself where this machine lets the test open it (nothing is written to it).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

#include "agent/kernel_log.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using health::XidAction;
using health::XidCatalogue;

using shepherd::test::TempDir;

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(SHEPHERD_SOURCE_DIR) + "/tests/fixtures/kmsg/" + name);
  EXPECT_TRUE(in) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app) << text << std::flush;
}

class Events {
 public:
  KernelLogFollower::Callback callback() {
    return [this](const XidEvent& e) {
      std::lock_guard lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }
  // The events once there are `n` (or after the timeout, however many there are).
  std::vector<XidEvent> wait(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
    return events_;
  }
  std::vector<XidEvent> now() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<XidEvent> events_;
};

constexpr auto kLongWindow = std::chrono::milliseconds(3600 * 1000);
const std::string kXid79 =
    "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.";

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST(KernelLog, ReportsAppendedXidLinesWithTheirActions) {
  TempDir dir;
  const std::string log = dir / "syslog";
  append(log, fixture("non-xid.log"));
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  append(log, fixture("non-xid.log"));
  append(log, fixture("xid-malformed.log"));
  append(log, fixture("xid-real.log"));
  // 15 Xid lines; lines 7 and 9 are Xid 31 on the same GPU: one burst.
  const auto got = events.wait(14);
  ASSERT_EQ(got.size(), 14u);
  std::vector<std::pair<std::string, int>> seen;
  for (const auto& e : got) {
    seen.emplace_back(e.pci, e.xid);
    EXPECT_EQ(e.action, XidCatalogue::built_in().action(e.xid)) << e.xid;
    EXPECT_NE(e.line.find("NVRM: Xid"), std::string::npos);
  }
  const std::vector<std::pair<std::string, int>> expected = {
      {"0000:07:00", 48}, {"0000:07:00", 64}, {"0000:9b:00", 119}, {"0000:38:00", 13},
      {"0000:c6:00", 79}, {"0000:10:1c", 63}, {"0000:01:00", 31},  {"0000:01:00", 32},
      {"0000:dc:00", 45}, {"0000:c1:00", 31}, {"0000:44:00", 79},  {"0000:00:16", 119},
      {"0000:2a:00", 79}, {"0008:01:00", 154}};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(got[0].action, XidAction::ResetGpu);
  EXPECT_EQ(got[3].action, XidAction::RestartApp);
  EXPECT_EQ(got[4].action, XidAction::RestartBm);
  EXPECT_EQ(got[4].process, "nvc:[driver]");
  EXPECT_EQ(got[13].action, XidAction::ContactSupport);
  EXPECT_EQ(got[0].kernel_usec, 219470994);
  follower.stop();
  EXPECT_EQ(follower.xid_lines(), 15u);
  EXPECT_EQ(events.now().size(), 14u);
}

TEST(KernelLog, ABurstOfOneXidOnOneGpuIsOneEvent) {
  TempDir dir;
  const std::string log = dir / "syslog";
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  std::string burst;
  for (int i = 0; i < 50; ++i) burst += kXid79 + "\n";
  burst += "NVRM: Xid (PCI:0000:3c:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n";
  append(log, burst);
  ASSERT_TRUE(eventually([&] { return follower.xid_lines() == 51; }));
  const auto got = events.wait(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].pci, "0000:3b:00");
  EXPECT_EQ(got[1].pci, "0000:3c:00");

  // With no window every line is its own event.
  Events each;
  KernelLogFollower no_window(log, XidCatalogue::built_in(), 0ms, each.callback(),
                              KernelLogFollower::StartAt::Beginning);
  no_window.start();
  EXPECT_EQ(each.wait(51).size(), 51u);
}

TEST(KernelLog, LinesBeforeStartAreSkippedUnlessAskedFor) {
  TempDir dir;
  const std::string log = dir / "syslog";
  append(log, kXid79 + "\n");
  Events from_end, from_start;
  KernelLogFollower end(log, XidCatalogue::built_in(), kLongWindow, from_end.callback());
  KernelLogFollower beginning(log, XidCatalogue::built_in(), kLongWindow, from_start.callback(),
                              KernelLogFollower::StartAt::Beginning);
  end.start();
  beginning.start();
  EXPECT_EQ(from_start.wait(1).size(), 1u);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(from_end.now().empty());
  append(log, fixture("xid-real.log").substr(0, fixture("xid-real.log").find('\n') + 1));
  const auto got = from_end.wait(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].xid, 48);
}

TEST(KernelLog, ReadsKmsgRecords) {
  TempDir dir;
  const std::string log = dir / "kmsg";
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  // Records 3 and 4 are one Xid 43 (with and without extra header fields); 5 is malformed.
  append(log, fixture("kmsg-real.log"));
  append(log, "6,1234,5678,-;" + kXid79 + "\n");
  const auto got = events.wait(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].xid, 43);
  EXPECT_EQ(got[0].pci, "0000:01:00");
  EXPECT_EQ(got[0].action, XidAction::Ignore);  // reported: the caller decides
  EXPECT_EQ(got[0].kernel_usec, 437812449);
  EXPECT_EQ(got[0].process, "cuda_assert_64b");
  EXPECT_EQ(got[1].xid, 79);
  EXPECT_EQ(got[1].kernel_usec, 5678);
  EXPECT_EQ(got[1].line, "6,1234,5678,-;" + kXid79);
  EXPECT_EQ(got[1].message, "GPU has fallen off the bus.");
  follower.stop();
  EXPECT_EQ(follower.lines_read(), 6u);
  EXPECT_EQ(follower.xid_lines(), 3u);
}

TEST(KernelLog, TheCatalogueGivenIsUsed) {
  TempDir dir;
  const std::string log = dir / "syslog";
  const auto catalogue = XidCatalogue::built_in().with_overrides(
      XidCatalogue::from_yaml("xids:\n  - {xid: 79, action: IGNORE}\n", "operator.yaml"));
  Events events;
  KernelLogFollower follower(log, catalogue, kLongWindow, events.callback());
  follower.start();
  append(log, kXid79 + "\n");
  const auto got = events.wait(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].action, XidAction::Ignore);
}

TEST(KernelLog, AFileCreatedLaterIsReadFromItsStart) {
  TempDir dir;
  const std::string log = dir / "later.log";
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  std::this_thread::sleep_for(250ms);
  append(log, kXid79 + "\n");
  EXPECT_EQ(events.wait(1).size(), 1u);
}

TEST(KernelLog, ATruncatedOrReplacedFileIsReadAgainFromItsStart) {
  TempDir dir;
  const std::string log = dir / "syslog";
  append(log, std::string(10000, 'x') + "\n");
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  std::this_thread::sleep_for(250ms);
  std::ofstream(log, std::ios::trunc) << kXid79 << "\n" << std::flush;  // logrotate copytruncate
  auto got = events.wait(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].xid, 79);

  const std::string next = dir / "syslog.new";  // logrotate create: a new file under the name
  append(next, "NVRM: Xid (PCI:0000:07:00): 48, pid=1, name=x, DBE\n");
  fs::rename(next, log);
  got = events.wait(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].xid, 48);
}

TEST(KernelLog, APartialLineWaitsForItsEnd) {
  TempDir dir;
  const std::string log = dir / "syslog";
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  append(log, kXid79.substr(0, 20));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(events.now().empty());
  append(log, kXid79.substr(20) + "\n");
  const auto got = events.wait(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message, "GPU has fallen off the bus.");
}

TEST(KernelLog, StopIsPromptAndFinal) {
  TempDir dir;
  const std::string log = dir / "syslog";
  Events events;
  KernelLogFollower follower(log, XidCatalogue::built_in(), kLongWindow, events.callback());
  follower.start();
  EXPECT_THROW(follower.start(), std::logic_error);
  std::this_thread::sleep_for(50ms);
  const auto before = std::chrono::steady_clock::now();
  follower.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 50ms);
  follower.stop();  // again: nothing
  append(log, kXid79 + "\n");
  std::this_thread::sleep_for(250ms);
  EXPECT_TRUE(events.now().empty());
}

TEST(KernelLog, DevKmsgOpensAtItsEnd) {
  Events events;
  KernelLogFollower end("/dev/kmsg", XidCatalogue::built_in(), kLongWindow, events.callback());
  KernelLogFollower beginning("/dev/kmsg", XidCatalogue::built_in(), kLongWindow, events.callback(),
                              KernelLogFollower::StartAt::Beginning);
  try {
    end.start();
    beginning.start();
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "cannot read /dev/kmsg here: " << e.what();
  }
  std::this_thread::sleep_for(300ms);
  const auto before = std::chrono::steady_clock::now();
  end.stop();
  beginning.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 50ms);
  // The ring buffer's records are read from the beginning only (a record logged meanwhile may
  // reach both).
  EXPECT_TRUE(beginning.lines_read() == 0 || end.lines_read() < beginning.lines_read())
      << end.lines_read() << " " << beginning.lines_read();
}

}  // namespace
}  // namespace shepherd::agent
