// The agent's server URLs: one, or several controllers' comma-separated.
#include <gtest/gtest.h>

#include "agent/server_link.hpp"

namespace shepherd::agent {
namespace {

TEST(ServerUrls, OneOrSeveralControllers) {
  const auto one = parse_server_urls("https://ctl1:9443");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].host, "ctl1");
  EXPECT_EQ(one[0].port, "9443");
  const auto three = parse_server_urls("https://ctl1:8443, https://[fd00::2]:8444,ctl3");
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[1].host, "fd00::2");
  EXPECT_EQ(three[1].port, "8444");
  EXPECT_EQ(three[2].host, "ctl3");
  EXPECT_EQ(three[2].port, "8443");
}

TEST(ServerUrls, NamesWhatIsWrong) {
  EXPECT_THROW(parse_server_urls(""), std::invalid_argument);
  EXPECT_THROW(parse_server_urls(" , "), std::invalid_argument);
  EXPECT_THROW(parse_server_urls("https://ctl1:8443,http://ctl2:8443"), std::invalid_argument);
  EXPECT_THROW(parse_server_urls("https://ctl1:port"), std::invalid_argument);
}

}  // namespace
}  // namespace shepherd::agent
