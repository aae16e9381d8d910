// libFuzzer target: the API's strict JSON bodies, read as POST /api/jobs and POST /api/faults
// read them. Any input is accepted or refused with a BadRequest naming a field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/request_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using shepherd::api::BadRequest;
  using shepherd::api::RequestBody;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const RequestBody job(text, {"id", "nodes", "runtime"});
    (void)job.text("id", true);
    (void)job.seconds("runtime", true, false);
    if (job.has("nodes") && job.at("nodes").is_number())
      (void)job.integer("nodes", 1, 100000, true);
    else
      (void)job.texts("nodes");
  } catch (const BadRequest& e) {
    if (e.rejection.field.empty() || e.rejection.message.empty()) __builtin_trap();
  }
  try {
    const RequestBody fault(text, {"fault", "node", "job", "code", "duration"});
    (void)fault.integer("code", 0, 255, false);
    (void)fault.seconds("duration", false, false);
  } catch (const BadRequest& e) {
    if (e.rejection.field.empty() || e.rejection.message.empty()) __builtin_trap();
  }
  return 0;
}
