//===- TargetTable.cpp - The registry of targets --------------------------===//
//
// Targets come from Targets/*.cpp through the generated Targets.inc. "host"
// is resolved here by CPU feature detection.
//
//===----------------------------------------------------------------------===//
#include "TargetRegistry.h"

#include <algorithm>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#define LOWBIT_REGISTER_TARGET(Name) LOWBIT_TARGET(Name);
#include "Targets.inc"
#undef LOWBIT_REGISTER_TARGET

namespace lowbit::target {

const KernelChoice *TargetInfo::find(formats::Format weight) const {
  for (const KernelChoice &choice : kernels)
    if (choice.weight == weight)
      return &choice;
  return nullptr;
}

bool TargetInfo::hostSupports() const {
  switch (isa) {
  case ISA::X86AVX2:
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
#else
    return false;
#endif
  case ISA::X86AVX512VNNI:
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
  case ISA::AArch64Neon:
#if defined(__aarch64__) && defined(__linux__)
    // HWCAP_ASIMDDP (bit 20): the sdot/udot instructions.
    return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;
#else
    return false;
#endif
  }
  return false;
}

const std::vector<const TargetInfo *> &allTargets() {
  static const std::vector<const TargetInfo *> targets = {
#define LOWBIT_REGISTER_TARGET(Name) &lowbitTarget_##Name(),
#include "Targets.inc"
#undef LOWBIT_REGISTER_TARGET
  };
  return targets;
}

const TargetInfo *findTarget(const std::string &name) {
  if (name == "host") {
    // The widest vectors the CPU runs; registration order breaks ties.
    const TargetInfo *best = nullptr;
    for (const TargetInfo *t : allTargets())
      if (t->hostSupports() && (!best || t->vectorBits > best->vectorBits))
        best = t;
    return best;
  }
  for (const TargetInfo *t : allTargets())
    if (name == t->name)
      return t;
  return nullptr;
}

std::string targetNames() {
  std::string names = "host";
  for (const TargetInfo *t : allTargets())
    names += std::string(", ") + t->name;
  return names;
}

} // namespace lowbit::target
