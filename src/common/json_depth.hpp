#pragma once
// A check on untrusted JSON text before nlohmann::json parses it: parsing, copying and writing a
// document recurse once per level of nesting, so a small text nested deeply enough runs off the
// end of the stack. Shepherd's own documents nest less than 10 deep.
#include <string_view>

namespace shepherd {

// Whether `text` opens more than `max_depth` arrays and objects inside one another (brackets in
// strings do not count). Linear, no allocation; says nothing else of whether `text` is JSON.
bool json_nests_deeper_than(std::string_view text, int max_depth);

}  // namespace shepherd
