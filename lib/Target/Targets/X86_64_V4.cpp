//===- X86_64_V4.cpp - x86-64-v4 with AVX-512 VNNI ------------------------===//
//
// Skylake-SP/Ice Lake/Sapphire Rapids, Zen 4 and later. Integer dot products
// with vpdpbusd (u8 x s8 -> s32, no intermediate saturation) on 256-bit
// vectors (AVX512VL): a 32-weight block is one ymm, and 32 registers allow
// larger micro-tiles than AVX2. Token tiles measured with bench-kernels'
// prompt column (EPYC, AVX-512 VNNI): Q4_0's group prompt path (8 rows x
// tokenTile tokens, one accumulator per token) 260 GOP/s per thread at 8
// tokens, 283 at 16; Q4_K 167 -> 219 from 2 to 4 tokens, Q6_K 162 -> 166.
// Q8_0's group prompt path (8 rows x 4 tokens, two chains per token): ~225,
// against ~120 for its row tiles. Q4_K's (4 rows): ~210 at 4 tokens, ~188 at
// 8 (spills); an 8-row Q4_K path measured no faster (~185).
// Q4_K's group prompt path (4 rows x tokenTile tokens): ~210 GOP/s at 4
// tokens, ~188 at 8 (register spills). Q4_K stays at 4 rows: at 8 rows the
// one-token tiles read 21-23 GB/s instead of 28-31.
//
//===----------------------------------------------------------------------===//
#include "../TargetRegistry.h"

using lowbit::formats::Format;
using lowbit::target::ISA;
using lowbit::target::TargetInfo;

LOWBIT_TARGET(X86_64_V4) {
  static const TargetInfo target{
      "x86-64-v4",
      "x86_64-unknown-linux-gnu",
      "x86-64-v4",
      "+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx512cd,+avx512vnni,+avx2,"
      "+fma,+f16c,+bmi2",
      512,
      ISA::X86AVX512VNNI,
      {
          {Format::F32, 1, Format::F32, 4, 4, "avx512-fma"},
          {Format::F16, 1, Format::F32, 4, 4, "avx512-fma"},
          {Format::BF16, 1, Format::F32, 4, 4, "avx512-fma"},
          {Format::Q8_0, 4, Format::Q8_0, 4, 4, "avx512-vnni"},
          {Format::Q4_0, 8, Format::Q8_0, 4, 16, "avx512-vnni"},
          {Format::Q4_1, 8, Format::Q8_0, 4, 4, "avx512-vnni"},
          {Format::Q5_0, 8, Format::Q8_0, 4, 4, "avx512-vnni"},
          {Format::Q5_1, 8, Format::Q8_0, 4, 4, "avx512-vnni"},
          {Format::Q2_K, 4, Format::Q8_K, 4, 2, "avx512-vnni"},
          {Format::Q3_K, 4, Format::Q8_K, 4, 2, "avx512-vnni"},
          {Format::Q4_K, 4, Format::Q8_K, 4, 4, "avx512-vnni"},
          {Format::Q5_K, 4, Format::Q8_K, 4, 2, "avx512-vnni"},
          {Format::Q6_K, 4, Format::Q8_K, 4, 4, "avx512-vnni"},
          {Format::IQ4_NL, 8, Format::Q8_0, 4, 4, "avx512-vnni"},
          {Format::IQ4_XS, 4, Format::Q8_K, 4, 2, "avx512-vnni"},
          {Format::IQ2_XXS, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ2_XS, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ2_S, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ3_XXS, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ3_S, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ1_S, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
          {Format::IQ1_M, 1, Format::Q8_K, 2, 2, "avx512-vnni"},
      },
      "AVX-512 F/BW/VL/DQ/CD + VNNI (Ice Lake, Sapphire Rapids, Zen 4+)",
  };
  return target;
}
