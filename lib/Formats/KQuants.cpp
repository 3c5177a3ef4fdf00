//===- KQuants.cpp - Q2_K..Q6_K super-block codecs ------------------------===//
//
// Byte layouts are GGML's block_q2_K..block_q6_K (ggml-common.h): super-blocks
// of 256 weights split into sub-blocks of 16 or 32, each sub-block with a
// small integer scale (and min) that multiplies one fp16 super-block scale.
//
// Decoders repeat ggml's dequantize_row_q*_K arithmetic operation for
// operation (same operand order, no fused multiply-add), so their output is
// bit-identical to ggml's, signed zeros included.
//
// Encoders fit each sub-block the way ggml's quantizers do: without an
// importance vector like the reference ("_ref") path, with one like the
// importance-weighted path. They then choose the stored integers and fp16
// factors by the error the decoder will actually make (uniform, or weighted
// by the importance), which ggml leaves to plain rounding. Bytes therefore
// differ from ggml's; the error is the same or lower.
//
//===----------------------------------------------------------------------===//

#include "Codecs.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

// y = d * q - m must round twice, as in ggml, to stay bit-exact: no fused
// multiply-add (the library is also built with -ffp-contract=off).
#ifdef __clang__
#pragma clang fp contract(off)
#endif

namespace lowbit::formats::detail {
namespace {

constexpr int kSuper = 256;

// Search for the fp16 super-block factors: kSearchSteps candidates each side
// of the fitted value, kSearchStride apart (relative).
constexpr int kSearchSteps = 4;
constexpr float kSearchStride = 0.01f;

// Byte offsets inside each block, as in ggml-common.h.
namespace q2k {
constexpr int kScales = 0, kQs = 16, kD = 80, kDmin = 82, kBytes = 84;
} // namespace q2k
namespace q3k {
constexpr int kHmask = 0, kQs = 32, kScales = 96, kD = 108, kBytes = 110;
} // namespace q3k
namespace q4k {
constexpr int kD = 0, kDmin = 2, kScales = 4, kQs = 16, kBytes = 144;
} // namespace q4k
namespace q5k {
constexpr int kD = 0, kDmin = 2, kScales = 4, kQh = 16, kQs = 48, kBytes = 176;
} // namespace q5k
namespace q6k {
constexpr int kQl = 0, kQh = 128, kScales = 192, kD = 208, kBytes = 210;
} // namespace q6k

/// An fp16 super-block factor, saturated: a block whose values are too
/// large for the format gets clipped rather than Inf/NaN factors, so every
/// finite input decodes to finite values.
inline float saturateHalf(float f) {
  constexpr float kHalfMax = 65504.f;
  return f < kHalfMax ? (f > -kHalfMax ? f : -kHalfMax)
                      : (f >= kHalfMax ? kHalfMax : 0.f); // NaN -> 0.
}

// Blocks are read and written as bytes: the fp16 fields are little-endian.
inline float loadHalf(const uint8_t *p) {
  return fp16ToFp32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}
inline void storeHalf(uint8_t *p, float f) {
  const uint16_t h = fp32ToFp16(saturateHalf(f));
  p[0] = static_cast<uint8_t>(h);
  p[1] = static_cast<uint8_t>(h >> 8);
}
/// The factor the decoder will see once `f` is stored by storeHalf.
inline float roundHalf(float f) {
  return fp16ToFp32(fp32ToFp16(saturateHalf(f)));
}

/// Round to nearest, ties to even (what ggml's nearest_int does), through the
/// float adder so it vectorises. The clamp keeps huge or NaN inputs inside the
/// trick's range; every caller clamps the result further.
inline int nearestInt(float v) {
  constexpr float kLimit = 4194303.f;
  v = v < kLimit ? (v > -kLimit ? v : -kLimit) : kLimit;
  float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

inline int clampInt(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/// Sum of N values (N a multiple of 8) in 8 independent lanes: the loop
/// vectorises without reassociation flags, and the result is the same on
/// every compiler.
template <int N> inline float sumLanes(const float *v) {
  static_assert(N % 8 == 0, "lanes");
  float acc[8] = {};
  for (int i = 0; i < N; i += 8)
    for (int k = 0; k < 8; ++k)
      acc[k] += v[i + k];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
         ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

//===----------------------------------------------------------------------===//
// Sub-block fits.
//===----------------------------------------------------------------------===//

/// Affine fit x ~ scale * L - negMin with L in [0, nmax] and negMin >= 0,
/// minimising sum w * |err| (UseMad) or sum w * err^2. Starts from the
/// min/max grid and tries nstep+1 stretched grids (rmin + rdelta * k levels
/// more), each refined by weighted least squares. Returns the scale.
template <int N, bool UseMad>
float fitAffine(const float *__restrict x, const float *__restrict w, int nmax,
                uint8_t *__restrict L, float &negMin, float rmin, float rdelta,
                int nstep) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < N; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  float wx[N];
  for (int i = 0; i < N; ++i)
    wx[i] = w[i] * x[i];
  const float sumW = sumLanes<N>(w);
  const float sumX = sumLanes<N>(wx);
  // The min is subtracted, so a positive one is useless: keep 0 reachable.
  if (lo > 0)
    lo = 0;
  if (!(hi > lo)) {
    std::memset(L, 0, N);
    negMin = -lo;
    return 0.f;
  }

  float err[N];
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  for (int i = 0; i < N; ++i) {
    int l = clampInt(nearestInt(iscale * (x[i] - lo)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    float diff = scale * l + lo - x[i];
    err[i] = w[i] * (UseMad ? std::fabs(diff) : diff * diff);
  }
  float best = sumLanes<N>(err);
  if (nstep < 1) {
    negMin = -lo;
    return scale;
  }

  uint8_t aux[N];
  float wl[N], wl2[N], wxl[N];
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * step + nmax) / (hi - lo);
    for (int i = 0; i < N; ++i) {
      // `lo` may have moved next to `hi`, so v can be huge or NaN.
      float v = iscale * (x[i] - lo);
      int l = v > 0 ? nearestInt(v < nmax ? v : static_cast<float>(nmax)) : 0;
      aux[i] = static_cast<uint8_t>(l);
      float fl = static_cast<float>(l);
      wl[i] = w[i] * fl;
      wl2[i] = wl[i] * fl;
      wxl[i] = wl[i] * x[i];
    }
    const float sumL = sumLanes<N>(wl);
    const float sumL2 = sumLanes<N>(wl2);
    const float sumXL = sumLanes<N>(wxl);
    const float det = sumW * sumL2 - sumL * sumL;
    if (!(det > 0))
      continue;
    float thisScale = (sumW * sumXL - sumX * sumL) / det;
    float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    for (int i = 0; i < N; ++i) {
      float diff = thisScale * aux[i] + thisMin - x[i];
      err[i] = w[i] * (UseMad ? std::fabs(diff) : diff * diff);
    }
    const float cur = sumLanes<N>(err);
    if (cur < best) {
      std::memcpy(L, aux, N);
      best = cur;
      scale = thisScale;
      lo = thisMin;
    }
  }
  negMin = -lo;
  return scale;
}

/// One grid of fitSigned: quants round(iscale * x) into L (biased by nmax);
/// returns sum w x l and sum w l^2.
template <int N>
void gridSigned(const float *__restrict x, const float *__restrict w,
                float iscale, int nmax, uint8_t *__restrict L, float &sumLX,
                float &sumL2) {
  float wxl[N], wl2[N];
  for (int i = 0; i < N; ++i) {
    const int l = clampInt(nearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<uint8_t>(l + nmax);
    const float fl = static_cast<float>(l);
    const float wl = w[i] * fl;
    wxl[i] = wl * x[i];
    wl2[i] = wl * fl;
  }
  sumLX = sumLanes<N>(wxl);
  sumL2 = sumLanes<N>(wl2);
}

/// Signed fit x ~ scale * (L - nmax), L in [0, 2 nmax - 1], maximising the
/// weighted explained energy (sum w x l)^2 / sum w l^2 over 19 grids around
/// nmax / max|x|. Weights default to x^2. Returns the scale (negative when the
/// largest magnitude is positive, so that it gets the extra level -nmax).
template <int N>
float fitSigned(const float *x, const float *qw, int nmax, uint8_t *L) {
  float amax = 0, max = 0;
  for (int i = 0; i < N; ++i) {
    float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::memset(L, 0, N);
    return 0.f;
  }
  float w[N];
  for (int i = 0; i < N; ++i)
    w[i] = qw ? qw[i] : x[i] * x[i];

  uint8_t aux[N];
  float sumLX, sumL2;
  gridSigned<N>(x, w, -nmax / max, nmax, aux, sumLX, sumL2);
  std::memcpy(L, aux, N);
  float scale = sumL2 ? sumLX / sumL2 : 0.f;
  float best = scale * sumLX;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0)
      continue;
    gridSigned<N>(x, w, -(nmax + 0.1f * step) / max, nmax, aux, sumLX, sumL2);
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      std::memcpy(L, aux, N);
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return scale;
}

/// Q3_K's unweighted-input fit: signed levels [-nmax, nmax-1] with weights
/// x^2, refined by coordinate descent (each quant moved to its best level
/// given the others) for up to 5 sweeps. L gets l + nmax.
float fitQ3Ref(const float *x, int nmax, uint8_t *L) {
  constexpr int N = 16;
  float amax = 0, max = 0;
  for (int i = 0; i < N; ++i) {
    float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::memset(L, 0, N);
    return 0.f;
  }
  const float iscale = -nmax / max;
  int q[N];
  float w[N];
  float sumLX = 0, sumL2 = 0;
  for (int i = 0; i < N; ++i) {
    q[i] = clampInt(nearestInt(iscale * x[i]), -nmax, nmax - 1);
    w[i] = x[i] * x[i];
    sumLX += w[i] * x[i] * q[i];
    sumL2 += w[i] * q[i] * q[i];
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < N; ++i) {
      float slx = sumLX - w[i] * x[i] * q[i];
      if (!(slx > 0))
        continue;
      float sl2 = sumL2 - w[i] * q[i] * q[i];
      int nl = clampInt(nearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (nl == q[i])
        continue;
      slx += w[i] * x[i] * nl;
      sl2 += w[i] * nl * nl;
      // Accept when the explained energy slx^2/sl2 grows.
      if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2) {
        q[i] = nl;
        sumLX = slx;
        sumL2 = sl2;
        ++changed;
      }
    }
    if (!changed)
      break;
  }
  for (int i = 0; i < N; ++i)
    L[i] = static_cast<uint8_t>(q[i] + nmax);
  return sumL2 > 0 ? sumLX / sumL2 : 0.f;
}

/// Quantises non-negative sub-block scales (or mins) x to L in [0, nmax]
/// sharing one factor: picks the best of 9 grids by weighted squared error,
/// then refines by coordinate descent. Returns the shared factor.
template <int N>
float fitUnsigned(const float *x, const float *w, int nmax, uint8_t *L) {
  float max = 0;
  for (int i = 0; i < N; ++i)
    max = x[i] > max ? x[i] : max;
  if (max < 1e-15f) {
    std::memset(L, 0, N);
    return 0.f;
  }
  float err[N];
  auto gridError = [&](float iscale) {
    const float scale = 1 / iscale;
    for (int i = 0; i < N; ++i) {
      int l = clampInt(nearestInt(iscale * x[i]), 0, nmax);
      float diff = x[i] - scale * l;
      err[i] = w[i] * diff * diff;
    }
    return sumLanes<N>(err);
  };
  float iscale = nmax / max;
  float best = gridError(iscale);
  for (int step = -4; step <= 4; ++step) {
    if (step == 0)
      continue;
    const float cand = (0.1f * step + nmax) / max;
    const float e = gridError(cand);
    if (e < best) {
      best = e;
      iscale = cand;
    }
  }
  int q[N];
  float sumLX = 0, sumL2 = 0;
  for (int i = 0; i < N; ++i) {
    q[i] = clampInt(nearestInt(iscale * x[i]), 0, nmax);
    sumLX += w[i] * x[i] * q[i];
    sumL2 += w[i] * q[i] * q[i];
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < N; ++i) {
      float slx = sumLX - w[i] * x[i] * q[i];
      float sl2 = sumL2 - w[i] * q[i] * q[i];
      if (!(slx > 0 && sl2 > 0))
        continue;
      int nl = clampInt(nearestInt(x[i] * sl2 / slx), 0, nmax);
      if (nl == q[i])
        continue;
      slx += w[i] * x[i] * nl;
      sl2 += w[i] * nl * nl;
      if (slx * slx * sumL2 > sumLX * sumLX * sl2) {
        q[i] = nl;
        sumLX = slx;
        sumL2 = sl2;
        ++changed;
      }
    }
    if (!changed)
      break;
  }
  for (int i = 0; i < N; ++i)
    L[i] = static_cast<uint8_t>(q[i]);
  return sumL2 > 0 ? sumLX / sumL2 : 0.f;
}

/// Weights sqrt-blended with the block's energy, as ggml uses with an
/// importance vector: importance * sqrt(sigma2 + x^2).
template <int N>
inline void importanceWeights(const float *x, const float *imp, float sigma2,
                              float *w) {
  for (int i = 0; i < N; ++i)
    w[i] = imp[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

inline float sumSquares256(const float *x) {
  float sq[kSuper];
  for (int i = 0; i < kSuper; ++i)
    sq[i] = x[i] * x[i];
  return sumLanes<kSuper>(sq);
}

//===----------------------------------------------------------------------===//
// Packing helpers.
//===----------------------------------------------------------------------===//

/// Q2_K/Q3_K element e of a super-block lives in 2-bit field
/// (e % 128) / 32 of byte (e / 128) * 32 + e % 32.
inline void pack2Bit(const uint8_t *L, uint8_t *qs) {
  for (int j = 0; j < kSuper; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/// Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes (unpacked by
/// Codecs.h's unpackScaleMin). Entries 0-3
/// sit in the low 6 bits of bytes 0-3 (scale) and 4-7 (min); entries 4-7
/// keep their low nibbles in bytes 8-11 and their top 2 bits in the spare
/// bits 6-7 of bytes 0-7.
inline void packScaleMin(const uint8_t *ls, const uint8_t *lm, uint8_t *out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = ls[j];
    out[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    out[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    out[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
    out[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
  }
}

/// Q3_K: 16 six-bit biased scales in 12 bytes. Low nibbles: bytes 0-7 (low
/// half for scales 0-7, high half for 8-15); top 2 bits: byte 8 + j % 4,
/// bit pair j / 4.
inline void packQ3Scales(const uint8_t *ls, uint8_t *out) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int l = ls[j];
    if (j < 8)
      out[j] = static_cast<uint8_t>(l & 0xF);
    else
      out[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
    out[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
  }
}
inline int unpackQ3Scale(const uint8_t *s, int j) {
  int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  return low | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

//===----------------------------------------------------------------------===//
// Final choice of the stored integers.
//
// The sub-block fits give float scales (and mins). What is stored is an fp16
// super-block factor times small integers, and that rounding is where most
// of the error comes from. So the stored values are chosen by the error the
// decoder will really make: for a few candidate fp16 factors, each sub-block
// tries the integers next to the rounded ones, with its quants re-rounded.
//===----------------------------------------------------------------------===//

/// Weighted squared error of an affine sub-block decoded as dl * L - ml (the
/// decoder's exact arithmetic), quants re-rounded into `L`.
template <int N>
float affineError(const float *__restrict x, const float *__restrict w,
                  float dl, float ml, int nmax, uint8_t *__restrict L) {
  float err[N];
  if (!dl) {
    for (int i = 0; i < N; ++i) {
      L[i] = 0;
      const float diff = -ml - x[i];
      err[i] = w[i] * diff * diff;
    }
    return sumLanes<N>(err);
  }
  const float idl = 1 / dl;
  for (int i = 0; i < N; ++i) {
    const int l = clampInt(nearestInt((x[i] + ml) * idl), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    const float diff = dl * l - ml - x[i];
    err[i] = w[i] * diff * diff;
  }
  return sumLanes<N>(err);
}

/// Picks an affine sub-block's integer scale and min: (s0, m0), and unless
/// `quick`, its 8 neighbours. Either way also the best constant (scale 0)
/// when s0 is 0: next to a huge outlier the scale rounds to 0, and the
/// sub-block should then decode to its mean rather than to its fitted min.
/// Returns the error.
template <int N>
float pickAffine(const float *x, const float *w, float dq, float mq, int nmax,
                 int maxLevel, int s0, int m0, bool quick, uint8_t &ls,
                 uint8_t &lm, uint8_t *L) {
  uint8_t cand[N];
  float best = INFINITY;
  // Defined results even if every error is NaN (fp16 overflow).
  ls = static_cast<uint8_t>(clampInt(s0, 0, maxLevel));
  lm = static_cast<uint8_t>(clampInt(m0, 0, maxLevel));
  std::memset(L, 0, N);
  auto tryPair = [&](int s, int m) {
    if (s < 0 || s > maxLevel || m < 0 || m > maxLevel)
      return;
    const float e = affineError<N>(x, w, dq * s, mq * m, nmax, cand);
    if (e < best) {
      best = e;
      ls = static_cast<uint8_t>(s);
      lm = static_cast<uint8_t>(m);
      std::memcpy(L, cand, N);
    }
  };
  tryPair(s0, m0);
  if (!quick)
    for (int s = s0 - 1; s <= s0 + 1; ++s)
      for (int m = m0 - 1; m <= m0 + 1; ++m)
        if (s != s0 || m != m0)
          tryPair(s, m);
  if (mq > 0 && (s0 == 0 || !quick)) {
    float wx[N];
    for (int i = 0; i < N; ++i)
      wx[i] = w[i] * x[i];
    const float sw = sumLanes<N>(w);
    if (sw > 0)
      tryPair(0, clampInt(nearestInt(-sumLanes<N>(wx) / sw / mq), 0, maxLevel));
  }
  return best;
}

/// Affine super-block (Q2_K, Q4_K, Q5_K): NSub sub-blocks of N. Tries fp16
/// factors around the fitted d (then around dmin) with plain rounding of the
/// sub-block integers, then does the full neighbour pick for the fitted
/// factors and for the best candidate, keeping the better. On return
/// ls/lm/L hold the chosen integers and d/dmin the chosen factors.
template <int N, int NSub>
void chooseAffine(const float *x, const float *w, const float *scales,
                  const float *mins, int nmax, int maxLevel, float &d,
                  float &dmin, uint8_t *ls, uint8_t *lm, uint8_t *L) {
  uint8_t tls[NSub], tlm[NSub], tL[N * NSub];
  // Total error of factors (dc, mc); fitted = start from ls/lm as given.
  auto evaluate = [&](float dc, float mc, bool fitted, bool quick,
                      float bound) {
    const float dq = roundHalf(dc), mq = roundHalf(mc);
    float total = 0;
    for (int j = 0; j < NSub && total < bound; ++j) {
      const int s0 = fitted ? ls[j]
                     : dq > 0
                         ? clampInt(nearestInt(scales[j] / dq), 0, maxLevel)
                         : 0;
      const int m0 = fitted   ? lm[j]
                     : mq > 0 ? clampInt(nearestInt(mins[j] / mq), 0, maxLevel)
                              : 0;
      total += pickAffine<N>(x + N * j, w + N * j, dq, mq, nmax, maxLevel, s0,
                             m0, quick, tls[j], tlm[j], tL + N * j);
    }
    return total;
  };
  float bestQuick = evaluate(d, dmin, true, true, INFINITY);
  float candD = d, candDmin = dmin;
  bool moved = false;
  for (int axis = 0; axis < 2; ++axis) {
    const float base = axis ? dmin : d;
    for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
      if (!k)
        continue;
      const float v = base * (1 + kSearchStride * k);
      const float dc = axis ? candD : v, mc = axis ? v : dmin;
      const float e = evaluate(dc, mc, false, true, bestQuick);
      if (e < bestQuick) {
        bestQuick = e;
        candD = dc;
        candDmin = mc;
        moved = true;
      }
    }
  }
  float best = evaluate(d, dmin, true, false, INFINITY);
  std::memcpy(ls, tls, NSub);
  std::memcpy(lm, tlm, NSub);
  std::memcpy(L, tL, N * NSub);
  if (moved && evaluate(candD, candDmin, false, false, best) < best) {
    d = candD;
    dmin = candDmin;
    std::memcpy(ls, tls, NSub);
    std::memcpy(lm, tlm, NSub);
    std::memcpy(L, tL, N * NSub);
  }
}

/// Weighted squared error of a signed sub-block decoded as dl * (L - bias).
template <int N>
float signedError(const float *__restrict x, const float *__restrict w,
                  float dl, int bias, uint8_t *__restrict L) {
  float err[N];
  if (!dl) {
    for (int i = 0; i < N; ++i) {
      L[i] = static_cast<uint8_t>(bias);
      err[i] = w[i] * x[i] * x[i];
    }
    return sumLanes<N>(err);
  }
  const float idl = 1 / dl;
  for (int i = 0; i < N; ++i) {
    const int l = clampInt(nearestInt(x[i] * idl), -bias, bias - 1);
    L[i] = static_cast<uint8_t>(l + bias);
    const float diff = dl * l - x[i];
    err[i] = w[i] * diff * diff;
  }
  return sumLanes<N>(err);
}

/// Signed super-block (Q3_K, Q6_K): 16 sub-blocks of 16, sub-block scale
/// d * sc with sc in [scMin, scMax], quants biased by `bias`. Same search as
/// chooseAffine over d alone; sc holds the fitted integers on entry and the
/// chosen ones on return.
void chooseSigned(const float *x, const float *w, const float *scales,
                  int scMin, int scMax, int bias, float &d, int *sc,
                  uint8_t *L) {
  int tsc[16];
  uint8_t tL[kSuper], cand[16];
  auto evaluate = [&](float dc, bool fitted, bool quick, float bound) {
    const float dq = roundHalf(dc);
    float total = 0;
    for (int j = 0; j < 16 && total < bound; ++j) {
      const int s0 = fitted ? sc[j]
                     : dq   ? clampInt(nearestInt(scales[j] / dq), scMin, scMax)
                            : 0;
      float best = INFINITY;
      tsc[j] = s0;
      std::memset(tL + 16 * j, bias, 16);
      for (int s = quick ? s0 : s0 - 1; s <= (quick ? s0 : s0 + 1); ++s) {
        if (s < scMin || s > scMax)
          continue;
        const float e =
            signedError<16>(x + 16 * j, w + 16 * j, dq * s, bias, cand);
        if (e < best) {
          best = e;
          tsc[j] = s;
          std::memcpy(tL + 16 * j, cand, 16);
        }
      }
      total += best;
    }
    return total;
  };
  float bestQuick = evaluate(d, true, true, INFINITY);
  float candD = d;
  for (int k = -kSearchSteps; k <= kSearchSteps; ++k) {
    if (!k)
      continue;
    const float dc = d * (1 + kSearchStride * k);
    const float e = evaluate(dc, false, true, bestQuick);
    if (e < bestQuick) {
      bestQuick = e;
      candD = dc;
    }
  }
  const bool moved = candD != d;
  float best = evaluate(d, true, false, INFINITY);
  std::memcpy(sc, tsc, sizeof(tsc));
  std::memcpy(L, tL, kSuper);
  if (moved && evaluate(candD, false, false, best) < best) {
    d = candD;
    std::memcpy(sc, tsc, sizeof(tsc));
    std::memcpy(L, tL, kSuper);
  }
}

//===----------------------------------------------------------------------===//
// Per-format super-block encoders.
//===----------------------------------------------------------------------===//

/// Weights of the final choice: the error metric itself, i.e. the importance
/// or, without one, uniform.
inline void metricWeights(const float *imp, float *w) {
  for (int i = 0; i < kSuper; ++i)
    w[i] = imp ? imp[i] : 1.f;
}

void encodeBlockQ2K(const float *x, uint8_t *y, const float *imp) {
  uint8_t L[kSuper];
  float scales[16], mins[16], w[kSuper];
  uint8_t ls[16], lm[16];
  float d, dmin;
  if (!imp) {
    float maxScale = 0, maxMin = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l)
        w[16 * j + l] = std::fabs(x[16 * j + l]);
      scales[j] = fitAffine<16, true>(x + 16 * j, w + 16 * j, 3, L + 16 * j,
                                      mins[j], -0.5f, 0.1f, 15);
      maxScale = std::max(maxScale, scales[j]);
      maxMin = std::max(maxMin, mins[j]);
    }
    const float iscale = maxScale > 0 ? 15.f / maxScale : 0.f;
    const float imin = maxMin > 0 ? 15.f / maxMin : 0.f;
    for (int j = 0; j < 16; ++j) {
      ls[j] =
          static_cast<uint8_t>(clampInt(nearestInt(iscale * scales[j]), 0, 15));
      lm[j] = static_cast<uint8_t>(clampInt(nearestInt(imin * mins[j]), 0, 15));
    }
    d = maxScale / 15.f;
    dmin = maxMin / 15.f;
  } else {
    const float sigma2 = sumSquares256(x) / kSuper;
    float sw[16];
    for (int j = 0; j < 16; ++j) {
      importanceWeights<16>(x + 16 * j, imp + 16 * j, sigma2, w + 16 * j);
      sw[j] = sumLanes<16>(w + 16 * j);
      scales[j] = fitAffine<16, false>(x + 16 * j, w + 16 * j, 3, L + 16 * j,
                                       mins[j], -0.9f, 0.05f, 36);
    }
    d = fitUnsigned<16>(scales, sw, 15, ls);
    dmin = fitUnsigned<16>(mins, sw, 15, lm);
  }
  metricWeights(imp, w);
  chooseAffine<16, 16>(x, w, scales, mins, 3, 15, d, dmin, ls, lm, L);
  storeHalf(y + q2k::kD, d);
  storeHalf(y + q2k::kDmin, dmin);
  for (int j = 0; j < 16; ++j)
    y[q2k::kScales + j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
  pack2Bit(L, y + q2k::kQs);
}

void encodeBlockQ3K(const float *x, uint8_t *y, const float *imp) {
  uint8_t L[kSuper];
  float scales[16], w[kSuper];
  uint8_t ls[16];
  float d = 0;
  if (!imp) {
    float maxScale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = fitQ3Ref(x + 16 * j, 4, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        maxScale = scales[j];
      }
    }
    std::memset(ls, 32, sizeof(ls));
    if (maxScale) {
      const float iscale = -32.f / maxScale;
      for (int j = 0; j < 16; ++j)
        ls[j] = static_cast<uint8_t>(
            clampInt(nearestInt(iscale * scales[j]), -32, 31) + 32);
      d = 1 / iscale;
    }
  } else {
    const float sigma2 = 2 * sumSquares256(x) / kSuper;
    float sw[16];
    for (int j = 0; j < 16; ++j) {
      importanceWeights<16>(x + 16 * j, imp + 16 * j, sigma2, w + 16 * j);
      sw[j] = sumLanes<16>(w + 16 * j);
      scales[j] = fitSigned<16>(x + 16 * j, w + 16 * j, 4, L + 16 * j);
    }
    d = fitSigned<16>(scales, sw, 32, ls);
  }
  int sc[16];
  for (int j = 0; j < 16; ++j)
    sc[j] = ls[j] - 32;
  metricWeights(imp, w);
  chooseSigned(x, w, scales, -32, 31, 4, d, sc, L);
  storeHalf(y + q3k::kD, d);
  for (int j = 0; j < 16; ++j)
    ls[j] = static_cast<uint8_t>(sc[j] + 32);
  packQ3Scales(ls, y + q3k::kScales);
  // Bit 2 of quant e goes to bit e / 32 of hmask[e % 32].
  uint8_t *hmask = y + q3k::kHmask;
  std::memset(hmask, 0, 32);
  for (int e = 0; e < kSuper; ++e) {
    hmask[e % 32] |= static_cast<uint8_t>((L[e] >> 2) << (e / 32));
    L[e] &= 3;
  }
  pack2Bit(L, y + q3k::kQs);
}

/// Q4_K and Q5_K share everything but the quant width.
template <int NMax>
void encodeBlockQ45(const float *x, const float *imp, uint8_t *L,
                    uint8_t *scalesOut, uint8_t *dOut, uint8_t *dminOut) {
  float scales[8], mins[8], w[kSuper];
  uint8_t ls[8], lm[8];
  float d, dmin;
  if (!imp) {
    float maxScale = 0, maxMin = 0;
    for (int j = 0; j < 8; ++j) {
      const float *xs = x + 32 * j;
      float *ws = w + 32 * j;
      float sq[32];
      for (int l = 0; l < 32; ++l)
        sq[l] = xs[l] * xs[l];
      const float avX = std::sqrt(sumLanes<32>(sq) / 32);
      for (int l = 0; l < 32; ++l)
        ws[l] = avX + std::fabs(xs[l]);
      scales[j] = NMax == 15 ? fitAffine<32, false>(xs, ws, NMax, L + 32 * j,
                                                    mins[j], -1.f, 0.1f, 20)
                             : fitAffine<32, false>(xs, ws, NMax, L + 32 * j,
                                                    mins[j], -0.5f, 0.1f, 15);
      maxScale = std::max(maxScale, scales[j]);
      maxMin = std::max(maxMin, mins[j]);
    }
    const float iscale = maxScale > 0 ? 63.f / maxScale : 0.f;
    const float imin = maxMin > 0 ? 63.f / maxMin : 0.f;
    for (int j = 0; j < 8; ++j) {
      ls[j] =
          static_cast<uint8_t>(clampInt(nearestInt(iscale * scales[j]), 0, 63));
      lm[j] = static_cast<uint8_t>(clampInt(nearestInt(imin * mins[j]), 0, 63));
    }
    d = maxScale / 63.f;
    dmin = maxMin / 63.f;
  } else {
    const float sigma2 = 2 * sumSquares256(x) / kSuper;
    float sw[8];
    for (int j = 0; j < 8; ++j) {
      importanceWeights<32>(x + 32 * j, imp + 32 * j, sigma2, w + 32 * j);
      sw[j] = sumLanes<32>(w + 32 * j);
      scales[j] = fitAffine<32, false>(x + 32 * j, w + 32 * j, NMax, L + 32 * j,
                                       mins[j], -0.9f, 0.05f, 36);
    }
    d = fitUnsigned<8>(scales, sw, 63, ls);
    dmin = fitUnsigned<8>(mins, sw, 63, lm);
  }
  metricWeights(imp, w);
  chooseAffine<32, 8>(x, w, scales, mins, NMax, 63, d, dmin, ls, lm, L);
  storeHalf(dOut, d);
  storeHalf(dminOut, dmin);
  packScaleMin(ls, lm, scalesOut);
}

void encodeBlockQ4K(const float *x, uint8_t *y, const float *imp) {
  uint8_t L[kSuper];
  encodeBlockQ45<15>(x, imp, L, y + q4k::kScales, y + q4k::kD, y + q4k::kDmin);
  // Each 64-weight group: first 32 in low nibbles, next 32 in high nibbles.
  uint8_t *qs = y + q4k::kQs;
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l)
      qs[32 * g + l] =
          static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + l + 32] << 4));
}

void encodeBlockQ5K(const float *x, uint8_t *y, const float *imp) {
  uint8_t L[kSuper];
  encodeBlockQ45<31>(x, imp, L, y + q5k::kScales, y + q5k::kD, y + q5k::kDmin);
  // Low nibbles as Q4_K; bit 4 of quant e goes to bit e / 32 of qh[e % 32].
  uint8_t *qs = y + q5k::kQs, *qh = y + q5k::kQh;
  std::memset(qh, 0, 32);
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * g + l], hi = L[64 * g + l + 32];
      qs[32 * g + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * g)) |
                                    ((hi >> 4) << (2 * g + 1)));
    }
}

void encodeBlockQ6K(const float *x, uint8_t *y, const float *imp) {
  uint8_t L[kSuper];
  float scales[16];
  float maxScale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] =
        fitSigned<16>(x + 16 * j, imp ? imp + 16 * j : nullptr, 32, L + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      maxScale = scales[j];
    }
  }
  if (amax < 1e-15f) {
    std::memset(y, 0, q6k::kBytes);
    return;
  }
  const float iscale = -128.f / maxScale;
  float d = 1 / iscale;
  int sc[16];
  for (int j = 0; j < 16; ++j)
    sc[j] = clampInt(nearestInt(iscale * scales[j]), -128, 127);
  float w[kSuper];
  metricWeights(imp, w);
  chooseSigned(x, w, scales, -128, 127, 32, d, sc, L);
  storeHalf(y + q6k::kD, d);
  for (int j = 0; j < 16; ++j)
    y[q6k::kScales + j] = static_cast<uint8_t>(static_cast<int8_t>(sc[j]));
  // Per 128 weights: low nibbles of the four 32-runs share 64 ql bytes (runs
  // 0/2 in ql[0..31], 1/3 in ql[32..63]); their top 2 bits share 32 qh bytes.
  uint8_t *ql = y + q6k::kQl, *qh = y + q6k::kQh;
  for (int h = 0; h < 2; ++h) {
    const uint8_t *Lh = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[64 * h + l] =
          static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[64 * h + l + 32] =
          static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[32 * h + l] = static_cast<uint8_t>(
          (Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
          ((Lh[l + 96] >> 4) << 6));
    }
  }
}

template <int BlockBytes,
          void (*EncodeBlock)(const float *, uint8_t *, const float *)>
void encodeRow(const float *src, void *dst, int64_t n, const float *imp) {
  uint8_t *y = static_cast<uint8_t *>(dst);
  for (int64_t i = 0; i < n / kSuper; ++i)
    EncodeBlock(src + i * kSuper, y + i * BlockBytes,
                imp ? imp + i * kSuper : nullptr);
}

} // namespace

//===----------------------------------------------------------------------===//
// Decoders: ggml's dequantize_row_q*_K, same operations in the same order.
//===----------------------------------------------------------------------===//

void decode_q2_k(const void *src, float *dst, int64_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n / kSuper; ++i, b += q2k::kBytes, dst += kSuper) {
    const float d = loadHalf(b + q2k::kD);
    const float dmin = loadHalf(b + q2k::kDmin);
    for (int j = 0; j < 16; ++j) {
      const uint8_t sc = b[q2k::kScales + j];
      const float dl = d * (sc & 0xF);
      const float ml = dmin * (sc >> 4);
      const uint8_t *q = b + q2k::kQs + (j / 8) * 32 + (j % 2) * 16;
      const int shift = 2 * ((j % 8) / 2);
      float *y = dst + 16 * j;
      for (int l = 0; l < 16; ++l)
        y[l] = dl * ((q[l] >> shift) & 3) - ml;
    }
  }
}

void decode_q3_k(const void *src, float *dst, int64_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n / kSuper; ++i, b += q3k::kBytes, dst += kSuper) {
    const float dAll = loadHalf(b + q3k::kD);
    for (int j = 0; j < 16; ++j) {
      // d * (negative int) with d = +0 gives -0, as in ggml.
      const float dl = dAll * (unpackQ3Scale(b + q3k::kScales, j) - 32);
      const uint8_t *q = b + q3k::kQs + (j / 8) * 32 + (j % 2) * 16;
      const uint8_t *hm = b + q3k::kHmask + (j % 2) * 16;
      const int shift = 2 * ((j % 8) / 2), bit = j / 2;
      float *y = dst + 16 * j;
      for (int l = 0; l < 16; ++l)
        y[l] = dl * (((q[l] >> shift) & 3) - (((hm[l] >> bit) & 1) ? 0 : 4));
    }
  }
}

void decode_q4_k(const void *src, float *dst, int64_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n / kSuper; ++i, b += q4k::kBytes, dst += kSuper) {
    const float d = loadHalf(b + q4k::kD);
    const float dmin = loadHalf(b + q4k::kDmin);
    for (int g = 0; g < 4; ++g) {
      uint8_t sc, m;
      unpackScaleMin(2 * g, b + q4k::kScales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      unpackScaleMin(2 * g + 1, b + q4k::kScales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t *q = b + q4k::kQs + 32 * g;
      float *y = dst + 64 * g;
      for (int l = 0; l < 32; ++l)
        y[l] = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l)
        y[l + 32] = d2 * (q[l] >> 4) - m2;
    }
  }
}

void decode_q5_k(const void *src, float *dst, int64_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n / kSuper; ++i, b += q5k::kBytes, dst += kSuper) {
    const float d = loadHalf(b + q5k::kD);
    const float dmin = loadHalf(b + q5k::kDmin);
    const uint8_t *qh = b + q5k::kQh;
    for (int g = 0; g < 4; ++g) {
      uint8_t sc, m;
      unpackScaleMin(2 * g, b + q5k::kScales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      unpackScaleMin(2 * g + 1, b + q5k::kScales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t *ql = b + q5k::kQs + 32 * g;
      float *y = dst + 64 * g;
      for (int l = 0; l < 32; ++l)
        y[l] = d1 * ((ql[l] & 0xF) + (((qh[l] >> (2 * g)) & 1) << 4)) - m1;
      for (int l = 0; l < 32; ++l)
        y[l + 32] =
            d2 * ((ql[l] >> 4) + (((qh[l] >> (2 * g + 1)) & 1) << 4)) - m2;
    }
  }
}

void decode_q6_k(const void *src, float *dst, int64_t n) {
  const uint8_t *b = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n / kSuper; ++i, b += q6k::kBytes, dst += kSuper) {
    const float d = loadHalf(b + q6k::kD);
    const int8_t *sc = reinterpret_cast<const int8_t *>(b + q6k::kScales);
    for (int h = 0; h < 2; ++h) {
      const uint8_t *ql = b + q6k::kQl + 64 * h;
      const uint8_t *qh = b + q6k::kQh + 32 * h;
      float *y = dst + 128 * h;
      // Quant r of this half: low nibble from ql[l + 32 * (r % 2)], shifted
      // by 4 * (r / 2); top bits from qh[l] >> 2r. Scale 8h + 2r + l / 16.
      for (int r = 0; r < 4; ++r)
        for (int half = 0; half < 2; ++half) {
          // (d * scale) * q, left to right as in ggml.
          const float ds = d * sc[8 * h + 2 * r + half];
          const uint8_t *lo = ql + 32 * (r % 2) + 16 * half;
          const uint8_t *hi = qh + 16 * half;
          float *out = y + 32 * r + 16 * half;
          for (int l = 0; l < 16; ++l) {
            const int q = (((lo[l] >> (4 * (r / 2))) & 0xF) |
                           (((hi[l] >> (2 * r)) & 3) << 4)) -
                          32;
            out[l] = ds * q;
          }
        }
    }
  }
}

//===----------------------------------------------------------------------===//
// Encoders.
//===----------------------------------------------------------------------===//

void encode_q2_k(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeRow<q2k::kBytes, encodeBlockQ2K>(src, dst, n, importance);
}
void encode_q3_k(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeRow<q3k::kBytes, encodeBlockQ3K>(src, dst, n, importance);
}
void encode_q4_k(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeRow<q4k::kBytes, encodeBlockQ4K>(src, dst, n, importance);
}
void encode_q5_k(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeRow<q5k::kBytes, encodeBlockQ5K>(src, dst, n, importance);
}
void encode_q6_k(const float *src, void *dst, int64_t n,
                 const float *importance) {
  encodeRow<q6k::kBytes, encodeBlockQ6K>(src, dst, n, importance);
}

} // namespace lowbit::formats::detail
