//===- X86_64_V3.cpp - x86-64-v3: AVX2, FMA, F16C -------------------------===//
//
// Haswell and later, Zen 1 and later. Integer dot products with vpmaddubsw
// (u8 x s8 -> s16 pairs) and vpmaddwd (-> s32). 16 ymm registers bound the
// micro-tiles: rows x tokens accumulators plus the decoded weights. Token
// tiles measured with bench-kernels' prompt column (EPYC): Q4_0's group
// prompt path 164 GOP/s per thread at 4 tokens, 176 at 6, 191 at 8; Q4_K
// 61 -> 90 and Q6_K 62 -> 89 from 2 to 4 tokens (8: 87 and 98).
//
//===----------------------------------------------------------------------===//
#include "../TargetRegistry.h"

using lowbit::formats::Format;
using lowbit::target::ISA;
using lowbit::target::TargetInfo;

LOWBIT_TARGET(X86_64_V3) {
  static const TargetInfo target{
      "x86-64-v3",
      "x86_64-unknown-linux-gnu",
      "x86-64-v3",
      "+avx2,+fma,+f16c,+bmi2",
      256,
      ISA::X86AVX2,
      {
          // weight, interleave, activation, rowTile, tokenTile, dot path
          {Format::F32, 1, Format::F32, 4, 2, "avx2-fma"},
          {Format::F16, 1, Format::F32, 4, 2, "avx2-fma"},
          {Format::BF16, 1, Format::F32, 4, 2, "avx2-fma"},
          {Format::Q8_0, 4, Format::Q8_0, 4, 2, "avx2-maddubs"},
          {Format::Q4_0, 8, Format::Q8_0, 4, 8, "avx2-maddubs"},
          {Format::Q4_1, 8, Format::Q8_0, 4, 2, "avx2-maddubs"},
          {Format::Q5_0, 8, Format::Q8_0, 4, 2, "avx2-maddubs"},
          {Format::Q5_1, 8, Format::Q8_0, 4, 2, "avx2-maddubs"},
          {Format::Q2_K, 2, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::Q3_K, 2, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::Q4_K, 2, Format::Q8_K, 2, 4, "avx2-maddubs"},
          {Format::Q5_K, 2, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::Q6_K, 2, Format::Q8_K, 2, 4, "avx2-maddubs"},
          {Format::IQ4_NL, 8, Format::Q8_0, 4, 2, "avx2-maddubs"},
          {Format::IQ4_XS, 2, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ2_XXS, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ2_XS, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ2_S, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ3_XXS, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ3_S, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ1_S, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
          {Format::IQ1_M, 1, Format::Q8_K, 2, 2, "avx2-maddubs"},
      },
      "AVX2 + FMA + F16C (Haswell, Zen and later)",
  };
  return target;
}
