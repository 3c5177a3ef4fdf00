//===- IQ1Quants.cpp - IQ1_S, IQ1_M ---------------------------------------===//
//
// ggml's 1.56 and 1.75 bpw i-quants. Each group of 8 weights is one point g
// of a grid of 2048 points in {-1, 0, 1}^8 (kIQ1SGrid, IQGrids.cpp), moved
// by a shift of +-delta (delta = 0.125) and scaled by a 3-bit sub-block
// scale ls times an f16 super-block scale d:
//   x = d * (2 ls + 1) * (g + shift)
// Layouts of a 256-weight super-block (little-endian, as ggml-common.h):
//
//   IQ1_S  50 B: f16 d | 32 B qs, the low 8 bits of each group's grid index |
//          8 x u16 qh, one per 32 weights: bits 3l..3l+2 are the high index
//          bits of its group l, bits 12-14 ls, bit 15 set for a shift of
//          -delta (one shift for the four groups).
//   IQ1_M  56 B: 32 B qs as IQ1_S | 16 B qh, one byte per 16 weights: bits
//          0-2 and 4-6 are the high index bits of its two groups, bits 3 and
//          7 their shifts (set: -delta) | 4 x u16 scales: bits 3k..3k+2 of
//          u16 i are ls of weights 64 i + 16 k .. + 15, and the top nibbles
//          (u16 0 first) are the four nibbles of f16 d, low nibble first.
//
// Encoder (ours, not ggml's; the golden tests compare its error with
// ggml's). The error of a group is a sum over its coordinates of
// w (x - s v)^2, v one of the three levels -1, 0, 1 plus the shift, so at a
// given scale s and shift the cheapest pattern takes each coordinate's
// nearest level, and the cheapest grid point is found exactly without a
// full scan: if that pattern is off the grid (two patterns in three are),
// the grid points one and two coordinates away are priced by what they add
// to it (every pattern off the grid has a grid point within two
// coordinates, most within one), and the grid is searched half by half only
// when the best of them adds more than changing three coordinates could.
// Each sub-block's ideal scale (and IQ1_S's shared shift) is searched over
// candidates around max|x| and refit by least squares; d then maps the
// largest ideal scale to ls = 7, each sub-block takes the better of the two
// 3-bit scales next to its ideal one, and d is refit by least squares.
// Last, a d a few f16 steps away is taken if its largest error is smaller
// and its weighted error at most 0.3% larger: the least-squares d of a block
// with one outlier trades the outlier's error against the error of every
// neighbour sharing its scale (at least delta * dl each), and this keeps the
// worst of them down at almost no cost.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "IQGrids.h"
#include "QuantMath.h"

#include <algorithm>
#include <cfloat>
#include <iterator>

namespace lowbit::formats::detail {
namespace {

constexpr int kSuper = 256;
constexpr int kDim = 8;                // Weights per grid point.
constexpr int kGroups = kSuper / kDim; // Grid points per super-block.
constexpr int kGridSize = 2048;
constexpr int kPatterns = 6561;   // 3^8 points of {-1, 0, 1}^8.
constexpr int kHalfPatterns = 81; // 3^4.
constexpr float kDelta = 0.125f;  // ggml's IQ1S_DELTA, IQ1M_DELTA.
constexpr int kMaxScales = 16;    // Sub-blocks per super-block.
constexpr int kMaxGroupsPerScale = 4;
constexpr int kMaxLs = 7;
constexpr int kPow3[kDim] = {1, 3, 9, 27, 81, 243, 729, 2187};

/// The grid in the encoder's terms. A pattern is a point of {-1, 0, 1}^8
/// written as the base-3 number sum (g_j + 1) 3^j.
struct Grid {
  int16_t indexOf[kPatterns]; // -1 off the grid.
  // The grid points by the pattern of their coordinates 0-3 ("low half"):
  // those with low half l are byLow[lowStart[l] .. lowStart[l + 1]), as
  // the pattern of their coordinates 4-7.
  uint16_t lowStart[kHalfPatterns + 1];
  uint8_t byLow[kGridSize];
};

const Grid &grid() {
  static const Grid g = [] {
    Grid t;
    std::fill(std::begin(t.indexOf), std::end(t.indexOf), int16_t(-1));
    for (int i = 0; i < kGridSize; ++i) {
      int pattern = 0;
      for (int j = 0; j < kDim; ++j)
        pattern += (signedGridCoord(kIQ1SGrid[i], j) + 1) * kPow3[j];
      t.indexOf[pattern] = static_cast<int16_t>(i);
    }
    int at = 0;
    for (int low = 0; low < kHalfPatterns; ++low) {
      t.lowStart[low] = static_cast<uint16_t>(at);
      for (int high = 0; high < kHalfPatterns; ++high)
        if (t.indexOf[low + kHalfPatterns * high] >= 0)
          t.byLow[at++] = static_cast<uint8_t>(high);
    }
    t.lowStart[kHalfPatterns] = static_cast<uint16_t>(at);
    return t;
  }();
  return g;
}

/// Level k (0, 1, 2) of a shift: k - 1 + shift.
inline float level(int k, bool negative) {
  return static_cast<float>(k - 1) + (negative ? -kDelta : kDelta);
}

/// y = dl * (g + shift), as ggml: the int8 coordinate plus the shift in
/// float, then the product (which keeps ggml's -0.0 when dl is +0).
inline void decodePoint(float dl, uint16_t index, bool negative, float *y) {
  const uint64_t point = kIQ1SGrid[index];
  const float shift = negative ? -kDelta : kDelta;
  for (int j = 0; j < kDim; ++j)
    y[j] = dl * (static_cast<float>(signedGridCoord(point, j)) + shift);
}

/// The cheapest grid point for weights x (importance w) at scale s > 0 and
/// the given shift; returns its error sum w (x - s v)^2.
float fitGroup(const float *x, const float *w, float s, bool negative,
               uint16_t &index) {
  const Grid &g = grid();
  float cost[kDim][3];
  int nearest[kDim];
  int pattern = 0;
  float total = 0;
  for (int j = 0; j < kDim; ++j) {
    int best = 0;
    for (int k = 0; k < 3; ++k) {
      const float r = x[j] - s * level(k, negative);
      cost[j][k] = w[j] * r * r;
      if (cost[j][k] < cost[j][best])
        best = k;
    }
    nearest[j] = best;
    pattern += best * kPow3[j];
    total += cost[j][best];
  }
  if (g.indexOf[pattern] >= 0) {
    index = static_cast<uint16_t>(g.indexOf[pattern]);
    return total;
  }
  // What moving coordinate j to level k adds; the least for each j.
  float extra[kDim][3], least[kDim];
  for (int j = 0; j < kDim; ++j) {
    least[j] = FLT_MAX;
    for (int k = 0; k < 3; ++k) {
      extra[j][k] = cost[j][k] - cost[j][nearest[j]];
      if (k != nearest[j])
        least[j] = std::fmin(least[j], extra[j][k]);
    }
  }
  float bestExtra = FLT_MAX;
  int bestPattern = -1;
  auto consider = [&](float e, int p) {
    if (e < bestExtra && g.indexOf[p] >= 0) {
      bestExtra = e;
      bestPattern = p;
    }
  };
  for (int j = 0; j < kDim; ++j)
    for (int k = 0; k < 3; ++k)
      if (k != nearest[j])
        consider(extra[j][k], pattern + (k - nearest[j]) * kPow3[j]);
  // Any pattern m coordinates away adds at least the m smallest `least`.
  float m1 = FLT_MAX, m2 = FLT_MAX, m3 = FLT_MAX;
  for (int j = 0; j < kDim; ++j) {
    const float v = least[j];
    if (v < m1) {
      m3 = m2;
      m2 = m1;
      m1 = v;
    } else if (v < m2) {
      m3 = m2;
      m2 = v;
    } else if (v < m3) {
      m3 = v;
    }
  }
  if (!(bestExtra <= m1 + m2)) {
    for (int j = 0; j < kDim; ++j)
      for (int l = j + 1; l < kDim; ++l)
        for (int k = 0; k < 3; ++k)
          for (int m = 0; m < 3; ++m)
            if (k != nearest[j] && m != nearest[l])
              consider(extra[j][k] + extra[l][m],
                       pattern + (k - nearest[j]) * kPow3[j] +
                           (m - nearest[l]) * kPow3[l]);
  }
  if (bestPattern >= 0 && bestExtra <= m1 + m2 + m3) {
    index = static_cast<uint16_t>(g.indexOf[bestPattern]);
    return total + bestExtra;
  }
  // Otherwise search the grid by halves: a grid point costs low + high, the
  // costs of its two halves, so a low half whose cost plus the cheapest
  // high half is no better than the best so far is skipped whole.
  float low[kHalfPatterns], high[kHalfPatterns];
  float cheapestHigh = FLT_MAX;
  for (int p = 0; p < kHalfPatterns; ++p) {
    float a = 0, b = 0;
    for (int j = 0, r = p; j < kDim / 2; ++j, r /= 3) {
      a += cost[j][r % 3];
      b += cost[kDim / 2 + j][r % 3];
    }
    low[p] = a;
    high[p] = b;
    cheapestHigh = std::fmin(cheapestHigh, b);
  }
  float best = bestPattern >= 0 ? total + bestExtra : FLT_MAX;
  int at = bestPattern >= 0 ? bestPattern : 0;
  for (int l = 0; l < kHalfPatterns; ++l) {
    if (!(low[l] + cheapestHigh < best))
      continue;
    for (int i = g.lowStart[l]; i < g.lowStart[l + 1]; ++i) {
      const float t = low[l] + high[g.byLow[i]];
      if (t < best) {
        best = t;
        at = l + kHalfPatterns * g.byLow[i];
      }
    }
  }
  index = static_cast<uint16_t>(g.indexOf[at]);
  return best;
}

struct IQ1Format {
  int groupsPerScale; // 4 (IQ1_S) or 2 (IQ1_M).
  bool shiftPerGroup; // IQ1_M; IQ1_S has one shift per sub-block.
};

/// One encoded super-block before packing.
struct IQ1Code {
  uint16_t dBits = 0;
  uint16_t index[kGroups];
  bool negative[kGroups];
  uint8_t ls[kMaxScales];
};

/// A sub-block's points at one scale: their error and, for least squares,
/// P = sum w x v and Q = sum w v^2 (so the error at scale t is
/// sum w x^2 - 2 t P + t^2 Q for these points).
struct SubFit {
  float cost = 0, sumP = 0, sumQ = 0;
  uint16_t index[kMaxGroupsPerScale];
  bool negative[kMaxGroupsPerScale];
};

/// Encoder state of one super-block.
class BlockEncoder {
public:
  BlockEncoder(const IQ1Format &f, const float *x, const float *w)
      : f_(f), x_(x), w_(w), scales_(kGroups / f.groupsPerScale) {}

  void encode(IQ1Code &code);

private:
  SubFit evaluate(int b, float s) const;
  float searchScale(int b) const;
  /// Encodes with d = fp16(bits); ls per sub-block from `fixedLs`, or the
  /// better of the two next to its ideal scale. Returns the total error.
  float tryD(uint16_t bits, const uint8_t *fixedLs, IQ1Code &trial,
             SubFit *fits) const;
  /// Moves d to the f16 value nearby with the smallest largest error, the
  /// points and ls kept, if that costs little weighted error.
  void limitLargestError(IQ1Code &code, const SubFit *fits, float total) const;

  const IQ1Format &f_;
  const float *x_, *w_;
  int scales_;
  float ideal_[kMaxScales];
};

SubFit BlockEncoder::evaluate(int b, float s) const {
  SubFit fit;
  const int n = f_.groupsPerScale, first = b * n;
  uint16_t index[2][kMaxGroupsPerScale];
  float cost[2][kMaxGroupsPerScale];
  for (int shift = 0; shift < 2; ++shift)
    for (int u = 0; u < n; ++u)
      cost[shift][u] =
          fitGroup(x_ + kDim * (first + u), w_ + kDim * (first + u), s,
                   shift == 1, index[shift][u]);
  if (f_.shiftPerGroup) {
    for (int u = 0; u < n; ++u)
      fit.negative[u] = cost[1][u] < cost[0][u];
  } else {
    float total[2] = {0, 0};
    for (int u = 0; u < n; ++u)
      for (int shift = 0; shift < 2; ++shift)
        total[shift] += cost[shift][u];
    for (int u = 0; u < n; ++u)
      fit.negative[u] = total[1] < total[0];
  }
  for (int u = 0; u < n; ++u) {
    const bool neg = fit.negative[u];
    fit.index[u] = index[neg][u];
    fit.cost += cost[neg][u];
    const float *x = x_ + kDim * (first + u), *w = w_ + kDim * (first + u);
    const uint64_t point = kIQ1SGrid[fit.index[u]];
    for (int j = 0; j < kDim; ++j) {
      const float v = level(signedGridCoord(point, j) + 1, neg);
      fit.sumP += w[j] * x[j] * v;
      fit.sumQ += w[j] * v * v;
    }
  }
  return fit;
}

float BlockEncoder::searchScale(int b) const {
  const int n = f_.groupsPerScale * kDim;
  const float *x = x_ + b * n;
  float amax = 0;
  for (int i = 0; i < n; ++i)
    amax = std::fmax(amax, std::fabs(x[i]));
  if (amax < kZeroGroupEps)
    return 0;
  float bestS = 0, bestCost = FLT_MAX;
  SubFit best;
  auto consider = [&](float s) {
    SubFit fit = evaluate(b, s);
    if (fit.cost < bestCost) {
      bestCost = fit.cost;
      bestS = s;
      best = fit;
    }
  };
  // max|x| on the top level of either shift, then scales from 0.3 to 1.1
  // times that (a ternary fit of Gaussian data puts it near 0.6).
  consider(amax / (1 + kDelta));
  consider(amax / (1 - kDelta));
  for (float ratio : {0.3f, 0.36f, 0.44f, 0.52f, 0.63f, 0.76f, 0.91f, 1.1f})
    consider(amax * ratio / (1 + kDelta));
  // Least-squares refit for the chosen points, then choose again.
  for (int iter = 0; iter < 4 && best.sumQ > 0; ++iter) {
    const float s = best.sumP / best.sumQ;
    if (!(s > 0) || s == bestS)
      break;
    const float before = bestCost;
    consider(s);
    if (!(bestCost < before))
      break;
  }
  return bestS;
}

/// 2 ls + 1 as a float.
inline float scaleMultiple(int ls) { return static_cast<float>(2 * ls + 1); }

float BlockEncoder::tryD(uint16_t bits, const uint8_t *fixedLs, IQ1Code &trial,
                         SubFit *fits) const {
  const float d = fp16ToFp32(bits);
  trial.dBits = bits;
  float total = 0;
  for (int b = 0; b < scales_; ++b) {
    int lo, hi;
    if (fixedLs) {
      lo = hi = fixedLs[b];
    } else {
      // The 3-bit scales on either side of the ideal one.
      lo = 0;
      while (lo < kMaxLs && d * scaleMultiple(lo + 1) <= ideal_[b])
        ++lo;
      hi = std::min(lo + 1, kMaxLs);
    }
    float bestCost = FLT_MAX;
    for (int ls = lo; ls <= hi; ++ls) {
      SubFit fit = evaluate(b, d * scaleMultiple(ls));
      if (fit.cost < bestCost) {
        bestCost = fit.cost;
        trial.ls[b] = static_cast<uint8_t>(ls);
        fits[b] = fit;
      }
    }
    total += bestCost;
  }
  const int n = f_.groupsPerScale;
  for (int b = 0; b < scales_; ++b)
    for (int u = 0; u < n; ++u) {
      trial.index[b * n + u] = fits[b].index[u];
      trial.negative[b * n + u] = fits[b].negative[u];
    }
  return total;
}

void BlockEncoder::encode(IQ1Code &code) {
  float smax = 0;
  for (int b = 0; b < scales_; ++b) {
    ideal_[b] = searchScale(b);
    smax = std::fmax(smax, ideal_[b]);
  }
  code.dBits = 0;
  std::fill(std::begin(code.index), std::end(code.index), uint16_t(0));
  std::fill(std::begin(code.negative), std::end(code.negative), false);
  std::fill(std::begin(code.ls), std::end(code.ls), uint8_t(0));
  if (!(smax > 0))
    return; // d = 0: the super-block decodes to zeros.
  auto halfBits = [](float d) { return fp32ToFp16(std::fmin(d, 65504.f)); };
  float bestTotal = FLT_MAX;
  IQ1Code trial;
  SubFit fits[kMaxScales], bestFits[kMaxScales];
  auto keep = [&](float total) {
    if (total < bestTotal) {
      bestTotal = total;
      code = trial;
      std::copy(fits, fits + scales_, bestFits);
    }
  };
  // d for the largest sub-block at ls = 7, and just below it.
  for (float factor : {1.f, 0.96f}) {
    const uint16_t bits = halfBits(smax * factor / scaleMultiple(kMaxLs));
    if (fp16ToFp32(bits) > 0)
      keep(tryD(bits, nullptr, trial, fits));
  }
  // Least-squares d for the chosen points and sub-block scales.
  for (int iter = 0; iter < 2 && bestTotal < FLT_MAX; ++iter) {
    float num = 0, den = 0;
    for (int b = 0; b < scales_; ++b) {
      const float m = scaleMultiple(code.ls[b]);
      num += m * bestFits[b].sumP;
      den += m * m * bestFits[b].sumQ;
    }
    if (!(den > 0 && num > 0))
      break;
    const uint16_t bits = halfBits(num / den);
    if (bits == code.dBits || !(fp16ToFp32(bits) > 0))
      break;
    const float before = bestTotal;
    uint8_t fixedLs[kMaxScales];
    std::copy(code.ls, code.ls + scales_, fixedLs);
    keep(tryD(bits, fixedLs, trial, fits));
    keep(tryD(bits, nullptr, trial, fits));
    if (!(bestTotal < before))
      break;
  }
  if (bestTotal < FLT_MAX)
    limitLargestError(code, bestFits, bestTotal);
}

void BlockEncoder::limitLargestError(IQ1Code &code, const SubFit *fits,
                                     float total) const {
  constexpr float kTolerance = 0.003f; // Of the weighted error.
  constexpr int kSteps = 32;           // f16 steps each way (about 3%).
  // With the points and ls kept, the weighted error is a parabola in d and
  // each decoded weight is (d * m) * v, as the decoder computes it.
  float p = 0, q = 0, m[kSuper], v[kSuper];
  const int n = f_.groupsPerScale;
  for (int b = 0; b < scales_; ++b) {
    const float mb = scaleMultiple(code.ls[b]);
    p += mb * fits[b].sumP;
    q += mb * mb * fits[b].sumQ;
    for (int u = b * n; u < (b + 1) * n; ++u) {
      const uint64_t point = kIQ1SGrid[code.index[u]];
      for (int j = 0; j < kDim; ++j) {
        m[kDim * u + j] = mb;
        v[kDim * u + j] =
            level(signedGridCoord(point, j) + 1, code.negative[u]);
      }
    }
  }
  auto largestError = [&](float d) {
    float largest = 0;
    for (int i = 0; i < kSuper; ++i)
      largest = std::fmax(largest, std::fabs(x_[i] - (d * m[i]) * v[i]));
    return largest;
  };
  const float d0 = fp16ToFp32(code.dBits);
  float bestLargest = largestError(d0);
  uint16_t bestBits = code.dBits;
  for (int dir = -1; dir <= 1; dir += 2)
    for (int k = 1; k <= kSteps; ++k) {
      const int bits = code.dBits + dir * k;
      if (bits <= 0 || bits >= 0x7c00) // Positive and finite only.
        break;
      const float d = fp16ToFp32(static_cast<uint16_t>(bits));
      const float added = (d - d0) * ((d + d0) * q - 2 * p);
      if (!(added <= kTolerance * total))
        break;
      const float largest = largestError(d);
      if (largest < bestLargest) {
        bestLargest = largest;
        bestBits = static_cast<uint16_t>(bits);
      }
    }
  code.dBits = bestBits;
}

/// Encoder weights: the square root of ggml's, sqrt(importance *
/// sqrt(sigma2 + x^2)) (importance 1 without one). With the importance
/// itself, the error of the weights that matter most dominates more than
/// it should: on ggml's golden matrix the root gives lower unweighted and
/// importance-weighted error, and without importance it gives 10% lower
/// RMSE on Gaussian data than the lattice i-quants' sigma2 / 4 + x^2.
void iq1Weights(const float *x, const float *importance, float *w) {
  const float sigma2 = 2 * sumOfSquares(x, kSuper) / kSuper;
  if (importance) {
    importanceWeights(x, importance, kSuper, sigma2, w);
  } else {
    for (int i = 0; i < kSuper; ++i)
      w[i] = std::sqrt(sigma2 + x[i] * x[i]);
  }
  for (int i = 0; i < kSuper; ++i)
    w[i] = std::sqrt(w[i]);
}

void encodeSuperBlocks(const IQ1Format &f, const float *src, int64_t n,
                       const float *importance, uint8_t *out, int blockBytes,
                       void (*pack)(const IQ1Code &, uint8_t *)) {
  float w[kSuper];
  IQ1Code code;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float *x = src + kSuper * b;
    iq1Weights(x, importance ? importance + kSuper * b : nullptr, w);
    BlockEncoder(f, x, w).encode(code);
    pack(code, out + blockBytes * b);
  }
}

// ---- Packing (the inverse of the decoders below) ----

void packIQ1S(const IQ1Code &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  uint8_t *qs = blk + 2, *qh = blk + 34;
  for (int ib = 0; ib < 8; ++ib) {
    uint32_t h = static_cast<uint32_t>(c.ls[ib]) << 12 |
                 static_cast<uint32_t>(c.negative[4 * ib]) << 15;
    for (int l = 0; l < 4; ++l) {
      const uint16_t index = c.index[4 * ib + l];
      qs[4 * ib + l] = static_cast<uint8_t>(index);
      h |= static_cast<uint32_t>(index >> 8) << (3 * l);
    }
    storeU16(qh + 2 * ib, static_cast<uint16_t>(h));
  }
}

void packIQ1M(const IQ1Code &c, uint8_t *blk) {
  uint8_t *qs = blk, *qh = blk + 32, *scales = blk + 48;
  for (int u = 0; u < kGroups; ++u)
    qs[u] = static_cast<uint8_t>(c.index[u]);
  for (int h = 0; h < 16; ++h) {
    uint8_t byte = 0;
    for (int l = 0; l < 2; ++l) {
      const int u = 2 * h + l;
      byte |= static_cast<uint8_t>(((c.index[u] >> 8) | (c.negative[u] << 3))
                                   << (4 * l));
    }
    qh[h] = byte;
  }
  for (int i = 0; i < 4; ++i) {
    uint32_t sc = static_cast<uint32_t>((c.dBits >> (4 * i)) & 0xf) << 12;
    for (int k = 0; k < 4; ++k)
      sc |= static_cast<uint32_t>(c.ls[4 * i + k]) << (3 * k);
    storeU16(scales + 2 * i, static_cast<uint16_t>(sc));
  }
}

} // namespace

// ---- Entry points ----

void decode_iq1_s(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 50 * b;
    const float d = loadHalf(blk);
    const uint8_t *qs = blk + 2, *qh = blk + 34;
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t h = loadU16(qh + 2 * ib);
      const float dl = d * scaleMultiple((h >> 12) & 7);
      for (int l = 0; l < 4; ++l)
        decodePoint(
            dl,
            static_cast<uint16_t>(qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8)),
            h & 0x8000, dst + kSuper * b + 32 * ib + 8 * l);
    }
  }
}

void encode_iq1_s(const float *src, void *dst, int64_t n,
                  const float *importance) {
  static const IQ1Format f{4, false};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 50,
                    packIQ1S);
}

void decode_iq1_m(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 56 * b;
    const uint8_t *qs = blk, *qh = blk + 32, *scales = blk + 48;
    uint16_t sc[4], dBits = 0;
    for (int i = 0; i < 4; ++i) {
      sc[i] = loadU16(scales + 2 * i);
      dBits |= static_cast<uint16_t>((sc[i] >> 12) << (4 * i));
    }
    const float d = fp16ToFp32(dBits);
    for (int h = 0; h < 16; ++h) {
      const float dl = d * scaleMultiple((sc[h / 4] >> (3 * (h % 4))) & 7);
      for (int l = 0; l < 2; ++l) {
        const int u = 2 * h + l;
        const uint8_t bits = static_cast<uint8_t>(qh[h] >> (4 * l));
        decodePoint(dl, static_cast<uint16_t>(qs[u] | ((bits & 7) << 8)),
                    bits & 8, dst + kSuper * b + kDim * u);
      }
    }
  }
}

void encode_iq1_m(const float *src, void *dst, int64_t n,
                  const float *importance) {
  static const IQ1Format f{2, true};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 56,
                    packIQ1M);
}

} // namespace lowbit::formats::detail
