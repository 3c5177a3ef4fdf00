//===- TensorNames.cpp - Roles of weights <-> GGUF tensor names -----------===//

#include "lowbit/GGUF/TensorNames.h"

#include <cctype>

namespace lowbit::gguf {

namespace {

/// Parses a non-negative decimal number at the front of `s` followed by '.',
/// consuming both.
bool takeIndex(std::string_view &s, int64_t &out) {
  size_t i = 0;
  int64_t v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (v > (int64_t(1) << 40))
      return false;
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  if (i == 0 || i >= s.size() || s[i] != '.' || (i > 1 && s[0] == '0'))
    return false;
  out = v;
  s.remove_prefix(i + 1);
  return true;
}

bool validKind(std::string_view kind) {
  if (kind.empty())
    return false;
  for (char c : kind)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  return std::islower(static_cast<unsigned char>(kind[0]));
}

} // namespace

std::optional<TensorRole> roleOfTensorName(std::string_view name) {
  TensorRole role;
  std::string_view rest = name;
  bool bias = false;
  auto endsWith = [&](std::string_view suffix) {
    return rest.size() > suffix.size() &&
           rest.substr(rest.size() - suffix.size()) == suffix;
  };
  if (endsWith(".weight")) {
    rest.remove_suffix(7);
  } else if (endsWith(".bias")) {
    rest.remove_suffix(5);
    bias = true;
  } else {
    return std::nullopt;
  }
  if (rest.substr(0, 4) == "blk.") {
    rest.remove_prefix(4);
    if (!takeIndex(rest, role.layer))
      return std::nullopt;
  }
  // Per-expert tensors: <kind>.<expert>.
  size_t dot = rest.rfind('.');
  if (dot != std::string_view::npos) {
    std::string index(rest.substr(dot + 1));
    index += '.';
    std::string_view digits(index);
    if (!takeIndex(digits, role.expert) || !digits.empty())
      return std::nullopt;
    rest = rest.substr(0, dot);
  }
  if (!validKind(rest))
    return std::nullopt;
  role.kind = std::string(rest) + (bias ? ".bias" : "");
  return role;
}

std::string tensorNameOfRole(const TensorRole &role) {
  std::string kind = role.kind, suffix = ".weight";
  if (kind.size() > 5 && kind.compare(kind.size() - 5, 5, ".bias") == 0) {
    kind.resize(kind.size() - 5);
    suffix = ".bias";
  }
  std::string name;
  if (role.layer >= 0)
    name = "blk." + std::to_string(role.layer) + ".";
  name += kind;
  if (role.expert >= 0)
    name += "." + std::to_string(role.expert);
  return name + suffix;
}

} // namespace lowbit::gguf
