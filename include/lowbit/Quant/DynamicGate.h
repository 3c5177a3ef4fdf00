//===- DynamicGate.h - Layer-band rule tables over a preset -----*- C++ -*-===//
//
// "IQ-DynamicGate" as a table: rules of (layer band x tensor kind -> format)
// that modify the per-tensor formats a preset chose. The bands split the
// model's L layers into the first ceil(L/4), the last ceil(L/4) and the
// middle rest. The first rule that matches a tensor decides; a tensor no
// rule matches keeps the preset's format. No MLIR dependency; the
// lowbit-assign-formats pass applies it (`lowbit compile --dynamic-gate`).
//
// Text form, one rule per line ('#' starts a comment):
//
//   BAND   KINDS              FORMAT   [at-least]
//   outer  attn_v|attn_qkv    iq4_xs
//   middle *                  iq2_xxs  at-least
//
// BAND is first, last, outer (first or last), middle, layers (any layer) or
// all (any tensor, also those outside the layers: token_embd, output).
// KINDS is a '|'-separated list of shell globs over the weight's role kind
// (attn_q, ffn_down, ffn_down_exps, token_embd, ...). `at-least` applies the
// format only when it has at least the bits per weight of the preset's.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_QUANT_DYNAMICGATE_H
#define LOWBIT_QUANT_DYNAMICGATE_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::quant {

enum class GateBand { First, Last, Outer, Middle, Layers, All };

struct GateRule {
  GateBand band = GateBand::All;
  std::vector<std::string> kinds; // globs, any may match
  formats::Format format = formats::Format::F32;
  bool atLeast = false;
  int line = 0; // in the table's text, for reports
};

class GateTable {
public:
  /// The published recipe, made precise (see the file comment of
  /// DynamicGate.cpp).
  static const GateTable &published();
  /// Parses a table; on error returns false with `error` naming the line.
  static bool parse(const std::string &text, const std::string &source,
                    GateTable &table, std::string &error);
  /// The table in its text form (parse(text()) gives it back).
  std::string text() const;

  /// The format for a tensor of role `kind` in `layer` (-1: outside the
  /// layers) of a model with `layers` layers, whose preset chose `base`;
  /// `base` when no rule matches. `rule` (when non-null) is set to the
  /// matching rule or null.
  formats::Format apply(const std::string &kind, int64_t layer, int64_t layers,
                        formats::Format base,
                        const GateRule **rule = nullptr) const;

  const std::vector<GateRule> &rules() const { return rules_; }

private:
  std::vector<GateRule> rules_;
};

/// The band of `layer` (-1: none, i.e. outside the layers).
bool inBand(GateBand band, int64_t layer, int64_t layers);
const char *bandName(GateBand band);

} // namespace lowbit::quant

#endif // LOWBIT_QUANT_DYNAMICGATE_H
