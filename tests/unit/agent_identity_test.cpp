// What a node says about itself, read from files the test writes and from this machine.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "agent/identity.hpp"
#include "support/temp_dir.hpp"

namespace shepherd::agent {
namespace {

namespace fs = std::filesystem;

using shepherd::test::TempDir;

TEST(Identity, BootIdIsTrimmed) {
  TempDir dir;
  std::ofstream(dir / "boot_id") << "  4c2f9a1e-7b3d-4e8f-9a0b-1c2d3e4f5a6b\n";
  EXPECT_EQ(read_boot_id(dir / "boot_id"), "4c2f9a1e-7b3d-4e8f-9a0b-1c2d3e4f5a6b");
}

TEST(Identity, MissingOrEmptyBootIdThrowsNamingThePath) {
  TempDir dir;
  try {
    read_boot_id(dir / "absent");
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "absent"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "empty") << "\n";
  EXPECT_THROW(read_boot_id(dir / "empty"), std::runtime_error);
}

TEST(Identity, ThisMachinesBootId) {
  if (!fs::exists("/proc/sys/kernel/random/boot_id")) GTEST_SKIP() << "no boot_id here";
  EXPECT_EQ(read_boot_id().size(), 36u);
}

TEST(Identity, InfinibandDevicesSortedAndJoined) {
  TempDir dir;
  EXPECT_EQ(list_ib_devices(dir / "absent"), "");
  fs::create_directories(dir / "ib");
  EXPECT_EQ(list_ib_devices(dir / "ib"), "");
  for (const char* name : {"mlx5_1", "mlx5_0", "mlx5_10"})
    fs::create_directories(dir / "ib/" + name);
  EXPECT_EQ(list_ib_devices(dir / "ib"), "mlx5_0,mlx5_1,mlx5_10");
}

TEST(Identity, PrimaryIpv4IsAnAddressOrNothing) {
  const std::string ip = primary_ipv4();
  if (ip.empty()) GTEST_SKIP() << "no interface up here but loopback";
  in_addr addr{};
  EXPECT_EQ(inet_pton(AF_INET, ip.c_str(), &addr), 1) << ip;
  EXPECT_NE(ip.rfind("127.", 0), 0u) << ip;
}

TEST(Identity, NoNvmlIsNoGpusAndNoError) {
  const auto inv = query_gpus("libshepherd-no-such-nvml.so.1");
  EXPECT_EQ(inv.count, 0);
  EXPECT_EQ(inv.problem, "libshepherd-no-such-nvml.so.1 not found");
  EXPECT_TRUE(inv.model.empty());
}

TEST(Identity, ALibraryWithoutNvmlIsAProblemNotACrash) {
  const auto inv = query_gpus("libm.so.6");
  EXPECT_EQ(inv.count, 0);
  EXPECT_NE(inv.problem.find("lacks"), std::string::npos) << inv.problem;
}

// On a node with the driver: at least one GPU, named, and the driver's version.
TEST(Identity, ThisMachinesGpus) {
  const auto inv = query_gpus();
  if (inv.problem == "libnvidia-ml.so.1 not found") GTEST_SKIP() << inv.problem;
  EXPECT_TRUE(inv.problem.empty()) << inv.problem;
  EXPECT_GT(inv.count, 0);
  EXPECT_FALSE(inv.model.empty());
  EXPECT_FALSE(inv.driver_version.empty());
}

}  // namespace
}  // namespace shepherd::agent
