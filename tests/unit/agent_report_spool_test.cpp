// The agent's spool of unacknowledged reports (<state_dir>/reports/): what it holds outlives an
// agent restart, in the order it was added, until the server acknowledges it by id; a damaged file
// costs that one report, never the agent's start or the other reports.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "agent/report_spool.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::agent {
namespace {

namespace fs = std::filesystem;
using Frames = std::vector<std::string>;

class Spool : public ::testing::Test {
 protected:
  // A new spool on the same state directory: what the agent sees after a restart.
  ReportSpool restarted() const { return ReportSpool(dir.path()); }

  std::string reports() const { return dir / "reports"; }
  std::vector<fs::path> files(const std::string& extension = ".json") const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(reports()))
      if (e.path().extension() == extension) out.push_back(e.path());
    return out;
  }
  // The file that holds `frame` (names are hashes of the ids: found by content).
  fs::path file_with(const std::string& frame) const {
    for (const auto& f : files())
      if (test::read_file(f).find(frame) != std::string::npos) return f;
    ADD_FAILURE() << "no file holds " << frame;
    return {};
  }
  static void write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }

  test::TempDir dir{"shepherd-spool"};
};

TEST_F(Spool, ReportsOutliveARestart) {
  {
    ReportSpool spool(dir.path());
    spool.add("start:j.0.0", R"({"v":1,"type":"report","id":"start:j.0.0"})");
    spool.add("diag:op-1", R"({"v":1,"type":"report","id":"diag:op-1"})");
    EXPECT_EQ(spool.size(), 2u);
  }
  const ReportSpool spool = restarted();
  EXPECT_EQ(spool.size(), 2u);
  EXPECT_EQ(spool.frames(), (Frames{R"({"v":1,"type":"report","id":"start:j.0.0"})",
                                    R"({"v":1,"type":"report","id":"diag:op-1"})"}));
}

TEST_F(Spool, FramesComeBackByteForByte) {
  const std::string frame =
      "{\"message\":\"NVRM: Xid (PCI:0000:3b:00): 79, \\\"fallen off\\\"\"}"
      "\n\ttrailing \xc3\xa9 text";
  ReportSpool(dir.path()).add("xid:b:1:0000:3b:00:79:0", frame);
  EXPECT_EQ(restarted().frames(), Frames{frame});
}

// Ordered by when they were added, not by id or file name; adds after a restart come after what
// the earlier agent left (the server gets a task's start before its later reports).
TEST_F(Spool, KeepsTheOrderOfAdding) {
  {
    ReportSpool spool(dir.path());
    for (const char* id : {"z", "a", "m", "b"}) spool.add(id, std::string("frame-") + id);
  }
  ReportSpool spool = restarted();
  EXPECT_EQ(spool.frames(), (Frames{"frame-z", "frame-a", "frame-m", "frame-b"}));
  spool.add("0", "frame-0");
  EXPECT_EQ(spool.frames().back(), "frame-0");
  EXPECT_EQ(restarted().frames(), (Frames{"frame-z", "frame-a", "frame-m", "frame-b", "frame-0"}));
}

TEST_F(Spool, AnAcknowledgedReportIsGoneForGood) {
  ReportSpool spool(dir.path());
  spool.add("start:t1", "frame-1");
  spool.add("start:t2", "frame-2");
  spool.add("start:t3", "frame-3");
  spool.remove("start:t2");
  EXPECT_EQ(spool.frames(), (Frames{"frame-1", "frame-3"}));
  EXPECT_EQ(files().size(), 2u);  // its file too
  spool.remove("start:t2");       // an ack that comes twice
  spool.remove("never-added");
  EXPECT_EQ(spool.size(), 2u);
  EXPECT_EQ(restarted().frames(), (Frames{"frame-1", "frame-3"}));
}

// The id is the key across restarts: an ack that arrives after a restart removes that report
// (and only it), and the same report spooled again is not kept twice.
TEST_F(Spool, IdsAreStableAcrossARestart) {
  {
    ReportSpool spool(dir.path());
    spool.add("diag-start:op/1", "first");
    spool.add("diag:op/1", "second");
  }
  {
    ReportSpool spool = restarted();
    spool.add("diag-start:op/1", "first, again");  // a second add keeps the first
    EXPECT_EQ(spool.frames(), (Frames{"first", "second"}));
    spool.remove("diag-start:op/1");
    EXPECT_EQ(spool.frames(), Frames{"second"});
  }
  EXPECT_EQ(restarted().frames(), Frames{"second"});
  EXPECT_EQ(files().size(), 1u);
}

// Ids hold ':' and '/' (from the kernel log, the server's operation ids): never a path.
TEST_F(Spool, AnIdIsNeverAPath) {
  ReportSpool spool(dir.path());
  spool.add("../../escaped", "frame");
  spool.add("a/b:c", "frame-2");
  EXPECT_FALSE(fs::exists(dir / "escaped"));
  EXPECT_FALSE(fs::exists(dir / "escaped.json"));
  EXPECT_EQ(files().size(), 2u);
  EXPECT_EQ(restarted().frames(), (Frames{"frame", "frame-2"}));
}

// A damaged file (cut short, emptied, overwritten) loses that report, with a warning in the log,
// and nothing else: the agent starts, the good reports are kept and sent, and the file is removed
// so it is not read again at every start.
TEST_F(Spool, ADamagedFileCostsOnlyItsOwnReport) {
  {
    ReportSpool spool(dir.path());
    for (const char* id : {"r1", "r2", "r3", "r4", "r5"}) spool.add(id, std::string("frame-") + id);
  }
  const fs::path truncated = file_with("frame-r2");
  const std::string text = test::read_file(truncated);
  write(truncated, text.substr(0, text.size() / 2));
  write(file_with("frame-r3"), "");
  write(file_with("frame-r4"), "\x01\x02 not json at all \xff");
  write(reports() + "/stranger.json", R"({"id":"x","frame":"no seq"})");
  write(reports() + "/notes.txt", "not a report");  // not the spool's: left alone

  const ReportSpool spool = restarted();
  EXPECT_EQ(spool.frames(), (Frames{"frame-r1", "frame-r5"}));
  EXPECT_EQ(files().size(), 2u);
  EXPECT_TRUE(fs::exists(reports() + "/notes.txt"));
}

// The same for a file that is JSON with every field, but of the wrong kind (another agent
// version's format, a hand edit): refused like any unreadable report, not an exception out of the
// constructor that would stop the agent at every start.
TEST_F(Spool, AFileOfTheWrongShapeCostsOnlyItsOwnReport) {
  ReportSpool(dir.path()).add("good", "frame-good");
  write(reports() + "/a.json", R"({"id":"x","seq":"1","frame":"f"})");
  write(reports() + "/b.json", R"({"id":7,"seq":1,"frame":"f"})");
  write(reports() + "/c.json", R"({"id":"y","seq":2,"frame":{"v":1}})");
  write(reports() + "/d.json", R"({"id":"z","seq":-3,"frame":"f"})");
  write(reports() + "/e.json", R"(["id","seq","frame"])");

  std::optional<ReportSpool> spool;
  ASSERT_NO_THROW(spool.emplace(dir.path()));
  EXPECT_EQ(spool->frames(), Frames{"frame-good"});
  EXPECT_EQ(files().size(), 1u);
}

// A crash between writing a report's temporary file and renaming it leaves the temporary: it is
// not a report, and the same report spooled again is written whole.
TEST_F(Spool, ALeftOverTemporaryFileIsNotAReport) {
  ReportSpool(dir.path()).add("r1", "frame-r1");
  const fs::path file = file_with("frame-r1");
  fs::rename(file, file.string() + ".tmp");
  write(file.string() + ".tmp", R"({"id":"r1","seq":1,"fr)");
  ReportSpool spool = restarted();
  EXPECT_EQ(spool.size(), 0u);
  spool.add("r1", "frame-r1");
  EXPECT_EQ(restarted().frames(), Frames{"frame-r1"});
}

}  // namespace
}  // namespace shepherd::agent
