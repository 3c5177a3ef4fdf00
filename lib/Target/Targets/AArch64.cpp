//===- AArch64.cpp - AArch64 with NEON and the dot-product extension ------===//
//
// Armv8.2-A+dotprod and later (Cortex-A76/A78/X1, Neoverse N1/V1, Apple
// M1). Integer dot products with sdot (s8 x s8 -> s32 over groups of four).
// 32 q registers; a 32-weight block is two of them.
//
//===----------------------------------------------------------------------===//
#include "../TargetRegistry.h"

using lowbit::formats::Format;
using lowbit::target::ISA;
using lowbit::target::TargetInfo;

LOWBIT_TARGET(AArch64) {
  static const TargetInfo target{
      "aarch64",
      "aarch64-unknown-linux-gnu",
      "generic",
      "+neon,+dotprod",
      128,
      ISA::AArch64Neon,
      {
          {Format::F32, 1, Format::F32, 4, 2, "neon-fma"},
          {Format::F16, 1, Format::F32, 4, 2, "neon-fma"},
          {Format::BF16, 1, Format::F32, 4, 2, "neon-fma"},
          {Format::Q8_0, 4, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::Q4_0, 8, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::Q4_1, 8, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::Q5_0, 8, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::Q5_1, 8, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::Q2_K, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::Q3_K, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::Q4_K, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::Q5_K, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::Q6_K, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ4_NL, 8, Format::Q8_0, 4, 2, "neon-sdot"},
          {Format::IQ4_XS, 2, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ2_XXS, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ2_XS, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ2_S, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ3_XXS, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ3_S, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ1_S, 1, Format::Q8_K, 2, 2, "neon-sdot"},
          {Format::IQ1_M, 1, Format::Q8_K, 2, 2, "neon-sdot"},
      },
      "Armv8.2-A NEON + dotprod (Cortex-A76+, Neoverse N1+, Apple M1+)",
  };
  return target;
}
