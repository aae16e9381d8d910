// The strict request body reader: what fuzz/request_body_fuzz.cpp found stays fixed.
#include <gtest/gtest.h>

#include "api/request_body.hpp"

namespace shepherd::api {
namespace {

Rejection refusal(std::string_view body) {
  try {
    const RequestBody b(body, {"id", "nodes"});
  } catch (const BadRequest& e) {
    return e.rejection;
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

// Found by the fuzzer: an empty key was refused with an empty field name.
TEST(RequestBody, AnEmptyKeyNamesTheBody) {
  const Rejection r = refusal(R"({"id":"a","":5})");
  EXPECT_EQ(r.field, "body");
  EXPECT_NE(r.message.find("unknown field ''"), std::string::npos) << r.message;
  EXPECT_EQ(refusal(R"({"":1,"":2})").message, "'' is given twice");
}

TEST(RequestBody, ALongKeyIsCutShortInTheError) {
  const std::string key(5000, 'k');
  const Rejection r = refusal("{\"" + key + "\":1}");
  EXPECT_EQ(r.field.size(), 64u);
  EXPECT_LT(r.message.size(), 200u);
}

}  // namespace
}  // namespace shepherd::api
