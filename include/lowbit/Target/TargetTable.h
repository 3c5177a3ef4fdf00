//===- TargetTable.h - Per-target tile and interleave table -----*- C++ -*-===//
//
// ONE table per target that both the compiler (packing, kernel generation)
// and the runtime (row partitioning, fall-back reporting) read. Each target
// lives in one source file under lib/Target/Targets/ that defines its
// TargetInfo and registers it; adding a target touches nothing else.
// No LLVM/MLIR dependency here (the runtime includes it).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TARGET_TARGETTABLE_H
#define LOWBIT_TARGET_TARGETTABLE_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::target {

/// How one weight format is executed on a target.
struct KernelChoice {
  formats::Format weight;
  /// Rows whose blocks are interleaved in the packed layout (1 = plain).
  uint32_t interleaveRows;
  /// Activation block format the kernel consumes (Q8_0, Q8_K-like; F32 for
  /// float weights).
  formats::Format activation;
  /// Rows of output each kernel call computes per inner iteration and the
  /// token tile for prompt (many-token) shapes.
  uint32_t rowTile;
  uint32_t tokenTile;
  /// Short name of the dot-product instruction path ("avx2-maddubs",
  /// "avx512-vnni", "neon-sdot", "scalar").
  const char *dotPath;
};

struct TargetInfo {
  const char *name;    // "x86-64-v3"
  const char *triple;  // "x86_64-unknown-linux-gnu"
  const char *cpu;     // "x86-64-v3"
  const char *features; // "+avx2,+fma,+f16c"
  uint32_t vectorBits;
  std::vector<KernelChoice> kernels;
  /// The choice for `weight`, or null: the runtime then reports a slow
  /// fall-back (decode to f32) loudly.
  const KernelChoice *find(formats::Format weight) const;
};

/// Registered targets, in registration order.
const std::vector<const TargetInfo *> &allTargets();
/// "host" resolves to the best registered target the running CPU supports.
const TargetInfo *findTarget(const std::string &name);

} // namespace lowbit::target

#endif // LOWBIT_TARGET_TARGETTABLE_H
