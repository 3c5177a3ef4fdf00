//===- CodebookQuants.cpp - IQ4_NL, IQ4_XS, MXFP4, NF4 --------------------===//
//
// 4-bit formats whose levels are a fixed non-uniform table times a scale.
//
//   IQ4_NL   f16 d | 16 B nibbles (split halves)        x = d * kIQ4NL[q]
//   IQ4_XS   f16 d | u16 scales_h | 4 B scales_l | 128 B nibbles; 8
//            sub-blocks of 32 with 6-bit scale ls (low 4 bits in scales_l,
//            high 2 in scales_h)               x = (d * (ls - 32)) * kIQ4NL[q]
//   MXFP4    u8 E8M0 exponent e | 16 B nibbles (split halves)
//                                              x = kE2M1x2[q] * 2^(e - 128)
//   NF4_G64  f16 d | 32 B nibbles (low nibble first)   x = kNF4Levels[q] * d
//
// "Split halves" (ggml): nibble byte j holds element j (low) and j + 16
// (high) of a 32-weight block.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"
#include "lowbit/Formats/Formats.h"

namespace lowbit::formats::detail {
namespace {

// ggml's kvalues_iq4nl.
constexpr int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                               1,    13,   25,  38,  53,  69,  89,  113};
constexpr float kIQ4NLFloat[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};
constexpr Codebook16 kIQ4Codebook = makeCodebook16(kIQ4NLFloat);

// ggml's kvalues_mxfp4: E2M1 values doubled (0, 0.5, 1, 1.5, 2, 3, 4, 6 times
// 2); bit 3 is the sign. The E8M0 scale is halved to compensate.
constexpr int8_t kE2M1x2[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                0, -1, -2, -3, -4, -6, -8, -12};

/// 2^(e - 128): ggml's E8M0 "half" scale (e = 0, 1 give subnormals).
inline float e8m0Half(uint8_t e) {
  uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  return bitsFloat(bits);
}

void packSplitHalves(const uint8_t *idx, uint8_t *qs) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(idx[j] | (idx[j + 16] << 4));
}

/// Weights of the scale search: x^2 (large weights matter most) without
/// importance; importance * sqrt(sigma2 + x^2) with it (as ggml).
void codebookWeights(const float *x, const float *importance, int n,
                     float sigma2, float *w) {
  if (importance)
    importanceWeights(x, importance, n, sigma2, w);
  else
    for (int i = 0; i < n; ++i)
      w[i] = x[i] * x[i];
}

// ---- IQ4_NL ----

void encodeIQ4NLBlock(const float *x, const float *importance, uint8_t *blk) {
  float w[32];
  codebookWeights(x, importance, 32, 2 * sumOfSquares(x, 32) / 32, w);
  float d = searchCodebookScale(kIQ4Codebook, x, w, 32, 7, 1.f / 127,
                                /*bothSigns=*/false);
  d = storeHalfScale(blk, d);
  uint8_t idx[32];
  nearestLevels(kIQ4Codebook, x, 32, d != 0 ? 1 / d : 0.f, idx);
  packSplitHalves(idx, blk + 2);
}

// ---- IQ4_XS ----

constexpr int kIQ4XSBytes = 136;

void encodeIQ4XSBlock(const float *x, const float *importance, uint8_t *blk) {
  float w[256];
  const float sigma2 = 2 * sumOfSquares(x, 256) / 256;
  float scales[8];
  float maxScale = 0, maxAbsScale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    float *wb = w + 32 * ib;
    codebookWeights(x + 32 * ib, importance ? importance + 32 * ib : nullptr,
                    32, sigma2, wb);
    scales[ib] = searchCodebookScale(kIQ4Codebook, x + 32 * ib, wb, 32, 7,
                                     1.f / 127, /*bothSigns=*/false);
    if (std::fabs(scales[ib]) > maxAbsScale) {
      maxAbsScale = std::fabs(scales[ib]);
      maxScale = scales[ib];
    }
  }
  // The sub-block scale of largest magnitude maps to -32, the extra level.
  const float d = storeHalfScale(blk, -maxScale / 32);
  const float id = d != 0 ? 1 / d : 0.f;
  uint16_t scalesHigh = 0;
  uint8_t *scalesLow = blk + 4;
  uint8_t *qs = blk + 8;
  for (int ib = 0; ib < 8; ++ib) {
    const float *xb = x + 32 * ib;
    int l = roundNearestEven(clampFloat(id * scales[ib], -32.f, 31.f));
    // Of the 6-bit sub-scales next to the ideal one keep the one with the
    // smallest error under the search's weights.
    uint8_t idx[32], trial[32];
    float bestErr = -1;
    int bestL = l;
    const int candidates[3] = {l, l - 1, l + 1};
    for (int cand : candidates) {
      if (cand < -32 || cand > 31)
        continue;
      const float dl = d * static_cast<float>(cand);
      nearestLevels(kIQ4Codebook, xb, 32, dl != 0 ? 1 / dl : 0.f, trial);
      float err = codebookError(kIQ4Codebook, xb, w + 32 * ib, 32, dl, trial);
      if (bestErr < 0 || err < bestErr) {
        bestErr = err;
        bestL = cand;
        std::memcpy(idx, trial, 32);
      }
    }
    const int stored = bestL + 32;
    if (ib % 2 == 0)
      scalesLow[ib / 2] = static_cast<uint8_t>(stored & 0xf);
    else
      scalesLow[ib / 2] |= static_cast<uint8_t>((stored & 0xf) << 4);
    scalesHigh |= static_cast<uint16_t>((stored >> 4) << (2 * ib));
    packSplitHalves(idx, qs + 16 * ib);
  }
  storeU16(blk + 2, scalesHigh);
}

// ---- MXFP4 ----

/// Nibble of the doubled-E2M1 level nearest to v (ties to the smaller
/// magnitude, as ggml's first-best search).
inline uint8_t nearestE2M1x2(float v) {
  const float a = std::fabs(v);
  int k = (a > 0.5f) + (a > 1.5f) + (a > 2.5f) + (a > 3.5f) + (a > 5.f) +
          (a > 7.f) + (a > 10.f);
  return static_cast<uint8_t>(k == 0 ? 0 : (v < 0 ? 8 + k : k));
}

/// Weighted error of a 32-weight block encoded with exponent e.
float mxfp4Error(const float *x, const float *w, uint8_t e, uint8_t *idx) {
  const float d = e8m0Half(e);
  const float id = 1 / d; // Exact: a power of two (e >= 1 keeps it finite).
  float err = 0;
  for (int j = 0; j < 32; ++j) {
    idx[j] = nearestE2M1x2(x[j] * id);
    float diff = x[j] - static_cast<float>(kE2M1x2[idx[j]]) * d;
    err += w[j] * diff * diff;
  }
  return err;
}

void encodeMXFP4Block(const float *x, const float *importance, uint8_t *blk) {
  float amax = 0;
  for (int j = 0; j < 32; ++j)
    amax = std::fmax(amax, std::fabs(x[j]));
  if (amax == 0) {
    std::memset(blk, 0, 17);
    return;
  }
  float w[32];
  for (int j = 0; j < 32; ++j)
    w[j] = importance ? importance[j] : 1.f;
  // ggml's exponent puts amax in [8, 16) times the half scale, so the top
  // level 12 may clip it; one exponent up never clips. Keep the better.
  const int e0 = clampInt(std::ilogb(amax) - 2 + 127, 1, 254);
  uint8_t idx[32], idxUp[32];
  float err = mxfp4Error(x, w, static_cast<uint8_t>(e0), idx);
  int e = e0;
  if (e0 < 254 && mxfp4Error(x, w, static_cast<uint8_t>(e0 + 1), idxUp) < err) {
    e = e0 + 1;
    std::memcpy(idx, idxUp, 32);
  }
  blk[0] = static_cast<uint8_t>(e);
  packSplitHalves(idx, blk + 1);
}

// ---- NF4 ----

constexpr Codebook16 kNF4Codebook = makeCodebook16(kNF4Levels);
constexpr int kNF4Group = 64;
constexpr int kNF4Bytes = 34;

void encodeNF4Block(const float *x, const float *importance, float sigma2,
                    uint8_t *blk) {
  float w[kNF4Group];
  if (importance)
    importanceWeights(x, importance, kNF4Group, sigma2, w);
  else
    for (int j = 0; j < kNF4Group; ++j)
      w[j] = 1.f; // Plain mean squared error.
  // Candidates within +-20% of the absmax scale, both signs (the table is
  // not symmetric); the absmax scale itself is the first candidate.
  float d = searchCodebookScale(kNF4Codebook, x, w, kNF4Group, 6, 0.03f,
                                /*bothSigns=*/true);
  d = storeHalfScale(blk, d);
  uint8_t idx[kNF4Group];
  nearestLevels(kNF4Codebook, x, kNF4Group, d != 0 ? 1 / d : 0.f, idx);
  for (int k = 0; k < kNF4Group / 2; ++k)
    blk[2 + k] = static_cast<uint8_t>(idx[2 * k] | (idx[2 * k + 1] << 4));
}

} // namespace

// ---- Entry points ----

void decode_iq4_nl(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t *blk = in + 18 * b;
    float *y = dst + 32 * b;
    const float d = loadHalf(blk);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIQ4NL[blk[2 + j] & 0xf]);
      y[j + 16] = d * static_cast<float>(kIQ4NL[blk[2 + j] >> 4]);
    }
  }
}

void encode_iq4_nl(const float *src, void *dst, int64_t n,
                   const float *importance) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / 32; ++b)
    encodeIQ4NLBlock(src + 32 * b, importance ? importance + 32 * b : nullptr,
                     out + 18 * b);
}

void decode_iq4_xs(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / 256; ++b) {
    const uint8_t *blk = in + kIQ4XSBytes * b;
    const float d = loadHalf(blk);
    const uint16_t scalesHigh = loadU16(blk + 2);
    const uint8_t *scalesLow = blk + 4;
    const uint8_t *qs = blk + 8;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((scalesLow[ib / 2] >> (4 * (ib % 2))) & 0xf) |
                     (((scalesHigh >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      float *y = dst + 256 * b + 32 * ib;
      const uint8_t *q = qs + 16 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIQ4NL[q[j] & 0xf]);
        y[j + 16] = dl * static_cast<float>(kIQ4NL[q[j] >> 4]);
      }
    }
  }
}

void encode_iq4_xs(const float *src, void *dst, int64_t n,
                   const float *importance) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / 256; ++b)
    encodeIQ4XSBlock(src + 256 * b, importance ? importance + 256 * b : nullptr,
                     out + kIQ4XSBytes * b);
}

void decode_mxfp4(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t *blk = in + 17 * b;
    float *y = dst + 32 * b;
    const float d = e8m0Half(blk[0]);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(kE2M1x2[blk[1 + j] & 0xf]) * d;
      y[j + 16] = static_cast<float>(kE2M1x2[blk[1 + j] >> 4]) * d;
    }
  }
}

void encode_mxfp4(const float *src, void *dst, int64_t n,
                  const float *importance) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / 32; ++b)
    encodeMXFP4Block(src + 32 * b, importance ? importance + 32 * b : nullptr,
                     out + 17 * b);
}

void decode_nf4_g64(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kNF4Group; ++b) {
    const uint8_t *blk = in + kNF4Bytes * b;
    float *y = dst + kNF4Group * b;
    const float d = loadHalf(blk);
    for (int k = 0; k < kNF4Group / 2; ++k) {
      y[2 * k] = kNF4Levels[blk[2 + k] & 0xf] * d;
      y[2 * k + 1] = kNF4Levels[blk[2 + k] >> 4] * d;
    }
  }
}

void encode_nf4_g64(const float *src, void *dst, int64_t n,
                    const float *importance) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  const float sigma2 = importance ? sumOfSquares(src, n) / n : 0.f;
  for (int64_t b = 0; b < n / kNF4Group; ++b)
    encodeNF4Block(src + kNF4Group * b,
                   importance ? importance + kNF4Group * b : nullptr, sigma2,
                   out + kNF4Bytes * b);
}

} // namespace lowbit::formats::detail
