#pragma once
// The one way an enum gets its names: a constexpr table of (value, name) pairs, read both ways.
// Each enum's to_string/parse are two lines over its table.
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace shepherd {

template <typename E, std::size_t N>
using EnumNames = std::array<std::pair<E, std::string_view>, N>;

template <typename E, std::size_t N>
constexpr std::string_view name_of(const EnumNames<E, N>& names, E value) {
  for (const auto& [v, n] : names)
    if (v == value) return n;
  return "?";
}

template <typename E, std::size_t N>
constexpr std::optional<E> value_of(const EnumNames<E, N>& names, std::string_view name) {
  for (const auto& [v, n] : names)
    if (n == name) return v;
  return std::nullopt;
}

}  // namespace shepherd
