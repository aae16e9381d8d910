#include "notify/notification.hpp"

#include <stdexcept>

namespace shepherd {
namespace {

// Lenient with the payload (see payload_json): a bad key is treated as missing.
std::string string_at(const nlohmann::json& p, const char* key) {
  auto it = p.find(key);
  return it != p.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

Notification from_action(const Action& action) {
  if (action.kind != ActionKind::Notify)
    throw std::invalid_argument("action " + action.id + " is " +
                                std::string(to_string(action.kind)) + ", not notify");
  const nlohmann::json p = payload_json(action);
  Notification n;
  n.id = action.id;
  n.kind = string_at(p, "kind");
  n.job = string_at(p, "job");
  if (auto it = p.find("nodes"); it != p.end() && it->is_array()) {
    for (const auto& node : *it)
      if (node.is_string()) n.nodes.push_back(node.get<std::string>());
  }
  n.reason = string_at(p, "reason");
  if (auto it = p.find("attempt"); it != p.end() && it->is_number_integer())
    n.attempt = it->get<int>();
  n.at = action.created_at;
  return n;
}

nlohmann::json to_json(const Notification& n) {
  return nlohmann::json{{"id", n.id},       {"kind", n.kind},     {"job", n.job},
                        {"nodes", n.nodes}, {"reason", n.reason}, {"attempt", n.attempt},
                        {"at", n.at}};
}

}  // namespace shepherd
