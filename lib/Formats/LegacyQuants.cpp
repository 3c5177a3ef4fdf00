//===- LegacyQuants.cpp - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 --------------------===//
//
// ggml's 32-weight linear formats. Block layouts (ggml-common.h):
//
//   Q4_0  f16 d | 16 B nibbles                      x = (q - 8) * d
//   Q4_1  f16 d | f16 m | 16 B nibbles              x = q * d + m
//   Q5_0  f16 d | u32 high bits | 16 B nibbles      x = (q - 16) * d
//   Q5_1  f16 d | f16 m | u32 high bits | 16 B      x = q * d + m
//   Q8_0  f16 d | 32 x int8                         x = q * d
//
// Nibble byte j holds element j (low) and element j + 16 (high); bit j of the
// high-bit word is bit 4 of element j.
//
// Without importance the encoders are ggml's reference round-to-nearest (the
// bytes match quantize_row_*_ref, so files are reproducible across tools).
// With importance they run a weighted scale search and then round every
// weight against the stored f16 scale, which is the nearest level for each
// weight given that scale.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"
#include "lowbit/Formats/Formats.h"

#include <cassert>
#include <cfloat>
#include <cstring>

namespace lowbit::formats::detail {
namespace {

constexpr int kBlock = 32;

// Decoders: the float arithmetic is ggml's, operation for operation, so the
// results (signed zeros included) are bit-identical.

template <bool HasMin, bool HasHighBit>
void decodeLinear4or5(const uint8_t *src, float *dst, int64_t n) {
  constexpr int kHeader = 2 + (HasMin ? 2 : 0) + (HasHighBit ? 4 : 0);
  constexpr int kBlockBytes = kHeader + 16;
  constexpr int kOffset = HasMin ? 0 : (HasHighBit ? 16 : 8);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t *blk = src + b * kBlockBytes;
    float *y = dst + b * kBlock;
    const float d = loadHalf(blk);
    const float m = HasMin ? loadHalf(blk + 2) : 0.f;
    const uint32_t high = HasHighBit ? loadU32(blk + (HasMin ? 4 : 2)) : 0;
    const uint8_t *qs = blk + kHeader;
    for (int j = 0; j < 16; ++j) {
      int lo = qs[j] & 0x0f;
      int hi = qs[j] >> 4;
      if (HasHighBit) {
        lo |= ((high >> j) << 4) & 0x10;
        hi |= (high >> (j + 12)) & 0x10;
      }
      if (HasMin) {
        y[j] = static_cast<float>(lo) * d + m;
        y[j + 16] = static_cast<float>(hi) * d + m;
      } else {
        y[j] = static_cast<float>(lo - kOffset) * d;
        y[j + 16] = static_cast<float>(hi - kOffset) * d;
      }
    }
  }
}

/// Packs 32 levels (each < 32) into nibbles and, for 5-bit formats, the
/// high-bit word.
template <bool HasHighBit>
void packLevels(const uint8_t *levels, uint8_t *qs, uint8_t *highOut) {
  uint32_t high = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((levels[j] & 0x0f) |
                                 ((levels[j + 16] & 0x0f) << 4));
    high |= static_cast<uint32_t>((levels[j] >> 4) & 1) << j;
    high |= static_cast<uint32_t>((levels[j + 16] >> 4) & 1) << (j + 16);
  }
  if (HasHighBit)
    storeU32(highOut, high);
}

// ---- Reference round-to-nearest (no importance) ----

/// Q4_0 / Q5_0: the value of largest magnitude maps to level -nmax, so the
/// scale keeps its sign and the extra negative level is used.
template <int Nmax, bool HasHighBit>
void encodeSymmetricReference(const float *x, uint8_t *blk) {
  float amax;
  const float max = signedAbsMax(x, kBlock, amax);
  const float d = max / -static_cast<float>(Nmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  storeHalfScale(blk, d);
  uint8_t levels[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    // Truncation of a value >= 0.5 is ggml's round-half-up.
    int l = static_cast<int>(x[j] * id + (Nmax + 0.5f));
    levels[j] = static_cast<uint8_t>(l < 2 * Nmax - 1 ? l : 2 * Nmax - 1);
  }
  packLevels<HasHighBit>(levels, blk + (HasHighBit ? 6 : 2), blk + 2);
}

/// Q4_1 / Q5_1: d = (max - min) / nmax, m = min.
template <int Nmax, bool HasHighBit>
void encodeMinReference(const float *x, uint8_t *blk) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < kBlock; ++j) {
    min = x[j] < min ? x[j] : min;
    max = x[j] > max ? x[j] : max;
  }
  const float d = (max - min) / Nmax;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  storeHalfScale(blk, d);
  storeHalfScale(blk + 2, min);
  uint8_t levels[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    int l = static_cast<int>((x[j] - min) * id + 0.5f);
    levels[j] = static_cast<uint8_t>(l < Nmax ? l : Nmax);
  }
  packLevels<HasHighBit>(levels, blk + (HasHighBit ? 8 : 4), blk + 4);
}

// ---- Importance-aware ----

/// Mean square of the row: the spread term of the importance weights.
float rowSigma2(const float *x, int64_t n) { return sumOfSquares(x, n) / n; }

template <int Nmax, bool HasHighBit>
void encodeSymmetricWeighted(const float *x, const float *importance,
                             float sigma2, uint8_t *blk) {
  float w[kBlock];
  importanceWeights(x, importance, kBlock, sigma2, w);
  const float d = storeHalfScale(blk, searchSymmetricScale(x, w, kBlock, Nmax));
  const float id = d != 0 ? 1.0f / d : 0.0f;
  uint8_t levels[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    float v = x[j] * id;
    v = v < -Nmax ? -Nmax : (v > Nmax - 1 ? Nmax - 1 : v);
    levels[j] = static_cast<uint8_t>(roundNearestEven(v) + Nmax);
  }
  packLevels<HasHighBit>(levels, blk + (HasHighBit ? 6 : 2), blk + 2);
}

template <int Nmax, bool HasHighBit>
void encodeMinWeighted(const float *x, const float *importance, float sigma2,
                       uint8_t *blk) {
  float w[kBlock];
  importanceWeights(x, importance, kBlock, sigma2, w);
  float min;
  float scale = searchMinScale(x, w, kBlock, Nmax, -0.9f, 0.05f, 36, min);
  const float d = storeHalfScale(blk, scale);
  const float m = storeHalfScale(blk + 2, min);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  uint8_t levels[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    float v = (x[j] - m) * id;
    v = v < 0 ? 0 : (v > Nmax ? Nmax : v);
    levels[j] = static_cast<uint8_t>(roundNearestEven(v));
  }
  packLevels<HasHighBit>(levels, blk + (HasHighBit ? 8 : 4), blk + 4);
}

template <int Nmax, bool HasHighBit, int BlockBytes>
void encodeSymmetricRow(const float *src, uint8_t *dst, int64_t n,
                        const float *importance) {
  const float sigma2 = importance ? rowSigma2(src, n) : 0.f;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    if (importance)
      encodeSymmetricWeighted<Nmax, HasHighBit>(src + b * kBlock,
                                                importance + b * kBlock, sigma2,
                                                dst + b * BlockBytes);
    else
      encodeSymmetricReference<Nmax, HasHighBit>(src + b * kBlock,
                                                 dst + b * BlockBytes);
  }
}

template <int Nmax, bool HasHighBit, int BlockBytes>
void encodeMinRow(const float *src, uint8_t *dst, int64_t n,
                  const float *importance) {
  const float sigma2 = importance ? rowSigma2(src, n) : 0.f;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    if (importance)
      encodeMinWeighted<Nmax, HasHighBit>(src + b * kBlock,
                                          importance + b * kBlock, sigma2,
                                          dst + b * BlockBytes);
    else
      encodeMinReference<Nmax, HasHighBit>(src + b * kBlock,
                                           dst + b * BlockBytes);
  }
}

} // namespace

void decode_q4_0(const void *src, float *dst, int64_t n) {
  decodeLinear4or5<false, false>(static_cast<const uint8_t *>(src), dst, n);
}
void decode_q4_1(const void *src, float *dst, int64_t n) {
  decodeLinear4or5<true, false>(static_cast<const uint8_t *>(src), dst, n);
}
void decode_q5_0(const void *src, float *dst, int64_t n) {
  decodeLinear4or5<false, true>(static_cast<const uint8_t *>(src), dst, n);
}
void decode_q5_1(const void *src, float *dst, int64_t n) {
  decodeLinear4or5<true, true>(static_cast<const uint8_t *>(src), dst, n);
}

void decode_q8_0(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t *blk = in + b * 34;
    const float d = loadHalf(blk);
    const int8_t *qs = reinterpret_cast<const int8_t *>(blk + 2);
    for (int j = 0; j < kBlock; ++j)
      dst[b * kBlock + j] = static_cast<float>(qs[j]) * d;
  }
}

void encode_q4_0(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeSymmetricRow<8, false, 18>(src, static_cast<uint8_t *>(dst), n,
                                   importance);
}
void encode_q5_0(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeSymmetricRow<16, true, 22>(src, static_cast<uint8_t *>(dst), n,
                                   importance);
}
void encode_q4_1(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeMinRow<15, false, 20>(src, static_cast<uint8_t *>(dst), n, importance);
}
void encode_q5_1(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeMinRow<31, true, 24>(src, static_cast<uint8_t *>(dst), n, importance);
}

// Q8_0 is ggml's reference with or without importance: at 8 bits a scale
// search gains little and ggml ignores the importance too.
void encode_q8_0(const float *src, void *dst, int64_t n,
                 const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float *x = src + b * kBlock;
    uint8_t *blk = out + b * 34;
    float amax = 0;
    for (int j = 0; j < kBlock; ++j)
      amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    storeHalfScale(blk, d);
    int8_t *qs = reinterpret_cast<int8_t *>(blk + 2);
    for (int j = 0; j < kBlock; ++j)
      qs[j] = static_cast<int8_t>(roundHalfAway(x[j] * id));
  }
}

} // namespace lowbit::formats::detail

namespace lowbit::formats {

bool isScaledIntegerBlock(Format format) {
  return format == Format::Q4_0 || format == Format::Q5_0 ||
         format == Format::Q8_0 || format == Format::IQ4_NL;
}

// The block's own decoder with d replaced by 1.0 yields the codes exactly
// (every code is a small integer, and d * c is one multiplication), so the
// layouts stay defined once, in the decoders.
float splitScaledIntegerBlock(Format format, const void *block,
                              int32_t codes[32]) {
  assert(isScaledIntegerBlock(format));
  const uint8_t *in = static_cast<const uint8_t *>(block);
  uint8_t unit[34];
  const size_t bytes = info(format).blockBytes;
  std::memcpy(unit, in, bytes);
  unit[0] = 0x00; // f16 1.0 = 0x3c00, little-endian
  unit[1] = 0x3c;
  float values[32];
  dequantizeRow(format, unit, values, 32);
  for (int j = 0; j < 32; ++j)
    codes[j] = static_cast<int32_t>(values[j]);
  return detail::loadHalf(in);
}

} // namespace lowbit::formats
