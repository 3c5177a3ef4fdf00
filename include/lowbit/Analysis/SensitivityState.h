//===- SensitivityState.h - Saved sensitivity results -----------*- C++ -*-===//
//
// lowbit-sensitivity's results, kept in a JSON file so that a later compile
// with another budget reuses them and an interrupted analysis resumes:
//
//   {"format": "lowbit-sensitivity", "version": 1,
//    "model": "<fingerprint of the weights>",
//    "statistics": "<fingerprint of the activation statistics used>",
//    "tensors": {"blk.0.attn_q.weight": {"q4_k": {
//        "damage": ..., "weighted": ..., "bias": ..., "plain": ...,
//        "norm": ..., "seconds": ..., "kld": ..., "kld_tokens": ...}, ...}}}
//
// Entries are keyed by tensor and format under one model and one set of
// statistics; the file is rewritten (temporary file + rename) after every
// tensor, so an interruption loses at most the tensor in progress.
//
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ANALYSIS_SENSITIVITYSTATE_H
#define LOWBIT_ANALYSIS_SENSITIVITYSTATE_H

#include <cstdint>
#include <map>
#include <string>

namespace lowbit::analysis {

struct SensitivityEntry {
  double damage = 0;   // weighted + bias (what the allocator minimises)
  double weighted = 0; // importance-weighted squared error
  double bias = 0;     // bias term from mean activations
  double plain = 0;    // unweighted squared error
  double norm = 0;     // squared norm of the weights
  double seconds = 0;  // cost of the measurement
  /// Measured mean KL divergence when only this tensor is quantized;
  /// < 0 when not measured.
  double kld = -1;
  int64_t kldTokens = 0; // positions the KL divergence was measured on
  double kldSeconds = 0;
  /// The same with the tensor quantized by GPTQ (method=gptq): the damage
  /// GPTQ leaves differs by format (column-level feedback inside K-quant and
  /// legacy blocks, block-level only inside the lattice i-quants).
  double kldGPTQ = -1;
  int64_t kldGPTQTokens = 0;
  double kldGPTQSeconds = 0;
};

class SensitivityState {
public:
  std::string model;      // weights fingerprint
  std::string statistics; // activation statistics fingerprint
  std::map<std::string, std::map<std::string, SensitivityEntry>> tensors;

  /// Loads `path`. A missing file gives an empty state (true, `existed`
  /// false); a corrupt one fails with `err` naming the file.
  static bool load(const std::string &path, SensitivityState &out,
                   bool &existed, std::string &err);
  /// Writes `path` through a temporary file renamed over it.
  bool save(const std::string &path, std::string &err) const;

  const SensitivityEntry *find(const std::string &tensor,
                               const std::string &format) const;
};

} // namespace lowbit::analysis

#endif // LOWBIT_ANALYSIS_SENSITIVITYSTATE_H
