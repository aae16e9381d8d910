// The checks made on YAML text before yaml-cpp parses it.
#include <gtest/gtest.h>

#include "common/yaml_checks.hpp"

namespace shepherd::yaml_checks {
namespace {

TEST(YamlChecks, FindsASecondDocument) {
  EXPECT_FALSE(second_document_line("a: 1\nb: 2\n"));
  EXPECT_FALSE(second_document_line("---\na: 1\n"));  // a first document's marker
  EXPECT_FALSE(second_document_line("# c\n%YAML 1.2\n---\na: 1\n...\n"));
  EXPECT_EQ(second_document_line("a: 1\n---\nb: 2\n"), 2);
  EXPECT_EQ(second_document_line("---\na: 1\n--- \nb: 2\n"), 3);
  EXPECT_EQ(second_document_line("a: 1\n...\nb: 2\n"), 3);
  EXPECT_FALSE(second_document_line("a: |\n  ---\n  text\n"));  // indented: inside a scalar
  EXPECT_FALSE(second_document_line("a: 1\n----\n"));           // not a marker: four dashes
}

TEST(YamlChecks, FindsANulByte) {
  EXPECT_FALSE(nul_line("a: 1\n"));
  EXPECT_EQ(nul_line(std::string_view("a: 1\nb\0", 7)), 2);
}

}  // namespace
}  // namespace shepherd::yaml_checks
