//===- FormatRegistry.cpp - Lookup into FormatTable.def -------------------===//
#include "lowbit/Formats/Formats.h"

#include <cctype>

namespace lowbit::formats {
namespace {
const FormatInfo kFormats[] = {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind)                           \
  {Format::Id, name, ggml, bs, bb, FormatKind::kind},
#include "lowbit/Formats/FormatTable.def"
};
const char *const kGGMLNames[] = {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind) #Id,
#include "lowbit/Formats/FormatTable.def"
};
constexpr size_t kNumFormats = sizeof(kFormats) / sizeof(kFormats[0]);
} // namespace

const FormatInfo *allFormats(size_t &count) {
  count = kNumFormats;
  return kFormats;
}

const FormatInfo &info(Format format) {
  return kFormats[static_cast<size_t>(format)];
}

const char *ggmlName(Format format) {
  return kGGMLNames[static_cast<size_t>(format)];
}

const FormatInfo *findByName(std::string_view name) {
  for (const FormatInfo &f : kFormats) {
    std::string_view candidate(f.name);
    if (candidate.size() != name.size())
      continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(name[i])) == candidate[i];
    if (same)
      return &f;
  }
  return nullptr;
}

const FormatInfo *findByGGMLType(uint32_t ggmlType) {
  for (const FormatInfo &f : kFormats)
    if (f.ggmlType >= 0 && static_cast<uint32_t>(f.ggmlType) == ggmlType)
      return &f;
  return nullptr;
}

} // namespace lowbit::formats
