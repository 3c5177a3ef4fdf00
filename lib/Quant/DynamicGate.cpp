//===- DynamicGate.cpp - Layer-band rule tables over a preset -------------===//
//
// The published "IQ-DynamicGate" recipe says: the first and last 25% of the
// layers at IQ4_XS ("selected layers"), the middle 50% at IQ2_XXS/IQ3_S,
// embeddings and output at Q5_K. Made precise here: the outer bands raise
// the projections llama.cpp's own rules treat as most sensitive (attn_v,
// attn_output, ffn_down, and their fused or expert forms) to IQ4_XS and keep
// the preset's format elsewhere; the middle band puts attn_v and ffn_down at
// IQ3_S and every other matrix at IQ2_XXS unless the preset already chose
// more bits; token embeddings and output Q5_K.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Quant/DynamicGate.h"

#include <fnmatch.h>

#include <sstream>

namespace lowbit::quant {

using formats::Format;

namespace {

constexpr const char *kPublishedText =
    "# lowbit's default DynamicGate table (the published IQ-DynamicGate "
    "recipe)\n"
    "# band  kinds                                   format   mode\n"
    "all     token_embd                              q5_k\n"
    "all     output                                  q5_k\n"
    "outer   attn_v|attn_qkv|attn_output|ffn_down*   iq4_xs\n"
    "middle  attn_v|attn_qkv|ffn_down*               iq3_s\n"
    "middle  *                                       iq2_xxs  at-least\n";

struct BandName {
  GateBand band;
  const char *name;
};
constexpr BandName kBands[] = {
    {GateBand::First, "first"},   {GateBand::Last, "last"},
    {GateBand::Outer, "outer"},   {GateBand::Middle, "middle"},
    {GateBand::Layers, "layers"}, {GateBand::All, "all"},
};

bool matchesKind(const GateRule &rule, const std::string &kind) {
  for (const std::string &glob : rule.kinds)
    if (fnmatch(glob.c_str(), kind.c_str(), 0) == 0)
      return true;
  return false;
}

} // namespace

const char *bandName(GateBand band) {
  for (const BandName &b : kBands)
    if (b.band == band)
      return b.name;
  return "?";
}

bool inBand(GateBand band, int64_t layer, int64_t layers) {
  if (band == GateBand::All)
    return true;
  if (layer < 0 || layer >= layers)
    return false;
  const int64_t quarter = (layers + 3) / 4; // ceil(L / 4)
  const bool first = layer < quarter, last = layer >= layers - quarter;
  switch (band) {
  case GateBand::First:
    return first;
  case GateBand::Last:
    return last;
  case GateBand::Outer:
    return first || last;
  case GateBand::Middle:
    return !first && !last;
  case GateBand::Layers:
  case GateBand::All:
    return true;
  }
  return false;
}

const GateTable &GateTable::published() {
  static const GateTable table = [] {
    GateTable t;
    std::string error;
    bool ok = parse(kPublishedText, "published table", t, error);
    (void)ok;
    return t;
  }();
  return table;
}

bool GateTable::parse(const std::string &text, const std::string &source,
                      GateTable &table, std::string &error) {
  table.rules_.clear();
  std::istringstream in(text);
  std::string line;
  int number = 0;
  auto fail = [&](const std::string &what) {
    error = source + ":" + std::to_string(number) + ": " + what;
    return false;
  };
  while (std::getline(in, line)) {
    ++number;
    if (size_t hash = line.find('#'); hash != std::string::npos)
      line.resize(hash);
    std::istringstream fields(line);
    std::vector<std::string> words;
    for (std::string w; fields >> w;)
      words.push_back(w);
    if (words.empty())
      continue;
    if (words.size() < 3 || words.size() > 4)
      return fail("expected 'BAND KINDS FORMAT [at-least]', got " +
                  std::to_string(words.size()) + " fields");
    GateRule rule;
    rule.line = number;
    bool known = false;
    for (const BandName &b : kBands)
      if (words[0] == b.name) {
        rule.band = b.band;
        known = true;
      }
    if (!known)
      return fail("unknown band '" + words[0] +
                  "' (first, last, outer, middle, layers or all)");
    std::string kinds = words[1];
    for (size_t start = 0; start <= kinds.size();) {
      size_t bar = kinds.find('|', start);
      if (bar == std::string::npos)
        bar = kinds.size();
      if (bar == start)
        return fail("empty tensor kind in '" + kinds + "'");
      rule.kinds.push_back(kinds.substr(start, bar - start));
      start = bar + 1;
    }
    const formats::FormatInfo *f = formats::findByName(words[2]);
    if (!f)
      return fail("unknown format '" + words[2] + "'");
    if (f->ggmlType < 0 || f->format == Format::Q8_K)
      return fail("format '" + words[2] +
                  "' cannot store a weight in a GGUF file llama.cpp runs");
    rule.format = f->format;
    if (words.size() == 4) {
      if (words[3] != "at-least")
        return fail("unknown mode '" + words[3] + "' (at-least or nothing)");
      rule.atLeast = true;
    }
    table.rules_.push_back(std::move(rule));
  }
  if (table.rules_.empty()) {
    number = 0;
    return fail("the table has no rules");
  }
  return true;
}

std::string GateTable::text() const {
  std::string out;
  for (const GateRule &rule : rules_) {
    out += bandName(rule.band);
    out += ' ';
    for (size_t i = 0; i < rule.kinds.size(); ++i)
      out += (i ? "|" : "") + rule.kinds[i];
    out += ' ';
    out += formats::info(rule.format).name;
    if (rule.atLeast)
      out += " at-least";
    out += '\n';
  }
  return out;
}

Format GateTable::apply(const std::string &kind, int64_t layer, int64_t layers,
                        Format base, const GateRule **matched) const {
  if (matched)
    *matched = nullptr;
  for (const GateRule &rule : rules_) {
    if (!inBand(rule.band, layer, layers) || !matchesKind(rule, kind))
      continue;
    if (matched)
      *matched = &rule;
    if (rule.atLeast && formats::info(rule.format).bitsPerWeight() <
                            formats::info(base).bitsPerWeight())
      return base;
    return rule.format;
  }
  return base;
}

} // namespace lowbit::quant
