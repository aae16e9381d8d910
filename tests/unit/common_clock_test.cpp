// seconds(): defined for every double (an overflowing conversion is undefined behaviour).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/clock.hpp"

namespace shepherd {
namespace {

TEST(Seconds, ConvertsAndSaturates) {
  EXPECT_EQ(seconds(1.5), 1500);
  EXPECT_EQ(seconds(0), 0);
  const TimeMs cap = seconds(kMaxSeconds * 1000);
  EXPECT_GT(cap, seconds(kMaxSeconds));
  EXPECT_EQ(seconds(1e16), cap);  // "very long", never negative ("at once")
  EXPECT_EQ(seconds(1e308), cap);
  EXPECT_EQ(seconds(std::numeric_limits<double>::infinity()), cap);
  EXPECT_EQ(seconds(-1e308), -cap);
  EXPECT_EQ(seconds(std::nan("")), 0);
}

}  // namespace
}  // namespace shepherd
