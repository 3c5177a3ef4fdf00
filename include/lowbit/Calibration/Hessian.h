//===- Hessian.h - Per-matmul input Hessians X^T X --------------*- C++ -*-===//
//
// GPTQ and AWQ need, for every weight W[N, K], the calibration Hessian
// H = sum over tokens of x x^T (K x K) of the activations x that multiply W.
// Weights that share an input (q/k/v, gate/up) share one Hessian. The
// lowbit-calibrate pass accumulates them a group of layers at a time so that
// at most a given budget of memory holds Hessians, and writes them into a
// calibration state file (GGUF):
//   tensor  "<weight>.hessian"  F32 [K, K] (row-major, symmetric), stored once
//            per input group under the first weight's name;
//   key     "lowbit.hessian.of.<weight>" = string: the name the group's
//            Hessian is stored under (one key per weight, so any weight
//            finds its Hessian);
//   key     "lowbit.hessian.tokens" = u64: tokens accumulated.
// Each expert of a stacked 3-D weight has its own Hessian, from the tokens
// routed to it, under the matrix name "<weight>.expert<E>" (gate and up of
// one expert share one).
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_CALIBRATION_HESSIAN_H
#define LOWBIT_CALIBRATION_HESSIAN_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::calib {

/// The name the Hessian of a weight's matrix is found under: the weight's
/// name, or "<weight>.expert<E>" for expert E of a stacked 3-D weight.
std::string hessianMatrixName(const std::string &weight, int64_t expert,
                              int64_t experts);

/// The Hessian of a k-column matrix no calibration token reached (an expert
/// nothing was routed to): the identity, under which GPTQ weighs every
/// column the same.
std::vector<float> identityHessian(int64_t k);

class HessianStore {
public:
  /// Opens a calibration state file (mmap'ed); null + `error` on failure.
  static std::unique_ptr<HessianStore> open(const std::string &path,
                                            std::string &error);
  virtual ~HessianStore() = default;
  /// True when the state names a Hessian for `weight` (get() checks it).
  virtual bool has(const std::string &weight) const = 0;
  /// Copies the K x K Hessian of `weight` (sum of x x^T, not averaged) into
  /// `out`; false + `error` when missing or malformed.
  virtual bool get(const std::string &weight, std::vector<float> &out,
                   int64_t &k, std::string &error) const = 0;
  /// Tokens accumulated into every Hessian.
  virtual uint64_t tokens() const = 0;
};

} // namespace lowbit::calib

#endif // LOWBIT_CALIBRATION_HESSIAN_H
