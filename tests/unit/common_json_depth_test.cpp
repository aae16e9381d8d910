// The nesting check made on untrusted JSON before it is parsed (agent frames, dcgmi output).
#include <gtest/gtest.h>

#include <string>

#include "common/json_depth.hpp"

namespace shepherd {
namespace {

TEST(JsonDepth, CountsArraysAndObjectsButNotBracketsInStrings) {
  EXPECT_FALSE(json_nests_deeper_than(R"({"a":[{"b":1}]})", 3));
  EXPECT_TRUE(json_nests_deeper_than(R"({"a":[{"b":[1]}]})", 3));
  EXPECT_FALSE(json_nests_deeper_than(R"({"a":"[[[[{{{{"})", 1));
  EXPECT_FALSE(json_nests_deeper_than(R"({"a":"\"[[[["})", 1));  // an escaped quote stays inside
  EXPECT_FALSE(json_nests_deeper_than("[][][][]", 1));           // siblings, not nesting
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_TRUE(json_nests_deeper_than(deep, 64));
}

}  // namespace
}  // namespace shepherd
