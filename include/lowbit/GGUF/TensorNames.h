//===- TensorNames.h - Roles of weights <-> GGUF tensor names ---*- C++ -*-===//
//
// The one map between what a weight is (its role: a kind such as attn_q, the
// layer, the expert) and the name llama.cpp gives it in a GGUF file
// ("blk.3.attn_q.weight"). The GGUF importer names roles with it, the GGUF
// exporter names tensors with it, and the three places users speak GGUF
// names go through it: --tensor-type regexes, imatrix entry names, and
// llama.cpp's layer counting in the presets. No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_GGUF_TENSORNAMES_H
#define LOWBIT_GGUF_TENSORNAMES_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit::gguf {

struct TensorRole {
  /// llama.cpp's tensor kind: "token_embd", "output_norm", "attn_q",
  /// "ffn_up_exps", ...; a bias is the kind followed by ".bias"
  /// ("attn_q.bias").
  std::string kind;
  /// Block index, -1 for tensors outside the blocks.
  int64_t layer = -1;
  /// Expert index of a per-expert tensor, -1 otherwise (GGUF stacks experts
  /// into one 3-D tensor, whose role has no expert).
  int64_t expert = -1;

  bool operator==(const TensorRole &o) const {
    return kind == o.kind && layer == o.layer && expert == o.expert;
  }
};

/// The role of a llama.cpp tensor name ("blk.3.attn_q.weight" -> {attn_q, 3},
/// "token_embd.weight" -> {token_embd}, "blk.0.attn_q.bias" ->
/// {attn_q.bias, 0}, "blk.1.ffn_up.2.weight" -> {ffn_up, 1, 2}); nullopt for
/// a name outside that scheme.
std::optional<TensorRole> roleOfTensorName(std::string_view name);

/// The llama.cpp tensor name of a role; roleOfTensorName(tensorNameOfRole(r))
/// == r for every role it returns.
std::string tensorNameOfRole(const TensorRole &role);

} // namespace lowbit::gguf

#endif // LOWBIT_GGUF_TENSORNAMES_H
