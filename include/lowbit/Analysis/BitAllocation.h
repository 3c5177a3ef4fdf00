//===- BitAllocation.h - One format per tensor under a budget ---*- C++ -*-===//
//
// The allocation problem: every tensor has a few options (a format, its
// bytes in the file, its predicted damage); choose one option per tensor so
// that the total bytes fit a budget and the total damage is smallest. It is a
// multiple-choice knapsack:
//
//  - Exact: dynamic programming over the budget in units of the greatest
//    common divisor of the option sizes (in a GGUF file every tensor is
//    padded to the alignment, so the unit is at least 32 bytes), after taking
//    every tensor's smallest option out of the budget. Used when the table
//    (tensors x units) is small enough: up to ~10^8 cells, which covers
//    models up to a few hundred MB.
//  - Lagrangian: for a price lambda on bytes each tensor independently takes
//    the option minimising damage + lambda * bytes (a point on the lower
//    convex hull of its options); bisection finds the smallest lambda whose
//    choice fits. The budget left over is then filled greedily: the upgrade
//    with the best damage saved per byte that still fits, repeated. Within
//    one option's size of the optimum, at any model size.
//
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ANALYSIS_BITALLOCATION_H
#define LOWBIT_ANALYSIS_BITALLOCATION_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::analysis {

struct AllocationOption {
  uint64_t bytes = 0; // as stored (padded to the file's alignment)
  double damage = 0;  // predicted; >= 0
  int id = 0;         // the caller's tag (e.g. a format)
};

struct AllocationTensor {
  std::string name;
  std::vector<AllocationOption> options; // at least one
};

enum class AllocationMethod { Auto, Exact, Lagrangian };

struct AllocationResult {
  std::vector<size_t> choice; // option index per tensor
  uint64_t bytes = 0;
  double damage = 0;
  /// "exact" or "lagrangian" (what Auto picked).
  std::string method;
  /// Lagrangian only: the price of a byte at the relaxed optimum.
  double lambda = 0;
};

/// Chooses one option per tensor with total bytes <= `budget` and minimal
/// total damage. False with `err` when even the smallest options do not fit.
bool allocateBits(const std::vector<AllocationTensor> &tensors, uint64_t budget,
                  AllocationResult &result, std::string &err,
                  AllocationMethod method = AllocationMethod::Auto);

/// User pins (--tensor-type REGEX=FORMAT, ECMAScript regex searched in the
/// tensor name, first match wins). Here rather than in a pass so that a bad
/// regex is an error message in code built without exceptions.
class TensorPins {
public:
  TensorPins();
  ~TensorPins();
  /// False with `err` for a malformed rule, format or regex.
  bool parse(const std::vector<std::string> &rules, std::string &err);
  /// The pinned format (a formats::Format value) of `name` and the rule that
  /// matched; -1 when no rule matches.
  int match(const std::string &name, std::string *rule = nullptr) const;
  bool empty() const;

private:
  struct Rules;
  std::unique_ptr<Rules> rules_;
};

/// Parses a size: a number of bytes with an optional unit, binary (KiB, MiB,
/// GiB, TiB) or decimal (KB, MB, GB, TB, B), case-insensitive, fractions
/// allowed: "3.2GiB", "3200MB", "123456". False with `err` otherwise.
bool parseByteSize(const std::string &text, uint64_t &bytes, std::string &err);

} // namespace lowbit::analysis

#endif // LOWBIT_ANALYSIS_BITALLOCATION_H
