//===- Ops.cpp - The non-matmul ops of a llama decoder --------------------===//
//
// These follow llama.cpp's llama graph and the ggml CPU ops it uses,
// including their rounding choices where they matter: RMSNorm sums squares
// in double, softmax sums exponentials in double, RoPE angles are built by
// repeated multiplication in float like ggml_rope_cache_init.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/Ops.h"

#include "Kernels.h"
#include "lowbit/Exec/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace lowbit::exec::ops {

using kernels::kPanelDepth;
using kernels::kPanelWidth;

namespace {
/// Softmax of one row (ggml_soft_max: max subtracted, exponentials summed
/// in double). `y` may alias `x`.
void softmaxRow(const float *x, float *y, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i)
    mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i)
    y[i] *= inv;
}

/// Queries per attention task.
constexpr int64_t kQueryBlock = 16;
/// Read-only zeros standing in for the missing rows of a last panel.
alignas(64) const float kZeros[kPanelDepth] = {};
} // namespace

void rmsNorm(ThreadPool &pool, const float *x, const float *w, int64_t rows,
             int64_t d, float eps, float *y) {
  pool.run(
      rows,
      [&](int64_t r, int) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double sum = 0.0;
        for (int64_t i = 0; i < d; ++i)
          sum += static_cast<double>(xr[i] * xr[i]);
        const float mean = static_cast<float>(sum / d);
        const float scale = 1.0f / std::sqrt(mean + eps);
        for (int64_t i = 0; i < d; ++i)
          yr[i] = (xr[i] * scale) * w[i];
      },
      /*parallel=*/rows * d >= kMinParallelWork / 8);
}

void layerNorm(ThreadPool &pool, const float *x, const float *w,
               const float *b, int64_t rows, int64_t d, float eps, float *y) {
  pool.run(
      rows,
      [&](int64_t r, int) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double sum = 0.0;
        for (int64_t i = 0; i < d; ++i)
          sum += xr[i];
        const float mean = static_cast<float>(sum / d);
        double var = 0.0;
        for (int64_t i = 0; i < d; ++i) {
          const float c = xr[i] - mean;
          var += static_cast<double>(c * c);
        }
        const float scale =
            1.0f / std::sqrt(static_cast<float>(var / d) + eps);
        for (int64_t i = 0; i < d; ++i) {
          const float v = ((xr[i] - mean) * scale) * w[i];
          yr[i] = b ? v + b[i] : v;
        }
      },
      /*parallel=*/rows * d >= kMinParallelWork / 8);
}

void gelu(ThreadPool &pool, const float *x, float *y, int64_t count) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  const int64_t chunk = 4096;
  pool.run(
      (count + chunk - 1) / chunk,
      [&](int64_t task, int) {
        const int64_t e = std::min(count, (task + 1) * chunk);
        for (int64_t i = task * chunk; i < e; ++i) {
          const float v = x[i];
          y[i] = 0.5f * v *
                 (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kCoef * v * v)));
        }
      },
      /*parallel=*/count >= kMinParallelWork / 8);
}

void softmax(ThreadPool &pool, const float *x, float *y, int64_t rows,
             int64_t d) {
  pool.run(
      rows, [&](int64_t r, int) { softmaxRow(x + r * d, y + r * d, d); },
      /*parallel=*/rows * d >= kMinParallelWork / 8);
}

/// ggml_rope_yarn_corr_dim: the dimension whose wavelength fits `rotations`
/// times into the original context.
static float yarnCorrectionDim(int64_t dims, int64_t originalContext,
                               float rotations, float base) {
  return static_cast<float>(dims) *
         std::log(static_cast<float>(originalContext) /
                  (rotations * 2.0f * static_cast<float>(M_PI))) /
         (2.0f * std::log(base));
}

void rope(const RopeParams &p, float *x, int64_t rows, int64_t heads,
          int64_t pos) {
  const int64_t hd = p.headDim, nd = p.ropeDims;
  const float thetaScale = std::pow(p.freqBase, -2.0f / nd);
  // YaRN's ramp between the correction dimensions (ggml_rope_yarn_corr_dims)
  // and its magnitude scaling.
  float low = 0, high = 0, mscale = p.attnFactor;
  if (p.extFactor != 0.0f) {
    low = std::max(0.0f, std::floor(yarnCorrectionDim(
                             nd, p.originalContext, p.betaFast, p.freqBase)));
    high = std::min(static_cast<float>(nd - 1),
                    std::ceil(yarnCorrectionDim(nd, p.originalContext,
                                                p.betaSlow, p.freqBase)));
    mscale *= 1.0f + 0.1f * std::log(1.0f / p.freqScale);
  }
  std::vector<float> cs(nd);
  for (int64_t r = 0; r < rows; ++r) {
    // ggml_rope_cache_init: theta_i = p * thetaScale^i by repeated products.
    float theta = static_cast<float>(pos + r);
    for (int64_t i = 0; i < nd; i += 2) {
      // ggml's rope_yarn: the extrapolated angle is theta / factor, the
      // interpolated one freq_scale times that; YaRN blends the two.
      const float extrapolated =
          p.freqFactors ? theta / p.freqFactors[i / 2] : theta;
      float t = p.freqScale * extrapolated;
      if (p.extFactor != 0.0f) {
        const float y = static_cast<float>(i / 2 - low) /
                        std::max(0.001f, high - low);
        const float ramp =
            (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.extFactor;
        t = t * (1.0f - ramp) + extrapolated * ramp;
      }
      cs[i] = std::cos(t) * mscale;
      cs[i + 1] = std::sin(t) * mscale;
      theta *= thetaScale;
    }
    float *row = x + r * heads * hd;
    for (int64_t h = 0; h < heads; ++h) {
      float *v = row + h * hd;
      if (p.mode == RopeMode::Normal) {
        for (int64_t i = 0; i < nd; i += 2) {
          const float c = cs[i], s = cs[i + 1];
          const float x0 = v[i], x1 = v[i + 1];
          v[i] = x0 * c - x1 * s;
          v[i + 1] = x0 * s + x1 * c;
        }
      } else {
        const int64_t half = nd / 2;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1];
          const float x0 = v[i], x1 = v[i + half];
          v[i] = x0 * c - x1 * s;
          v[i + half] = x0 * s + x1 * c;
        }
      }
    }
  }
}

void swiglu(ThreadPool &pool, const float *gate, int64_t gateStride,
            const float *up, int64_t upStride, float *out, int64_t outStride,
            int64_t rows, int64_t ff) {
  pool.run(
      rows,
      [&](int64_t r, int) {
        const float *g = gate + r * gateStride, *u = up + r * upStride;
        float *o = out + r * outStride;
        for (int64_t i = 0; i < ff; ++i)
          o[i] = (g[i] / (1.0f + std::exp(-g[i]))) * u[i];
      },
      /*parallel=*/rows * ff >= kMinParallelWork / 8);
}

bool KVCache::allocate(int64_t layers, int64_t context, int64_t kvHeads,
                       int64_t headDim, std::string &err) {
  layers_ = layers;
  ctx_ = context;
  kvHeads_ = kvHeads;
  headDim_ = headDim;
  const size_t cache =
      static_cast<size_t>(layers) * context * kvHeads * headDim;
  try {
    // Padding: attention panels read up to 16 keys past the end.
    keysT_.assign(cache + kPanelWidth, 0.0f);
    values_.assign(cache + kPanelWidth * kvHeads * headDim, 0.0f);
  } catch (const std::bad_alloc &) {
    err = "out of memory allocating the KV cache (" +
          std::to_string(2 * cache * sizeof(float) >> 20) +
          " MiB); use a smaller context";
    return false;
  }
  return true;
}

void KVCache::store(int64_t layer, int64_t pos, int64_t n, const float *k,
                    int64_t kStride, const float *v, int64_t vStride) {
  const int64_t hd = headDim_, hkv = kvHeads_ * headDim_;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < hkv; ++c)
      keysT_[((layer * kvHeads_ + c / hd) * hd + c % hd) * ctx_ + pos + i] =
          k[i * kStride + c];
  float *dst = values_.data() + (layer * ctx_ + pos) * hkv;
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(dst + i * hkv, v + i * vStride, hkv * sizeof(float));
}

size_t attentionScratchFloats(int64_t heads, int64_t kvHeads, int64_t headDim,
                              int64_t context) {
  const int64_t rows = kQueryBlock * (heads / kvHeads);
  return static_cast<size_t>(rows * (2 * headDim + context));
}

// Tasks are (KV head, block of kQueryBlock queries); the query heads sharing
// the KV head are stacked as rows, so scores S = Q K^T and the output P V
// are both panel matmuls. Masked (future) keys get probability 0, which adds
// exact zeros to the in-order sums.
void attention(ThreadPool &pool, Scratch &scratch, const KVCache &cache,
               int64_t layer, const float *q, int64_t qStride, int64_t n,
               int64_t pos, int64_t heads, float *out, int64_t outStride,
               float scale, int64_t window, float softcap) {
  const int64_t hd = cache.headDim(), H = heads, Hkv = cache.kvHeads(),
                group = H / Hkv, ctx = cache.context();
  const int64_t hkv = Hkv * hd;
  if (scale == 0.0f)
    scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  pool.run(
      Hkv * blocks,
      [&](int64_t task, int thread) {
        const int64_t kvh = task / blocks, i0 = (task % blocks) * kQueryBlock;
        const int64_t i1 = std::min(n, i0 + kQueryBlock);
        const int64_t R = (i1 - i0) * group; // rows: (query, head in group)
        const int64_t T = pos + i1;          // keys any row of the block sees
        float *Q = scratch[thread].data();
        float *O = Q + R * hd;
        float *S = O + R * hd;
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t g = 0; g < group; ++g)
            std::memcpy(Q + ((i - i0) * group + g) * hd,
                        q + i * qStride + (kvh * group + g) * hd,
                        hd * sizeof(float));

        const float *Kt = cache.keysT(layer, kvh);
        for (int64_t t0 = 0; t0 < T; t0 += kPanelWidth)
          kernels::panelMatmul(
              Q, hd, R, Kt + t0, ctx, hd, S + t0, T,
              static_cast<int>(std::min<int64_t>(kPanelWidth, T - t0)),
              /*accumulate=*/false);
        for (int64_t r = 0; r < R; ++r) {
          float *sr = S + r * T;
          const int64_t visible = pos + i0 + r / group + 1;
          // Keys before `first` are outside the sliding window.
          const int64_t first =
              window > 0 ? std::max<int64_t>(0, visible - window) : 0;
          for (int64_t t = first; t < visible; ++t)
            sr[t] *= scale;
          // gemma2: scores capped to softcap * tanh(s / softcap).
          if (softcap > 0)
            for (int64_t t = first; t < visible; ++t)
              sr[t] = softcap * std::tanh(sr[t] / softcap);
          softmaxRow(sr + first, sr + first, visible - first);
          std::fill(sr, sr + first, 0.0f);
          std::fill(sr + visible, sr + T, 0.0f);
        }

        const float *Vh = cache.values(layer) + kvh * hd;
        for (int64_t d0 = 0; d0 < hd; d0 += kPanelWidth)
          kernels::panelMatmul(
              S, T, R, Vh + d0, hkv, T, O + d0, hd,
              static_cast<int>(std::min<int64_t>(kPanelWidth, hd - d0)),
              /*accumulate=*/false);
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t g = 0; g < group; ++g)
            std::memcpy(out + i * outStride + (kvh * group + g) * hd,
                        O + ((i - i0) * group + g) * hd, hd * sizeof(float));
      },
      /*parallel=*/2 * n * H * hd * (pos + n) >= kMinParallelWork);
}

void decodeSpan(const WeightRef &w, int64_t row, int64_t k0, int64_t kc,
                float *dst) {
  const formats::FormatInfo &fi = formats::info(w.format);
  const uint8_t *src = w.data + static_cast<uint64_t>(row) * w.rowBytes +
                       static_cast<uint64_t>(k0 / fi.blockSize) * fi.blockBytes;
  if (w.format == formats::Format::F32)
    std::memcpy(dst, src, kc * sizeof(float));
  else
    formats::dequantizeRow(w.format, src, dst, kc);
}

size_t matmulScratchFloats() { return 2 * kPanelWidth * kPanelDepth; }

// Tasks are panels of 16 weight rows; each decodes its rows kPanelDepth
// columns at a time, transposes them and streams every x row over the panel.
void matmulDecoded(ThreadPool &pool, Scratch &scratch, const WeightRef &w,
                   const float *x, int64_t rows, float *y, int64_t yStride) {
  const int64_t N = w.rows, K = w.cols;
  const int64_t ldy = yStride > 0 ? yStride : N;
  const int64_t tasks = (N + kPanelWidth - 1) / kPanelWidth;
  pool.run(
      tasks,
      [&](int64_t task, int thread) {
        float *tile = scratch[thread].data();
        float *panel = tile + kPanelWidth * kPanelDepth;
        const int64_t n0 = task * kPanelWidth;
        const int cols =
            static_cast<int>(std::min<int64_t>(kPanelWidth, N - n0));
        const bool direct = w.format == formats::Format::F32;
        const float *rowsF32[kPanelWidth];
        for (int64_t k0 = 0; k0 < K; k0 += kPanelDepth) {
          const int64_t kc = std::min<int64_t>(kPanelDepth, K - k0);
          for (int j = 0; j < cols; ++j) {
            if (direct) {
              // f32 rows are transposed straight from the weights.
              rowsF32[j] = reinterpret_cast<const float *>(
                               w.data + (n0 + j) * w.rowBytes) +
                           k0;
            } else {
              decodeSpan(w, n0 + j, k0, kc, tile + j * kc);
              rowsF32[j] = tile + j * kc;
            }
          }
          for (int j = cols; j < kPanelWidth; ++j)
            rowsF32[j] = kZeros;
          kernels::transposeToPanel(rowsF32, kc, panel);
          kernels::panelMatmul(x + k0, K, rows, panel, kPanelWidth, kc, y + n0,
                               ldy, cols, /*accumulate=*/k0 > 0);
        }
      },
      /*parallel=*/rows * N * K >= kMinParallelWork);
}

} // namespace lowbit::exec::ops
