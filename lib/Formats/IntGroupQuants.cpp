//===- IntGroupQuants.cpp - int8/int4 group-wise, sym and asym
//-------------===//
//
// The integer formats of the non-GGUF exporters (layouts in Formats.h):
//
//   sym   f16 d | q...           x = q * d,       q in [-2^(b-1), 2^(b-1) - 1]
//   asym  f16 d | u8 z | q...    x = (q - z) * d, q, z in [0, 2^b - 1]
//
// int4 values are packed two per byte, low nibble first; sym int4 is two's
// complement. Encoders search the scale (and for asym the integer zero point)
// minimising the squared error, weighted by the importance vector when one is
// given, then round every weight against the stored f16 scale.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"

namespace lowbit::formats::detail {
namespace {

template <int Bits, bool Asym, int Group> struct IntGroupLayout {
  static constexpr int kHeader = Asym ? 3 : 2;
  static constexpr int kBytes = kHeader + Group * Bits / 8;
  static constexpr int kSymMax = 1 << (Bits - 1);  // q in [-kSymMax, kSymMax-1]
  static constexpr int kAsymMax = (1 << Bits) - 1; // q in [0, kAsymMax]
};

/// Stores group values (signed for sym, unsigned for asym).
template <int Bits, int Group> void storeValues(const int *q, uint8_t *out) {
  if (Bits == 8) {
    for (int j = 0; j < Group; ++j)
      out[j] = static_cast<uint8_t>(q[j]);
  } else {
    for (int k = 0; k < Group / 2; ++k)
      out[k] =
          static_cast<uint8_t>((q[2 * k] & 0xf) | ((q[2 * k + 1] & 0xf) << 4));
  }
}

template <int Bits, bool Asym, int Group>
void decodeGroups(const void *src, float *dst, int64_t n) {
  using L = IntGroupLayout<Bits, Asym, Group>;
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / Group; ++b) {
    const uint8_t *blk = in + L::kBytes * b;
    const uint8_t *qs = blk + L::kHeader;
    float *y = dst + Group * b;
    const float d = loadHalf(blk);
    const int zero = Asym ? blk[2] : 0;
    if (Bits == 8) {
      for (int j = 0; j < Group; ++j) {
        int q = Asym ? static_cast<int>(qs[j]) - zero
                     : static_cast<int>(static_cast<int8_t>(qs[j]));
        y[j] = static_cast<float>(q) * d;
      }
    } else {
      for (int k = 0; k < Group / 2; ++k) {
        int lo = qs[k] & 0xf, hi = qs[k] >> 4;
        if (Asym) {
          lo -= zero;
          hi -= zero;
        } else { // Sign-extend the two's complement nibble.
          lo = (lo ^ 8) - 8;
          hi = (hi ^ 8) - 8;
        }
        y[2 * k] = static_cast<float>(lo) * d;
        y[2 * k + 1] = static_cast<float>(hi) * d;
      }
    }
  }
}

template <int Bits, int Group>
void encodeSymGroup(const float *x, const float *w, uint8_t *blk) {
  constexpr int kMax = IntGroupLayout<Bits, false, Group>::kSymMax;
  const float d = storeHalfScale(blk, searchSymmetricScale(x, w, Group, kMax));
  const float id = d != 0 ? 1 / d : 0.f;
  int q[Group];
  for (int j = 0; j < Group; ++j)
    q[j] = roundNearestEven(clampFloat(x[j] * id, -kMax, kMax - 1));
  storeValues<Bits, Group>(q, blk + 2);
}

/// Finds d and an integer zero point z for x ~ (q - z) d, q in [0, qmax]:
/// tries inverse scales (qmax + r) / range, r in [-1, 1] by 0.1, each with
/// the zero point that puts the range minimum on level 0 and a weighted
/// least-squares refit of d.
template <int Group>
float searchAsymScale(const float *x, const float *w, int qmax, int &zero) {
  float min = 0, max = 0; // The range always holds 0 so it stays exact.
  for (int j = 0; j < Group; ++j) {
    min = x[j] < min ? x[j] : min;
    max = x[j] > max ? x[j] : max;
  }
  zero = 0;
  if (max - min < kZeroGroupEps)
    return 0.f;
  float wx[Group];
  for (int j = 0; j < Group; ++j)
    wx[j] = w[j] * x[j];
  float bestScale = 0, bestProjection = -1;
  for (int r = -10; r <= 10; ++r) {
    const float iscale = (qmax + 0.1f * r) / (max - min);
    const int z = clampInt(roundNearestEven(-min * iscale), 0, qmax);
    const float lo = static_cast<float>(-z), hi = static_cast<float>(qmax - z);
    float lx[Group], l2[Group];
    for (int j = 0; j < Group; ++j) {
      const float q = roundToIntegral(clampFloat(x[j] * iscale, lo, hi));
      lx[j] = wx[j] * q;
      l2[j] = w[j] * q * q;
    }
    const float sumlx = foldSum(lx, Group), suml2 = foldSum(l2, Group);
    if (suml2 > 0 && sumlx * sumlx > bestProjection * suml2) {
      bestScale = sumlx / suml2;
      bestProjection = bestScale * sumlx;
      zero = z;
    }
  }
  if (!(bestScale > 0)) // Degenerate fit: fall back to min/max.
    return (max - min) / qmax;
  return bestScale;
}

template <int Bits, int Group>
void encodeAsymGroup(const float *x, const float *w, uint8_t *blk) {
  constexpr int kMax = IntGroupLayout<Bits, true, Group>::kAsymMax;
  int zero;
  const float scale = searchAsymScale<Group>(x, w, kMax, zero);
  const float d = storeHalfScale(blk, scale);
  blk[2] = static_cast<uint8_t>(zero);
  const float id = d != 0 ? 1 / d : 0.f;
  int q[Group];
  for (int j = 0; j < Group; ++j)
    q[j] = roundNearestEven(clampFloat(x[j] * id, static_cast<float>(-zero),
                                       static_cast<float>(kMax - zero))) +
           zero;
  storeValues<Bits, Group>(q, blk + 3);
}

template <int Bits, bool Asym, int Group>
void encodeGroups(const float *src, void *dst, int64_t n,
                  const float *importance) {
  using L = IntGroupLayout<Bits, Asym, Group>;
  uint8_t *out = static_cast<uint8_t *>(dst);
  const float sigma2 = importance ? sumOfSquares(src, n) / n : 0.f;
  float w[Group];
  if (!importance)
    for (int j = 0; j < Group; ++j)
      w[j] = 1.f; // Plain mean squared error.
  for (int64_t b = 0; b < n / Group; ++b) {
    const float *x = src + Group * b;
    if (importance)
      importanceWeights(x, importance + Group * b, Group, sigma2, w);
    if (Asym)
      encodeAsymGroup<Bits, Group>(x, w, out + L::kBytes * b);
    else
      encodeSymGroup<Bits, Group>(x, w, out + L::kBytes * b);
  }
}

} // namespace

#define LOWBIT_INT_GROUP_CODEC(lower, bits, asym, group)                       \
  void decode_##lower(const void *src, float *dst, int64_t n) {                \
    decodeGroups<bits, asym, group>(src, dst, n);                              \
  }                                                                            \
  void encode_##lower(const float *src, void *dst, int64_t n,                  \
                      const float *importance) {                               \
    encodeGroups<bits, asym, group>(src, dst, n, importance);                  \
  }

LOWBIT_INT_GROUP_CODEC(i8_sym_g32, 8, false, 32)
LOWBIT_INT_GROUP_CODEC(i8_sym_g64, 8, false, 64)
LOWBIT_INT_GROUP_CODEC(i8_sym_g128, 8, false, 128)
LOWBIT_INT_GROUP_CODEC(i8_asym_g32, 8, true, 32)
LOWBIT_INT_GROUP_CODEC(i8_asym_g64, 8, true, 64)
LOWBIT_INT_GROUP_CODEC(i8_asym_g128, 8, true, 128)
LOWBIT_INT_GROUP_CODEC(i4_sym_g32, 4, false, 32)
LOWBIT_INT_GROUP_CODEC(i4_sym_g64, 4, false, 64)
LOWBIT_INT_GROUP_CODEC(i4_sym_g128, 4, false, 128)
LOWBIT_INT_GROUP_CODEC(i4_asym_g32, 4, true, 32)
LOWBIT_INT_GROUP_CODEC(i4_asym_g64, 4, true, 64)
LOWBIT_INT_GROUP_CODEC(i4_asym_g128, 4, true, 128)

#undef LOWBIT_INT_GROUP_CODEC

} // namespace lowbit::formats::detail
