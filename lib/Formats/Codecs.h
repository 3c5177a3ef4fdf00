//===- Codecs.h - Per-format row codecs (internal) --------------*- C++ -*-===//
//
// Each format has one decode and one encode function over a row of `n`
// weights (n a multiple of the block size). Encoders take an optional
// per-column importance vector of length n (null = uniform). The public
// dispatch in Formats.h indexes these by Format.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_FORMATS_CODECS_H
#define LOWBIT_LIB_FORMATS_CODECS_H

#include <cstdint>
#include <cstring>

namespace lowbit::formats::detail {

using DecodeFn = void (*)(const void *src, float *dst, int64_t n);
using EncodeFn = void (*)(const float *src, void *dst, int64_t n,
                          const float *importance);

#define LOWBIT_DECLARE_CODEC(lower)                                            \
  void decode_##lower(const void *src, float *dst, int64_t n);                 \
  void encode_##lower(const float *src, void *dst, int64_t n,                  \
                      const float *importance);

// K-quants (KQuants.cpp).
LOWBIT_DECLARE_CODEC(q2_k)
LOWBIT_DECLARE_CODEC(q3_k)
LOWBIT_DECLARE_CODEC(q4_k)
LOWBIT_DECLARE_CODEC(q5_k)
LOWBIT_DECLARE_CODEC(q6_k)

// Plain floats (FloatCodecs.cpp).
LOWBIT_DECLARE_CODEC(f32)
LOWBIT_DECLARE_CODEC(f16)
LOWBIT_DECLARE_CODEC(bf16)

// ggml's legacy linear formats (LegacyQuants.cpp).
LOWBIT_DECLARE_CODEC(q4_0)
LOWBIT_DECLARE_CODEC(q4_1)
LOWBIT_DECLARE_CODEC(q5_0)
LOWBIT_DECLARE_CODEC(q5_1)
LOWBIT_DECLARE_CODEC(q8_0)

// Non-linear codebooks (CodebookQuants.cpp).
LOWBIT_DECLARE_CODEC(iq4_nl)
LOWBIT_DECLARE_CODEC(iq4_xs)
LOWBIT_DECLARE_CODEC(mxfp4)
LOWBIT_DECLARE_CODEC(nf4_g64)

// Lattice i-quants (LatticeQuants.cpp).
LOWBIT_DECLARE_CODEC(iq2_xxs)
LOWBIT_DECLARE_CODEC(iq2_xs)
LOWBIT_DECLARE_CODEC(iq2_s)
LOWBIT_DECLARE_CODEC(iq3_xxs)
LOWBIT_DECLARE_CODEC(iq3_s)

// IQ1_S, IQ1_M (IQ1Quants.cpp).
LOWBIT_DECLARE_CODEC(iq1_s)
LOWBIT_DECLARE_CODEC(iq1_m)

// Ternary (TernaryQuants.cpp).
LOWBIT_DECLARE_CODEC(tq1_0)
LOWBIT_DECLARE_CODEC(tq2_0)

// Activation formats of the native kernels (ActivationQuants.cpp).
LOWBIT_DECLARE_CODEC(q8_k)

// Group-wise integers for the non-GGUF exporters (IntGroupQuants.cpp).
LOWBIT_DECLARE_CODEC(i8_sym_g32)
LOWBIT_DECLARE_CODEC(i8_sym_g64)
LOWBIT_DECLARE_CODEC(i8_sym_g128)
LOWBIT_DECLARE_CODEC(i8_asym_g32)
LOWBIT_DECLARE_CODEC(i8_asym_g64)
LOWBIT_DECLARE_CODEC(i8_asym_g128)
LOWBIT_DECLARE_CODEC(i4_sym_g32)
LOWBIT_DECLARE_CODEC(i4_sym_g64)
LOWBIT_DECLARE_CODEC(i4_sym_g128)
LOWBIT_DECLARE_CODEC(i4_asym_g32)
LOWBIT_DECLARE_CODEC(i4_asym_g64)
LOWBIT_DECLARE_CODEC(i4_asym_g128)

// ---- Exact scalar conversions shared by every codec. ----

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// IEEE half -> float; exact for every input (subnormals, inf, NaN).
/// Branch-free (selects only) so row decoders vectorise.
inline float fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t shifted = static_cast<uint32_t>(h & 0x7fff) << 13;
  const uint32_t exp = shifted & 0x0f800000u;
  // Rebias the exponent by 127 - 15; Inf/NaN (exponent 31) go to 255.
  const uint32_t normal =
      shifted + (112u << 23) + (exp == 0x0f800000u ? 112u << 23 : 0u);
  // Zero and subnormals: mantissa * 2^-24, exact in float.
  const float subnormal =
      static_cast<float>(h & 0x3ff) * bitsFloat(0x33800000u); // 2^-24
  return bitsFloat(sign | (exp == 0 ? floatBits(subnormal) : normal));
}

/// float -> IEEE half, round to nearest even (what F16C and ggml do).
/// Branch-free: every case is computed and the right one selected, so row
/// encoders vectorise.
inline uint16_t fp32ToFp16(float f) {
  const uint32_t x = floatBits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffff;
  // Normal half: rebias the exponent (127 -> 15) and round the 13 dropped
  // mantissa bits to even; a carry into the exponent is the right answer.
  const uint32_t truncated = (absx >> 13) - (112u << 10);
  const uint32_t rem = absx & 0x1fff;
  const uint32_t roundUp = static_cast<uint32_t>(rem > 0x1000) |
                           (static_cast<uint32_t>(rem == 0x1000) & truncated);
  const uint32_t normal = truncated + (roundUp & 1);
  // Below 2^-14: count units of 2^-24; adding and removing 2^23 makes the
  // float adder round to even. The input is zeroed where unused so the
  // conversion below stays in range.
  const bool tiny = absx < 0x38800000u;
  const float scaled = bitsFloat(tiny ? absx : 0) * bitsFloat(0x4b800000u);
  const uint32_t subnormal = static_cast<uint32_t>(
      static_cast<int32_t>((scaled + 8388608.0f) - 8388608.0f));
  uint32_t h = tiny ? subnormal : normal;
  h = absx >= 0x477ff000u ? 0x7c00u : h; // Rounds to >= 65520: Inf.
  h = absx > 0x7f800000u ? 0x7e00u | ((absx >> 13) & 0x3ff) : h; // Quiet NaN.
  return static_cast<uint16_t>(sign | h);
}

inline float bf16ToFp32(uint16_t b) { return bitsFloat((uint32_t)b << 16); }

/// float -> bfloat16, round to nearest even; NaN kept quiet (as ggml).
inline uint16_t fp32ToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffff) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 64);
  return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/// Q4_K/Q5_K: scale and min `j` (0-7) of the 12 packed bytes at `q`:
/// entries 0-3 in the low 6 bits of bytes 0-3 (scale) and 4-7 (min); entries
/// 4-7 keep their low nibbles in bytes 8-11 and their top 2 bits in bits 6-7
/// of bytes 0-7.
inline void unpackScaleMin(int j, const uint8_t *q, uint8_t &sc, uint8_t &m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

} // namespace lowbit::formats::detail

#endif // LOWBIT_LIB_FORMATS_CODECS_H
