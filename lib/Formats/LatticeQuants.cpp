//===- LatticeQuants.cpp - IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S ---------===//
//
// ggml's lattice i-quants. A super-block of 256 weights has an f16 scale d
// and 4-bit sub-block scales ls; each group of 8 (IQ2) or 4 (IQ3) weights
// stores its magnitudes as one point of a fixed grid (IQGrids.cpp) and its
// signs separately. Layouts (little-endian, as ggml-common.h):
//
//   IQ2_XXS  66 B: f16 d | 8 x { 4 B grid indices | u32 signs/scale }; the
//            u32 holds four 7-bit sign indices (bits 0-27) and ls (28-31).
//            x = d * (0.5 + ls) * 0.25 * grid * sign
//   IQ2_XS   74 B: f16 d | 32 x u16 (9-bit grid index | 7-bit signs << 9) |
//            8 B scales: per 32 weights the low nibble scales the first 16,
//            the high nibble the last 16; x as IQ2_XXS.
//   IQ2_S    82 B: f16 d | 32 B grid index, low 8 bits | 32 B signs, one
//            bit per weight | 8 B qh: bits 2l, 2l+1 of byte k are the high
//            index bits of group l of sub-block k | 8 B scales as IQ2_XS.
//   IQ3_XXS  98 B: f16 d | 64 B grid indices (4 weights each) | 8 x u32
//            signs/scale as IQ2_XXS.   x = d * (0.5 + ls) * 0.5 * grid * sign
//   IQ3_S   110 B: f16 d | 64 B grid index, low 8 bits | 8 B qh (bit k of
//            byte b: high bit of index k of sub-block b) | 32 B signs, one
//            bit per weight | 4 B scales, 4 bits per 32 weights.
//            x = d * (1 + 2 ls) * grid * sign
//
// A 7-bit sign index i stands for the 8 signs ggml's ksigns_iq2xs[i]: the
// eighth sign makes the number of minus signs even.
//
// Encoder (ours, not ggml's; decode(encode(x)) error is compared with
// ggml's in the golden tests). With a group's signs taken from the data,
// the weighted error of grid point p at scale s is
//   sum w x^2 - 2 s P(p) + s^2 Q(p),  P = sum w |x| g,  Q = sum w g^2,
// and P, Q do not depend on s. When the signs must have even parity and the
// data's do not, the cheapest flip (the coordinate with the smallest
// w |x| g) is charged to P per grid point, which is exact: any other sign
// pattern costs more. So P and Q are computed once per group, and every
// candidate scale costs two multiply-adds per grid point: a brute-force
// search over the whole grid. Each sub-block's scale is searched over
// candidates around max|x| / max level and refit by least squares; d then
// maps the largest sub-block scale to ls = 15, each sub-block takes the
// better of its two nearest 4-bit scales, and a few nearby d and a
// least-squares refit of d are tried.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "IQGrids.h"
#include "QuantMath.h"

#include <algorithm>
#include <cfloat>
#include <vector>

namespace lowbit::formats::detail {
namespace {

constexpr int kSuper = 256;

/// A grid as floats, coordinate-major (level of coordinate j of point p at
/// [j * size + p]), so the searches run over grid points in SIMD lanes.
struct Lattice {
  int dim = 0, size = 0;
  float maxLevel = 0;
  std::vector<float> levels, squares;
  std::vector<float> upperLevels; // Distinct levels >= 0.4 * maxLevel.
};

template <typename Entry>
Lattice makeLattice(const Entry *grid, int size, int dim) {
  Lattice l;
  l.dim = dim;
  l.size = size;
  l.levels.resize(dim * size);
  l.squares.resize(dim * size);
  for (int p = 0; p < size; ++p)
    for (int j = 0; j < dim; ++j) {
      const float g = gridCoord(grid[p], j);
      l.levels[j * size + p] = g;
      l.squares[j * size + p] = g * g;
      l.maxLevel = std::fmax(l.maxLevel, g);
    }
  for (int p = 0; p < size; ++p)
    for (int j = 0; j < dim; ++j) {
      const float g = gridCoord(grid[p], j);
      if (g >= 0.4f * l.maxLevel &&
          std::find(l.upperLevels.begin(), l.upperLevels.end(), g) ==
              l.upperLevels.end())
        l.upperLevels.push_back(g);
    }
  std::sort(l.upperLevels.begin(), l.upperLevels.end());
  return l;
}

/// How the stored signs constrain a group.
enum class Parity {
  Free,         // One bit per weight (IQ2_S, IQ3_S).
  EvenPerPoint, // 7-bit index per 8-weight grid point (IQ2_XXS, IQ2_XS).
  EvenPerPair,  // 7-bit index per two 4-weight grid points (IQ3_XXS).
};

/// How a 4-bit sub-block scale decodes; computed exactly as ggml does.
enum class SubScale { Quarter, Half, Odd };

inline float subScale(SubScale kind, float d, int ls) {
  switch (kind) {
  case SubScale::Quarter:
    return d * (0.5f + static_cast<float>(ls)) * 0.25f;
  case SubScale::Half:
    return d * (0.5f + static_cast<float>(ls)) * 0.5f;
  case SubScale::Odd:
    return d * static_cast<float>(1 + 2 * ls);
  }
  return 0;
}

struct LatticeFormat {
  const Lattice &lattice;
  int pointsPerScale; // Grid points sharing one 4-bit scale.
  Parity parity;
  SubScale subScale;
};

constexpr int kMaxPoints = kSuper / 4;
constexpr int kMaxScales = 16;

/// One encoded super-block before packing.
struct LatticeCode {
  float d = 0;        // As decoded from f16.
  uint16_t dBits = 0; // The f16 bits of d.
  uint16_t index[kMaxPoints];
  uint8_t negative[kMaxPoints]; // Bit j: coordinate j is negative.
  uint8_t ls[kMaxScales];
};

/// Per-group sums of the search, reused across super-blocks of a thread.
struct Workspace {
  std::vector<float> q, p, pFlip;
};

/// Grid point minimising s * Q - 2 * P (the error less its constant, over
/// s > 0); sets `cost` = s * that. Sixteen independent lanes keep the loop
/// in SIMD registers; ties go to the lower index.
int bestPoint(const float *q, const float *p, int size, float s, float &cost) {
  constexpr int kLanes = 16;
  float best[kLanes];
  int32_t at[kLanes];
  for (int k = 0; k < kLanes; ++k) {
    best[k] = FLT_MAX;
    at[k] = k;
  }
  const float twice = 2.f;
  for (int i = 0; i < size; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const float t = s * q[i + k] - twice * p[i + k];
      const bool lower = t < best[k];
      best[k] = lower ? t : best[k];
      at[k] = lower ? i + k : at[k];
    }
  int bestK = 0;
  for (int k = 1; k < kLanes; ++k)
    if (best[k] < best[bestK] || (best[k] == best[bestK] && at[k] < at[bestK]))
      bestK = k;
  cost = s * best[bestK];
  return at[bestK];
}

/// Encoder state of one super-block.
class BlockEncoder {
public:
  BlockEncoder(const LatticeFormat &f, const float *x, const float *w,
               Workspace &ws)
      : f_(f), l_(f.lattice), x_(x), w_(w), ws_(ws) {
    points_ = kSuper / l_.dim;
    scales_ = points_ / f.pointsPerScale;
    prepare();
  }

  void encode(LatticeCode &code);

private:
  struct Choice {
    float cost = 0, sumQ = 0, sumP = 0;
  };

  void prepare();
  /// Best points of sub-block b at scale s; fills index/flip for its points.
  Choice evaluate(int b, float s, uint16_t *index, bool *flip) const;
  float searchScale(int b);
  void signs(LatticeCode &code, const bool *flip) const;

  const float *qOf(int u) const { return ws_.q.data() + u * l_.size; }
  const float *pOf(int u) const { return ws_.p.data() + u * l_.size; }
  const float *pFlipOf(int u) const { return ws_.pFlip.data() + u * l_.size; }

  const LatticeFormat &f_;
  const Lattice &l_;
  const float *x_, *w_;
  Workspace &ws_;
  int points_ = 0, scales_ = 0;
  uint8_t dataNegative_[kMaxPoints];
  bool oddParity_[kMaxPoints]; // Of the point (or of its pair).
};

void BlockEncoder::prepare() {
  const int size = l_.size, dim = l_.dim;
  ws_.q.resize(points_ * size);
  ws_.p.resize(points_ * size);
  if (f_.parity != Parity::Free)
    ws_.pFlip.resize(points_ * size);
  for (int u = 0; u < points_; ++u) {
    float *q = ws_.q.data() + u * size;
    float *p = ws_.p.data() + u * size;
    float *m =
        f_.parity != Parity::Free ? ws_.pFlip.data() + u * size : nullptr;
    uint8_t negative = 0;
    for (int i = 0; i < size; ++i) {
      q[i] = 0;
      p[i] = 0;
    }
    if (m)
      for (int i = 0; i < size; ++i)
        m[i] = FLT_MAX;
    for (int j = 0; j < dim; ++j) {
      const float xj = x_[u * dim + j];
      negative |= static_cast<uint8_t>((xj < 0) << j);
      const float wj = w_[u * dim + j];
      const float wa = wj * std::fabs(xj);
      const float *g = l_.levels.data() + j * size;
      const float *g2 = l_.squares.data() + j * size;
      for (int i = 0; i < size; ++i) {
        q[i] += wj * g2[i];
        p[i] += wa * g[i];
      }
      if (m)
        for (int i = 0; i < size; ++i) {
          const float v = wa * g[i];
          m[i] = v < m[i] ? v : m[i];
        }
    }
    // Flipping coordinate j against the data adds 4 s w|x| g to the error,
    // i.e. takes 2 w|x| g off P.
    if (m)
      for (int i = 0; i < size; ++i)
        m[i] = p[i] - 2 * m[i];
    dataNegative_[u] = negative;
  }
  for (int u = 0; u < points_; ++u) {
    const int ones = __builtin_popcount(dataNegative_[u]);
    oddParity_[u] = ones & 1;
  }
  if (f_.parity == Parity::EvenPerPair)
    for (int u = 0; u < points_; u += 2)
      oddParity_[u] = oddParity_[u + 1] = oddParity_[u] != oddParity_[u + 1];
  // A point whose own signs must be even uses the flipped sums outright.
  if (f_.parity == Parity::EvenPerPoint)
    for (int u = 0; u < points_; ++u)
      if (oddParity_[u])
        std::memcpy(ws_.p.data() + u * size, ws_.pFlip.data() + u * size,
                    size * sizeof(float));
}

BlockEncoder::Choice BlockEncoder::evaluate(int b, float s, uint16_t *index,
                                            bool *flip) const {
  Choice c;
  const int first = b * f_.pointsPerScale, end = first + f_.pointsPerScale;
  const int size = l_.size;
  auto add = [&](int u, int i, bool flipped) {
    index[u] = static_cast<uint16_t>(i);
    flip[u] = flipped;
    c.sumQ += qOf(u)[i];
    c.sumP +=
        (flipped && f_.parity == Parity::EvenPerPair ? pFlipOf(u) : pOf(u))[i];
  };
  if (!(s > 0)) {
    for (int u = first; u < end; ++u)
      add(u, 0, f_.parity == Parity::EvenPerPoint ? oddParity_[u] : false);
    if (f_.parity == Parity::EvenPerPair)
      for (int u = first; u < end; u += 2)
        flip[u] = oddParity_[u];
    return c; // Cost 0: nothing is reconstructed.
  }
  if (f_.parity != Parity::EvenPerPair) {
    for (int u = first; u < end; ++u) {
      float cost;
      const int i = bestPoint(qOf(u), pOf(u), size, s, cost);
      c.cost += cost;
      add(u, i, f_.parity == Parity::EvenPerPoint && oddParity_[u]);
    }
    return c;
  }
  for (int u = first; u < end; u += 2) {
    float cost0, cost1;
    const int i0 = bestPoint(qOf(u), pOf(u), size, s, cost0);
    const int i1 = bestPoint(qOf(u + 1), pOf(u + 1), size, s, cost1);
    if (!oddParity_[u]) {
      c.cost += cost0 + cost1;
      add(u, i0, false);
      add(u + 1, i1, false);
      continue;
    }
    // Odd pair: one half takes the cheapest flip.
    float flipCost0, flipCost1;
    const int f0 = bestPoint(qOf(u), pFlipOf(u), size, s, flipCost0);
    const int f1 = bestPoint(qOf(u + 1), pFlipOf(u + 1), size, s, flipCost1);
    if (flipCost0 + cost1 <= cost0 + flipCost1) {
      c.cost += flipCost0 + cost1;
      add(u, f0, true);
      add(u + 1, i1, false);
    } else {
      c.cost += cost0 + flipCost1;
      add(u, i0, false);
      add(u + 1, f1, true);
    }
  }
  return c;
}

float BlockEncoder::searchScale(int b) {
  const int dim = l_.dim;
  const int first = b * f_.pointsPerScale * dim;
  const int n = f_.pointsPerScale * dim;
  float amax = 0;
  for (int i = 0; i < n; ++i)
    amax = std::fmax(amax, std::fabs(x_[first + i]));
  if (amax < kZeroGroupEps)
    return 0;
  uint16_t index[kMaxPoints];
  bool flip[kMaxPoints];
  // Candidates put max|x| exactly on each of the upper levels (when one
  // weight dominates the error, the refits below stay near whichever level
  // it first lands on, so each must be tried), and between 0.45 and 1.25
  // times the top level (above 1 the largest weight is clipped).
  float bestS = 0, bestCost = 0;
  Choice best;
  auto consider = [&](float s) {
    Choice c = evaluate(b, s, index, flip);
    if (c.cost < bestCost) {
      bestCost = c.cost;
      bestS = s;
      best = c;
    }
  };
  for (float level : l_.upperLevels)
    consider(amax / level);
  constexpr int kCandidates = 6;
  for (int k = 0; k < kCandidates; ++k) {
    const float ratio = 0.45f * std::pow(1.25f / 0.45f, static_cast<float>(k) /
                                                            (kCandidates - 1));
    consider(amax / (l_.maxLevel * ratio));
  }
  // Least-squares refit for the chosen points, then choose again.
  for (int iter = 0; iter < 3 && best.sumQ > 0; ++iter) {
    const float s = best.sumP / best.sumQ;
    if (!(s > 0) || s == bestS)
      break;
    Choice c = evaluate(b, s, index, flip);
    if (!(c.cost < bestCost))
      break;
    bestCost = c.cost;
    bestS = s;
    best = c;
  }
  return bestS;
}

void BlockEncoder::signs(LatticeCode &code, const bool *flip) const {
  const int dim = l_.dim, size = l_.size;
  for (int u = 0; u < points_; ++u) {
    uint8_t negative = dataNegative_[u];
    if (flip[u]) {
      // The coordinate whose flip costs least for the chosen point.
      int bestJ = 0;
      float bestV = FLT_MAX;
      for (int j = 0; j < dim; ++j) {
        const float v = w_[u * dim + j] * std::fabs(x_[u * dim + j]) *
                        l_.levels[j * size + code.index[u]];
        if (v < bestV) {
          bestV = v;
          bestJ = j;
        }
      }
      negative ^= static_cast<uint8_t>(1u << bestJ);
    }
    code.negative[u] = negative;
  }
}

void BlockEncoder::encode(LatticeCode &code) {
  float s[kMaxScales];
  float smax = 0;
  for (int b = 0; b < scales_; ++b) {
    s[b] = searchScale(b);
    smax = std::fmax(smax, s[b]);
  }
  bool flip[kMaxPoints];
  code.d = 0;
  code.dBits = 0;
  if (!(smax > 0)) {
    for (int u = 0; u < points_; ++u) {
      code.index[u] = 0;
      flip[u] = false;
    }
    for (int b = 0; b < scales_; ++b)
      code.ls[b] = 0;
    for (int u = 0; u < points_; ++u)
      code.negative[u] = dataNegative_[u]; // Decodes to zero anyway.
    return;
  }
  const float top = subScale(f_.subScale, 1.f, 15);
  uint16_t index[kMaxPoints], trialIndex[kMaxPoints];
  bool trialFlip[kMaxPoints];
  uint8_t ls[kMaxScales];
  float bestTotal = FLT_MAX;
  float sumQ[kMaxScales], sumP[kMaxScales], bestSumQ[kMaxScales],
      bestSumP[kMaxScales];
  // Try d for a sub-block scale of smax, and around it; each sub-block then
  // takes the better of the two 4-bit scales next to its ideal one.
  auto tryD = [&](uint16_t bits, const uint8_t *fixedLs) {
    const float d = fp16ToFp32(bits);
    if (!(d > 0))
      return;
    float total = 0;
    uint8_t trialLs[kMaxScales];
    for (int b = 0; b < scales_; ++b) {
      int lo = 0, hi = 0;
      if (fixedLs) {
        lo = hi = fixedLs[b];
      } else {
        while (lo < 15 && subScale(f_.subScale, d, lo + 1) <= s[b])
          ++lo;
        hi = lo < 15 ? lo + 1 : lo;
      }
      float bestCost = FLT_MAX;
      for (int cand = lo; cand <= hi; ++cand) {
        uint16_t idx[kMaxPoints];
        bool fl[kMaxPoints];
        Choice c = evaluate(b, subScale(f_.subScale, d, cand), idx, fl);
        if (c.cost < bestCost) {
          bestCost = c.cost;
          trialLs[b] = static_cast<uint8_t>(cand);
          sumQ[b] = c.sumQ;
          sumP[b] = c.sumP;
          const int first = b * f_.pointsPerScale;
          for (int u = first; u < first + f_.pointsPerScale; ++u) {
            trialIndex[u] = idx[u];
            trialFlip[u] = fl[u];
          }
        }
      }
      total += bestCost;
    }
    if (total < bestTotal) {
      bestTotal = total;
      code.d = d;
      code.dBits = bits;
      std::memcpy(ls, trialLs, scales_);
      std::memcpy(index, trialIndex, sizeof(index));
      std::memcpy(flip, trialFlip, sizeof(flip));
      std::memcpy(bestSumQ, sumQ, sizeof(sumQ));
      std::memcpy(bestSumP, sumP, sizeof(sumP));
    }
  };
  auto halfBits = [](float d) { return fp32ToFp16(std::fmin(d, 65504.f)); };
  for (float factor : {1.f, 0.97f})
    tryD(halfBits(smax * factor / top), nullptr);
  // Least-squares d for the chosen points and sub-block scales.
  if (bestTotal < FLT_MAX) {
    float num = 0, den = 0;
    for (int b = 0; b < scales_; ++b) {
      const float m = subScale(f_.subScale, 1.f, ls[b]);
      num += m * bestSumP[b];
      den += m * m * bestSumQ[b];
    }
    if (den > 0 && num > 0) {
      uint8_t fixedLs[kMaxScales];
      std::memcpy(fixedLs, ls, scales_);
      tryD(halfBits(num / den), fixedLs);
    }
  }
  if (bestTotal == FLT_MAX) {
    // Every d underflowed f16: the super-block is (almost) zero.
    code.d = 0;
    code.dBits = 0;
    for (int u = 0; u < points_; ++u) {
      index[u] = 0;
      flip[u] = false;
    }
    std::memset(ls, 0, scales_);
  }
  std::memcpy(code.index, index, sizeof(index));
  std::memcpy(code.ls, ls, scales_);
  signs(code, flip);
}

/// Encoder weights. With importance: sqrt(importance) * sqrt(sigma2 + x^2).
/// ggml uses the importance itself; its square root trades a little of the
/// importance-weighted error for unweighted error: on ggml's golden matrix
/// both end up below ggml's (with the full importance, IQ3_XXS's unweighted
/// error is above). Without importance: sigma2 / 4 + x^2 (ggml's choice for
/// IQ2), which leans toward the large weights.
void latticeWeights(const float *x, const float *importance, float *w) {
  const float sigma2 = 2 * sumOfSquares(x, kSuper) / kSuper;
  if (!importance) {
    for (int i = 0; i < kSuper; ++i)
      w[i] = 0.25f * sigma2 + x[i] * x[i];
    return;
  }
  float root[kSuper];
  for (int i = 0; i < kSuper; ++i)
    root[i] = std::sqrt(importance[i]);
  importanceWeights(x, root, kSuper, sigma2, w);
}

void encodeSuperBlocks(const LatticeFormat &f, const float *src, int64_t n,
                       const float *importance, uint8_t *out, int blockBytes,
                       void (*pack)(const LatticeCode &, uint8_t *)) {
  thread_local Workspace ws;
  float w[kSuper];
  LatticeCode code;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float *x = src + kSuper * b;
    latticeWeights(x, importance ? importance + kSuper * b : nullptr, w);
    BlockEncoder(f, x, w, ws).encode(code);
    pack(code, out + blockBytes * b);
  }
}

const Lattice &iq2xxsLattice() {
  static const Lattice l = makeLattice(kIQ2XXSGrid, 256, 8);
  return l;
}
const Lattice &iq2xsLattice() {
  static const Lattice l = makeLattice(kIQ2XSGrid, 512, 8);
  return l;
}
const Lattice &iq2sLattice() {
  static const Lattice l = makeLattice(kIQ2SGrid, 1024, 8);
  return l;
}
const Lattice &iq3xxsLattice() {
  static const Lattice l = makeLattice(kIQ3XXSGrid, 256, 4);
  return l;
}
const Lattice &iq3sLattice() {
  static const Lattice l = makeLattice(kIQ3SGrid, 512, 4);
  return l;
}

/// The 7 stored bits of an even-parity sign byte.
inline uint32_t signIndex(uint8_t negative) { return negative & 127u; }

// ---- Packing (the inverse of the decoders below) ----

void packIQ2XXS(const LatticeCode &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  for (int ib = 0; ib < 8; ++ib) {
    uint8_t *q = blk + 2 + 8 * ib;
    uint32_t aux = static_cast<uint32_t>(c.ls[ib]) << 28;
    for (int l = 0; l < 4; ++l) {
      q[l] = static_cast<uint8_t>(c.index[4 * ib + l]);
      aux |= signIndex(c.negative[4 * ib + l]) << (7 * l);
    }
    storeU32(q + 4, aux);
  }
}

void packIQ2XS(const LatticeCode &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  for (int u = 0; u < 32; ++u)
    storeU16(
        blk + 2 + 2 * u,
        static_cast<uint16_t>(c.index[u] | (signIndex(c.negative[u]) << 9)));
  for (int ib = 0; ib < 8; ++ib)
    blk[66 + ib] = static_cast<uint8_t>(c.ls[2 * ib] | (c.ls[2 * ib + 1] << 4));
}

void packIQ2S(const LatticeCode &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  uint8_t *qs = blk + 2, *signs = blk + 34, *qh = blk + 66, *sc = blk + 74;
  for (int ib = 0; ib < 8; ++ib) {
    qh[ib] = 0;
    for (int l = 0; l < 4; ++l) {
      const int u = 4 * ib + l;
      qs[u] = static_cast<uint8_t>(c.index[u]);
      signs[u] = c.negative[u];
      qh[ib] |= static_cast<uint8_t>((c.index[u] >> 8) << (2 * l));
    }
    sc[ib] = static_cast<uint8_t>(c.ls[2 * ib] | (c.ls[2 * ib + 1] << 4));
  }
}

void packIQ3XXS(const LatticeCode &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  uint8_t *qs = blk + 2, *scalesAndSigns = blk + 66;
  for (int u = 0; u < 64; ++u)
    qs[u] = static_cast<uint8_t>(c.index[u]);
  for (int ib = 0; ib < 8; ++ib) {
    uint32_t aux = static_cast<uint32_t>(c.ls[ib]) << 28;
    for (int l = 0; l < 4; ++l) {
      const int u = 8 * ib + 2 * l; // Two 4-weight points per 8 signs.
      const uint8_t negative =
          static_cast<uint8_t>(c.negative[u] | (c.negative[u + 1] << 4));
      aux |= signIndex(negative) << (7 * l);
    }
    storeU32(scalesAndSigns + 4 * ib, aux);
  }
}

void packIQ3S(const LatticeCode &c, uint8_t *blk) {
  storeU16(blk, c.dBits);
  uint8_t *qs = blk + 2, *qh = blk + 66, *signs = blk + 74, *sc = blk + 106;
  for (int ib = 0; ib < 8; ++ib) {
    qh[ib] = 0;
    for (int k = 0; k < 8; ++k) {
      const int u = 8 * ib + k;
      qs[u] = static_cast<uint8_t>(c.index[u]);
      qh[ib] |= static_cast<uint8_t>((c.index[u] >> 8) << k);
    }
    for (int l = 0; l < 4; ++l)
      signs[4 * ib + l] = static_cast<uint8_t>(
          c.negative[8 * ib + 2 * l] | (c.negative[8 * ib + 2 * l + 1] << 4));
  }
  for (int i = 0; i < 4; ++i)
    sc[i] = static_cast<uint8_t>(c.ls[2 * i] | (c.ls[2 * i + 1] << 4));
}

// ---- Decoding helpers: y = db * grid * sign, as ggml (a product, then a
// negation, which is exact and keeps ggml's -0.0). ----

inline void decodePoint8(float db, uint64_t point, uint8_t negative, float *y) {
  for (int j = 0; j < 8; ++j) {
    const float v = db * static_cast<float>(gridCoord(point, j));
    y[j] = (negative >> j) & 1 ? -v : v;
  }
}

inline void decodePoint4(float db, uint32_t point, uint8_t negative, float *y) {
  for (int j = 0; j < 4; ++j) {
    const float v = db * static_cast<float>(gridCoord(point, j));
    y[j] = (negative >> j) & 1 ? -v : v;
  }
}

} // namespace

// ---- Entry points ----

void decode_iq2_xxs(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 66 * b;
    const float d = loadHalf(blk);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t *q = blk + 2 + 8 * ib;
      const uint32_t aux = loadU32(q + 4);
      const float db = subScale(SubScale::Quarter, d, aux >> 28);
      for (int l = 0; l < 4; ++l)
        decodePoint8(db, kIQ2XXSGrid[q[l]], kIQ2Signs[(aux >> (7 * l)) & 127],
                     dst + kSuper * b + 32 * ib + 8 * l);
    }
  }
}

void encode_iq2_xxs(const float *src, void *dst, int64_t n,
                    const float *importance) {
  static const LatticeFormat f{iq2xxsLattice(), 4, Parity::EvenPerPoint,
                               SubScale::Quarter};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 66,
                    packIQ2XXS);
}

void decode_iq2_xs(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 74 * b;
    const float d = loadHalf(blk);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t scales = blk[66 + ib];
      const float db[2] = {subScale(SubScale::Quarter, d, scales & 0xf),
                           subScale(SubScale::Quarter, d, scales >> 4)};
      for (int l = 0; l < 4; ++l) {
        const uint16_t q = loadU16(blk + 2 + 2 * (4 * ib + l));
        decodePoint8(db[l / 2], kIQ2XSGrid[q & 511], kIQ2Signs[q >> 9],
                     dst + kSuper * b + 32 * ib + 8 * l);
      }
    }
  }
}

void encode_iq2_xs(const float *src, void *dst, int64_t n,
                   const float *importance) {
  static const LatticeFormat f{iq2xsLattice(), 2, Parity::EvenPerPoint,
                               SubScale::Quarter};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 74,
                    packIQ2XS);
}

void decode_iq2_s(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 82 * b;
    const float d = loadHalf(blk);
    const uint8_t *qs = blk + 2, *signs = blk + 34, *qh = blk + 66,
                  *scales = blk + 74;
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {subScale(SubScale::Quarter, d, scales[ib] & 0xf),
                           subScale(SubScale::Quarter, d, scales[ib] >> 4)};
      for (int l = 0; l < 4; ++l) {
        const int index = qs[4 * ib + l] | (((qh[ib] >> (2 * l)) & 3) << 8);
        decodePoint8(db[l / 2], kIQ2SGrid[index], signs[4 * ib + l],
                     dst + kSuper * b + 32 * ib + 8 * l);
      }
    }
  }
}

void encode_iq2_s(const float *src, void *dst, int64_t n,
                  const float *importance) {
  static const LatticeFormat f{iq2sLattice(), 2, Parity::Free,
                               SubScale::Quarter};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 82,
                    packIQ2S);
}

void decode_iq3_xxs(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 98 * b;
    const float d = loadHalf(blk);
    const uint8_t *qs = blk + 2, *scalesAndSigns = blk + 66;
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t aux = loadU32(scalesAndSigns + 4 * ib);
      const float db = subScale(SubScale::Half, d, aux >> 28);
      for (int l = 0; l < 4; ++l) {
        const uint8_t signs = kIQ2Signs[(aux >> (7 * l)) & 127];
        float *y = dst + kSuper * b + 32 * ib + 8 * l;
        decodePoint4(db, kIQ3XXSGrid[qs[8 * ib + 2 * l]], signs & 0xf, y);
        decodePoint4(db, kIQ3XXSGrid[qs[8 * ib + 2 * l + 1]], signs >> 4,
                     y + 4);
      }
    }
  }
}

void encode_iq3_xxs(const float *src, void *dst, int64_t n,
                    const float *importance) {
  static const LatticeFormat f{iq3xxsLattice(), 8, Parity::EvenPerPair,
                               SubScale::Half};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 98,
                    packIQ3XXS);
}

void decode_iq3_s(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t *blk = in + 110 * b;
    const float d = loadHalf(blk);
    const uint8_t *qs = blk + 2, *qh = blk + 66, *signs = blk + 74,
                  *scales = blk + 106;
    for (int ib = 0; ib < 8; ++ib) {
      const float db =
          subScale(SubScale::Odd, d, (scales[ib / 2] >> (4 * (ib % 2))) & 0xf);
      for (int k = 0; k < 8; ++k) {
        const int index = qs[8 * ib + k] | (((qh[ib] >> k) & 1) << 8);
        const uint8_t sign = signs[4 * ib + k / 2];
        decodePoint4(db, kIQ3SGrid[index],
                     static_cast<uint8_t>(k % 2 ? sign >> 4 : sign & 0xf),
                     dst + kSuper * b + 32 * ib + 4 * k);
      }
    }
  }
}

void encode_iq3_s(const float *src, void *dst, int64_t n,
                  const float *importance) {
  static const LatticeFormat f{iq3sLattice(), 8, Parity::Free, SubScale::Odd};
  encodeSuperBlocks(f, src, n, importance, static_cast<uint8_t *>(dst), 110,
                    packIQ3S);
}

} // namespace lowbit::formats::detail
