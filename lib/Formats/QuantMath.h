//===- QuantMath.h - Rounding and scale searches for encoders ---*- C++ -*-===//
//
// Helpers shared by the encoders in this directory: exact rounding, byte
// access, and the weighted scale searches. The searches follow the ideas of
// ggml's quantizers (try a few candidate scales around the max-abs one, keep
// the one with the smallest weighted squared error after a least-squares
// refit), written for this library.
//
// Loops are plain counted loops over small stack arrays so the compiler can
// vectorise them; nothing here allocates.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_FORMATS_QUANTMATH_H
#define LOWBIT_LIB_FORMATS_QUANTMATH_H

#include "Codecs.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lowbit::formats::detail {

/// Groups whose max |x| is below this are encoded as all zeros.
constexpr float kZeroGroupEps = 1e-15f;

/// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves
/// the rounded integer in the low mantissa bits. Vectorises, unlike lrintf
/// on baseline x86-64.
inline int roundNearestEven(float v) {
  float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

/// Round half away from zero (C roundf) for |v| < 2^31, exactly: v - trunc(v)
/// is exact in float, so no midpoint is lost to an inexact `v + 0.5f`.
inline int roundHalfAway(float v) {
  int t = static_cast<int>(v);
  float frac = v - static_cast<float>(t);
  return t + (frac >= 0.5f) - (frac <= -0.5f);
}

inline int clampInt(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

inline float clampFloat(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

inline uint16_t loadU16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline void storeU16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline uint32_t loadU32(const uint8_t *p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline void storeU32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline float loadHalf(const uint8_t *p) { return fp16ToFp32(loadU16(p)); }

/// Stores a block scale as f16, saturating at +-65504 so that a group too
/// large for f16 decodes clipped instead of to Inf/NaN.
inline float storeHalfScale(uint8_t *p, float v) {
  constexpr float kHalfMax = 65504.f;
  if (v > kHalfMax)
    v = kHalfMax;
  else if (v < -kHalfMax)
    v = -kHalfMax;
  uint16_t h = fp32ToFp16(v);
  storeU16(p, h);
  return fp16ToFp32(h);
}

/// Signed value of largest magnitude (the first one on ties) and its |.|.
inline float signedAbsMax(const float *x, int n, float &amax) {
  float best = 0, bestAbs = 0;
  for (int i = 0; i < n; ++i) {
    float a = std::fabs(x[i]);
    if (a > bestAbs) {
      bestAbs = a;
      best = x[i];
    }
  }
  amax = bestAbs;
  return best;
}

/// Weights used with an importance vector: importance times the element's
/// magnitude relative to the group's spread (ggml's imatrix weighting). A
/// group whose importance is all zero (columns never activated) is weighted
/// as if the importance were uniform, so its fit does not degenerate.
inline void importanceWeights(const float *x, const float *importance, int n,
                              float sigma2, float *w) {
  float total = 0;
  for (int i = 0; i < n; ++i)
    total += importance[i];
  const bool uniform = !(total > 0);
  for (int i = 0; i < n; ++i)
    w[i] = (uniform ? 1.f : importance[i]) * std::sqrt(sigma2 + x[i] * x[i]);
}

// Sums of a group use foldSum: add the upper half onto the lower half until
// one value is left. Each fold is an element-wise loop, which the compiler
// vectorises without -ffast-math (a running float sum cannot be), and the
// order is fixed, so results do not depend on the target ISA.

/// Sums t[0..n) for n a power of two, overwriting t.
inline float foldSum(float *t, int n) {
  for (int half = n / 2; half >= 1; half /= 2)
    for (int i = 0; i < half; ++i)
      t[i] += t[i + half];
  return t[0];
}

inline float sumOfSquares(const float *x, int64_t n) {
  float total = 0, t[32];
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int j = 0; j < 32; ++j)
      t[j] = x[i + j] * x[i + j];
    total += foldSum(t, 32);
  }
  for (; i < n; ++i)
    total += x[i] * x[i];
  return total;
}

/// roundNearestEven as a float, for |v| <= 2^22 (no int round trip, so the
/// search loops stay in float vectors).
inline float roundToIntegral(float v) { return (v + 12582912.f) - 12582912.f; }

/// Symmetric linear search: x ~ d * q with integer q in [-nmax, nmax - 1].
/// Tries inverse scales -(nmax + 0.1 k) / max for k in [-9, 9] (max = the
/// signed value of largest magnitude, which maps to -nmax); for each it
/// rounds, refits d by weighted least squares and keeps the d with the
/// smallest weighted error. Returns 0 for an all-zero group. n is a power
/// of two <= 256.
inline float searchSymmetricScale(const float *x, const float *w, int n,
                                  int nmax) {
  float amax;
  float max = signedAbsMax(x, n, amax);
  if (amax < kZeroGroupEps)
    return 0.f;
  float wx[256];
  for (int i = 0; i < n; ++i)
    wx[i] = w[i] * x[i];
  const float lo = static_cast<float>(-nmax), hi = static_cast<float>(nmax - 1);
  float bestScale = 0, bestProjection = -1;
  // k = 0 first: on ties (a lone outlier) keep the scale that maps it
  // exactly onto -nmax.
  for (int step = 0; step <= 18; ++step) {
    const int k = step == 0 ? 0 : (step <= 9 ? step - 10 : step - 9);
    const float iscale = -(static_cast<float>(nmax) + 0.1f * k) / max;
    float lx[256], l2[256];
    for (int i = 0; i < n; ++i) {
      const float q = roundToIntegral(clampFloat(iscale * x[i], lo, hi));
      lx[i] = wx[i] * q;
      l2[i] = w[i] * q * q;
    }
    const float sumlx = foldSum(lx, n), suml2 = foldSum(l2, n);
    // Error = sum(w x^2) - sumlx^2 / suml2: maximise the projection.
    if (suml2 > 0 && sumlx * sumlx > bestProjection * suml2) {
      bestScale = sumlx / suml2;
      bestProjection = bestScale * sumlx;
    }
  }
  return bestScale;
}

/// Linear search with a minimum: x ~ d * q + m, q in [0, nmax], m <= 0.
/// Starts from the min/max fit, then tries inverse scales
/// (nmax + rmin + rdelta * s) / (max - min) for s in [0, nstep], each with a
/// weighted least-squares refit of (d, m); keeps the smallest weighted error.
/// Returns d and sets `minOut` = m. n is a power of two <= 256.
inline float searchMinScale(const float *x, const float *w, int n, int nmax,
                            float rmin, float rdelta, int nstep,
                            float &minOut) {
  float min = x[0], max = x[0];
  float t1[256], t2[256], t3[256];
  for (int i = 0; i < n; ++i) {
    min = x[i] < min ? x[i] : min;
    max = x[i] > max ? x[i] : max;
    t1[i] = w[i];
    t2[i] = w[i] * x[i];
  }
  const float sumW = foldSum(t1, n), sumX = foldSum(t2, n);
  if (min > 0)
    min = 0;
  if (max <= min) {
    minOut = min;
    return 0.f;
  }
  const float fmax = static_cast<float>(nmax);
  float levels[256];
  // Weighted error against scale * levels + offset, summed explicitly: the
  // expansion over the sums cancels too much in float to rank candidates.
  auto error = [&](float scale, float offset) {
    for (int i = 0; i < n; ++i) {
      const float diff = scale * levels[i] + offset - x[i];
      t1[i] = w[i] * diff * diff;
    }
    return foldSum(t1, n);
  };
  // Levels for an inverse scale, clamped before rounding because `min` may
  // sit near `max` once moved to the best fit.
  float iscale = fmax / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i)
    levels[i] = roundToIntegral(clampFloat(iscale * (x[i] - min), 0, fmax));
  float bestErr = error(scale, min);
  for (int s = 0; s <= nstep; ++s) {
    iscale = (rmin + rdelta * s + fmax) / (max - min);
    for (int i = 0; i < n; ++i) {
      const float q =
          roundToIntegral(clampFloat(iscale * (x[i] - min), 0, fmax));
      const float wq = w[i] * q;
      levels[i] = q;
      t1[i] = wq;
      t2[i] = wq * q;
      t3[i] = wq * x[i];
    }
    const float sumL = foldSum(t1, n), sumL2 = foldSum(t2, n),
                sumXL = foldSum(t3, n);
    const float det = sumW * sumL2 - sumL * sumL;
    if (!(det > 0))
      continue;
    float thisScale = (sumW * sumXL - sumX * sumL) / det;
    float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    const float err = error(thisScale, thisMin);
    if (err < bestErr) {
      bestErr = err;
      scale = thisScale;
      min = thisMin;
    }
  }
  minOut = min;
  return scale;
}

/// A sorted codebook of 16 levels and the midpoints between neighbours.
struct Codebook16 {
  float levels[16];
  float midpoints[15];
};

constexpr Codebook16 makeCodebook16(const float (&levels)[16]) {
  Codebook16 cb{};
  for (int i = 0; i < 16; ++i)
    cb.levels[i] = levels[i];
  for (int i = 0; i < 15; ++i)
    cb.midpoints[i] = (levels[i] + levels[i + 1]) * 0.5f;
  return cb;
}

/// Index of the nearest level to x * invScale for each of n <= 256 values
/// (ties go to the upper level). Counting midpoints vectorises.
inline void nearestLevels(const Codebook16 &cb, const float *x, int n,
                          float invScale, uint8_t *idx) {
  float scaled[256];
  for (int i = 0; i < n; ++i) {
    scaled[i] = x[i] * invScale;
    idx[i] = 0;
  }
  for (int k = 0; k < 15; ++k) {
    const float mid = cb.midpoints[k];
    for (int i = 0; i < n; ++i)
      idx[i] += scaled[i] >= mid;
  }
}

/// Like nearestLevels, but yields the level values for the scale searches:
/// level0 plus the step to each next level whose midpoint is passed. A
/// masked add per midpoint and no table lookup, so it vectorises on any SIMD
/// ISA. Exact for integer levels; within an ulp or two of the level for
/// others, which only the search (not the stored bits) sees.
inline void nearestLevelValues(const Codebook16 &cb, const float *x, int n,
                               float invScale, float *q) {
  float scaled[256];
  for (int i = 0; i < n; ++i) {
    scaled[i] = x[i] * invScale;
    q[i] = cb.levels[0];
  }
  for (int k = 0; k < 15; ++k) {
    const float mid = cb.midpoints[k];
    const float step = cb.levels[k + 1] - cb.levels[k];
    for (int i = 0; i < n; ++i)
      q[i] += scaled[i] >= mid ? step : 0.f;
  }
}

/// Codebook scale search: x ~ d * levels[q]. Starts from d = max / |level0|
/// (max = the signed value of largest magnitude), then tries inverse scales
/// t * (1 + k * relStep) / max for k in [-ntry, ntry] with t = level0 (d of
/// the other sign: max lands on the lowest level) and, when `bothSigns`, also
/// t = level15. Each candidate is refit by weighted least squares; the one
/// with the smallest weighted error wins. Candidates within rounding noise of
/// each other under the weights (a lone outlier dominating x^2 weights) are
/// told apart by their unweighted error. Returns 0 for an all-zero group.
/// n is a power of two <= 256.
inline float searchCodebookScale(const Codebook16 &cb, const float *x,
                                 const float *w, int n, int ntry, float relStep,
                                 bool bothSigns) {
  float amax;
  float max = signedAbsMax(x, n, amax);
  if (amax < kZeroGroupEps)
    return 0.f;
  constexpr float kTie = 1e-5f; // Relative; above float noise of the sums.
  float wx[256], q[256];
  for (int i = 0; i < n; ++i)
    wx[i] = w[i] * x[i];
  float best = 0, bestProjection = -1, bestPlainError = 0;
  auto tryInverseScale = [&](float invScale) {
    nearestLevelValues(cb, x, n, invScale, q);
    float qx[256], q2[256], plainQX[256], plainQ2[256];
    for (int i = 0; i < n; ++i) {
      qx[i] = wx[i] * q[i];
      q2[i] = w[i] * q[i] * q[i];
      plainQX[i] = x[i] * q[i];
      plainQ2[i] = q[i] * q[i];
    }
    const float sumqx = foldSum(qx, n), sumq2 = foldSum(q2, n);
    if (!(sumq2 > 0))
      return;
    const float d = sumqx / sumq2;
    // Unweighted error up to the constant sum(x^2).
    const float plainError =
        d * d * foldSum(plainQ2, n) - 2 * d * foldSum(plainQX, n);
    // Weighted error = sum(w x^2) - sumqx^2 / sumq2: maximise the
    // projection sumqx^2 / sumq2.
    const float lhs = sumqx * sumqx, rhs = bestProjection * sumq2;
    const bool better = lhs > rhs * (1 + kTie);
    const bool tie = !better && lhs >= rhs * (1 - kTie);
    if (better || (tie && plainError < bestPlainError)) {
      best = d;
      bestProjection = d * sumqx;
      bestPlainError = plainError;
    }
  };
  const float level0 = cb.levels[0], level15 = cb.levels[15];
  tryInverseScale(-level0 / max);
  for (int k = -ntry; k <= ntry; ++k)
    tryInverseScale(level0 * (1 + k * relStep) / max);
  if (bothSigns)
    for (int k = -ntry; k <= ntry; ++k)
      tryInverseScale(level15 * (1 + k * relStep) / max);
  return best;
}

/// Weighted squared error of x against d * levels[idx].
inline float codebookError(const Codebook16 &cb, const float *x, const float *w,
                           int n, float d, const uint8_t *idx) {
  float t[256];
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - d * cb.levels[idx[i]];
    t[i] = w[i] * diff * diff;
  }
  return foldSum(t, n);
}

} // namespace lowbit::formats::detail

#endif // LOWBIT_LIB_FORMATS_QUANTMATH_H
