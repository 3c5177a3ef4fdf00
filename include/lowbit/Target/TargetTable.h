//===- TargetTable.h - Per-target tile and interleave table -----*- C++ -*-===//
//
// ONE table per target that both the compiler (packing, kernel generation)
// and the runtime (row partitioning, fall-back reporting) read. Each target
// lives in one source file under lib/Target/Targets/ that defines its
// TargetInfo and registers it; adding a target touches nothing else.
// No LLVM/MLIR dependency here (the runtime includes it).
//
// Refinements (codegen helper): KernelChoice::rowTile is the number of rows
// a generated kernel's micro-tile computes together in prompt shapes (any
// value; the packed layout is addressed per row), tokenTile the tokens
// sharing each decoded weight block. One-token calls use rowTile
// accumulators (two rows each for 4/5-bit 32-blocks), at most one
// interleave group. Kernels accept any rowBegin/rowEnd; multiples of
// interleaveRows keep each thread's reads in whole groups. TargetInfo::isa
// names the instruction-set family the kernel generator lowers dot products
// for; hostSupports() says whether the running CPU can execute the target's
// code. Registration: each file under lib/Target/Targets/ defines one
// `LOWBIT_TARGET(Name)` function (see docs/TARGETS.md); CMake collects them.
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
  /// token tile for prompt (many-token) shapes. Formats with a group prompt
  /// path (Q4_0 on x86) take whole interleave groups and tokenTile tokens
  /// per micro-tile, their accumulators one per token.
  uint32_t rowTile;
  uint32_t tokenTile;
  /// Short name of the dot-product instruction path ("avx2-maddubs",
  /// "avx512-vnni", "neon-sdot", "scalar").
  const char *dotPath;
};

/// The most rows a group prompt path takes at a time (Q4_0's and Q8_0's
/// 8; Q4_K's 4): the runtime splits a matmul's rows among threads in
/// multiples of it, so every range starts a group.
constexpr uint32_t kPromptGroupRows = 8;

/// Instruction-set family: selects how the kernel generator lowers integer
/// dot products and half-precision conversions.
enum class ISA : uint8_t { X86AVX2, X86AVX512VNNI, AArch64Neon };

struct TargetInfo {
  const char *name;     // "x86-64-v3"
  const char *triple;   // "x86_64-unknown-linux-gnu"
  const char *cpu;      // "x86-64-v3"
  const char *features; // "+avx2,+fma,+f16c"
  uint32_t vectorBits;
  ISA isa;
  std::vector<KernelChoice> kernels;
  /// One line for --help and reports.
  const char *description = "";
  /// The choice for `weight`, or null: the runtime then reports a slow
  /// fall-back (decode to f32) loudly.
  const KernelChoice *find(formats::Format weight) const;
  /// True when the running CPU executes this target's code.
  bool hostSupports() const;
};

/// Registered targets, in registration order.
const std::vector<const TargetInfo *> &allTargets();
/// "host" resolves to the best registered target the running CPU supports
/// (null when none does). Null for unknown names.
const TargetInfo *findTarget(const std::string &name);
/// "host, x86-64-v3, x86-64-v4, aarch64" for messages.
std::string targetNames();

} // namespace lowbit::target

#endif // LOWBIT_TARGET_TARGETTABLE_H
