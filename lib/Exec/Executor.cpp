//===- Executor.cpp - CPU reference executor for llama decoders -----------===//
//
// The forward pass follows llama.cpp's llama graph (llm_build_llama) and the
// ggml CPU ops it uses, including their rounding choices where they matter:
// RMSNorm sums squares in double, softmax sums exponentials in double, RoPE
// angles are built by repeated multiplication in float like
// ggml_rope_cache_init. The KV cache is f32 (llama.cpp defaults to f16).
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/Executor.h"

#include "Kernels.h"
#include "lowbit/Exec/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::exec {

using kernels::kPanelDepth;
using kernels::kPanelWidth;

/// Queries per attention task.
constexpr int64_t kQueryBlock = 16;
/// Multiply-adds below which an op runs on the calling thread only: waking
/// the workers costs more than it saves.
constexpr int64_t kMinParallelWork = 1 << 17;

namespace {

/// Decodes columns [k0, k0 + kc) of one weight row; kc and k0 are multiples
/// of the format's block size.
inline void decodeSpan(const WeightRef &w, int64_t row, int64_t k0, int64_t kc,
                       float *dst) {
  const formats::FormatInfo &fi = formats::info(w.format);
  const uint8_t *src = w.data + static_cast<uint64_t>(row) * w.rowBytes +
                       static_cast<uint64_t>(k0 / fi.blockSize) * fi.blockBytes;
  if (w.format == formats::Format::F32)
    std::memcpy(dst, src, kc * sizeof(float));
  else
    formats::dequantizeRow(w.format, src, dst, kc);
}

std::vector<float> decodeVector(const WeightRef &w) {
  std::vector<float> v(w.cols);
  decodeSpan(w, 0, 0, w.cols, v.data());
  return v;
}

} // namespace

Executor::~Executor() = default;

int Executor::threads() const { return pool_->size(); }

std::unique_ptr<Executor> Executor::create(const ModelDesc &model,
                                           const ExecOptions &options,
                                           std::string &err) {
  if (!model.validate(err))
    return nullptr;
  std::unique_ptr<Executor> e(new Executor());
  e->model_ = model;
  const ModelDesc &m = e->model_;
  e->ctx_ = options.contextSize > 0 ? options.contextSize : m.contextLength;
  if (e->ctx_ <= 0) {
    err = "no context size: the model has no context_length, pass one";
    return nullptr;
  }
  e->batch_ = std::max<int64_t>(1, std::min(options.batchSize, e->ctx_));
  e->pool_ = std::make_unique<ThreadPool>(options.threads);

  e->embed_ = m.find("token_embd.weight");
  e->output_ = m.tiedOutput() ? e->embed_ : m.find("output.weight");
  e->outputName_ = m.tiedOutput() ? "token_embd.weight" : "output.weight";
  e->outputNorm_ = decodeVector(*m.find("output_norm.weight"));
  for (int64_t l = 0; l < m.blockCount; ++l) {
    Layer L;
    auto get = [&](const char *what, const WeightRef *&ref, std::string &name) {
      name = layerWeightName(l, what);
      ref = m.find(name);
    };
    get("attn_q", L.q, L.qName);
    get("attn_k", L.k, L.kName);
    get("attn_v", L.v, L.vName);
    get("attn_output", L.o, L.oName);
    get("ffn_gate", L.gate, L.gateName);
    get("ffn_up", L.up, L.upName);
    get("ffn_down", L.down, L.downName);
    L.attnNorm = decodeVector(*m.find(layerWeightName(l, "attn_norm")));
    L.ffnNorm = decodeVector(*m.find(layerWeightName(l, "ffn_norm")));
    e->layers_.push_back(std::move(L));
  }

  const int64_t d = m.embeddingLength, hq = m.headCount * m.headDim,
                hkv = m.headCountKV * m.headDim, ff = m.feedForwardLength,
                B = e->batch_;
  const size_t cache = static_cast<size_t>(m.blockCount) * e->ctx_ * hkv;
  try {
    // Padding: attention panels read up to 16 keys past the end.
    e->keysT_.assign(cache + kPanelWidth, 0.0f);
    e->values_.assign(cache + kPanelWidth * hkv, 0.0f);
    e->x_.resize(B * d);
    e->xn_.resize(B * std::max(d, hq));
    e->q_.resize(B * hq);
    e->k_.resize(B * hkv);
    e->v_.resize(B * hkv);
    e->attn_.resize(B * hq);
    e->gate_.resize(B * ff);
    e->up_.resize(B * ff);
    e->tmp_.resize(B * d);
    // Decode tile + transposed panel for matmuls; Q, O and scores of a
    // query block for attention.
    const int64_t rows = kQueryBlock * (m.headCount / m.headCountKV);
    const size_t perThread = std::max<size_t>(2 * kPanelWidth * kPanelDepth,
                                              rows * (2 * m.headDim + e->ctx_));
    e->zeros_.assign(kPanelDepth, 0.0f);
    e->scratch_.assign(e->pool_->size(), std::vector<float>(perThread));
  } catch (const std::bad_alloc &) {
    err = "out of memory allocating the KV cache (" +
          std::to_string(2 * cache * sizeof(float) >> 20) +
          " MiB) and buffers; use a smaller context";
    return nullptr;
  }
  return e;
}

// y[rows, N] = x[rows, K] * W[N, K]^T. Tasks are panels of 16 weight rows;
// each decodes its rows kPanelDepth columns at a time, transposes them and
// streams every x row over the panel.
void Executor::matmul(const WeightRef &w, const std::string &name,
                      const float *x, int64_t rows, float *y) {
  if (observer_)
    observer_(name, x, rows, w.cols);
  const int64_t N = w.rows, K = w.cols;
  const int64_t tasks = (N + kPanelWidth - 1) / kPanelWidth;
  pool_->run(
      tasks,
      [&](int64_t task, int thread) {
        float *tile = scratch_[thread].data();
        float *panel = tile + kPanelWidth * kPanelDepth;
        const float *zeros = zeros_.data();
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
            rowsF32[j] = zeros;
          kernels::transposeToPanel(rowsF32, kc, panel);
          kernels::panelMatmul(x + k0, K, rows, panel, kPanelWidth, kc, y + n0,
                               N, cols, /*accumulate=*/k0 > 0);
        }
      },
      /*parallel=*/rows * N * K >= kMinParallelWork);
}

void Executor::rmsNorm(const float *x, const std::vector<float> &weight,
                       int64_t rows, float *y) {
  const int64_t d = model_.embeddingLength;
  const float eps = model_.rmsNormEps;
  pool_->run(
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
          yr[i] = (xr[i] * scale) * weight[i];
      },
      /*parallel=*/rows * d >= kMinParallelWork / 8);
}

void Executor::parallelFor(int64_t count,
                           const std::function<void(int64_t, int)> &fn) {
  pool_->run(count, fn);
}

void Executor::rope(float *x, int64_t rows, int64_t heads, int64_t pos) {
  const int64_t hd = model_.headDim, nd = model_.ropeDims;
  const float thetaScale = std::pow(model_.ropeFreqBase, -2.0f / nd);
  std::vector<float> cs(nd);
  for (int64_t r = 0; r < rows; ++r) {
    // ggml_rope_cache_init: theta_i = p * thetaScale^i by repeated products.
    float theta = static_cast<float>(pos + r);
    for (int64_t i = 0; i < nd; i += 2) {
      const float t = model_.ropeFreqScale * theta;
      cs[i] = std::cos(t);
      cs[i + 1] = std::sin(t);
      theta *= thetaScale;
    }
    float *row = x + r * heads * hd;
    for (int64_t h = 0; h < heads; ++h) {
      float *v = row + h * hd;
      if (model_.ropeMode == RopeMode::Normal) {
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

// Causal attention for n queries at positions pos.. against the cache.
// Tasks are (KV head, block of kQueryBlock queries); the query heads sharing
// the KV head are stacked as rows, so scores S = Q K^T and the output P V
// are both panel matmuls: keys are cached transposed ([d][t]) to serve as
// panels directly, values are row-major ([t][d]). Masked (future) keys get
// probability 0, which adds exact zeros to the in-order sums.
void Executor::attention(int64_t layer, int64_t n, int64_t pos) {
  const int64_t hd = model_.headDim, H = model_.headCount,
                Hkv = model_.headCountKV, group = H / Hkv;
  const int64_t hkv = Hkv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  pool_->run(
      Hkv * blocks,
      [&](int64_t task, int thread) {
        const int64_t kvh = task / blocks, i0 = (task % blocks) * kQueryBlock;
        const int64_t i1 = std::min(n, i0 + kQueryBlock);
        const int64_t R = (i1 - i0) * group; // rows: (query, head in group)
        const int64_t T = pos + i1;          // keys any row of the block sees
        float *Q = scratch_[thread].data();
        float *O = Q + R * hd;
        float *S = O + R * hd;
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t g = 0; g < group; ++g)
            std::memcpy(Q + ((i - i0) * group + g) * hd,
                        q_.data() + i * H * hd + (kvh * group + g) * hd,
                        hd * sizeof(float));

        const float *Kt = keysT_.data() + (layer * Hkv + kvh) * hd * ctx_;
        for (int64_t t0 = 0; t0 < T; t0 += kPanelWidth)
          kernels::panelMatmul(
              Q, hd, R, Kt + t0, ctx_, hd, S + t0, T,
              static_cast<int>(std::min<int64_t>(kPanelWidth, T - t0)),
              /*accumulate=*/false);
        for (int64_t r = 0; r < R; ++r) {
          float *sr = S + r * T;
          const int64_t visible = pos + i0 + r / group + 1;
          float mx = -INFINITY;
          for (int64_t t = 0; t < visible; ++t) {
            sr[t] *= scale;
            mx = std::max(mx, sr[t]);
          }
          double sum = 0.0;
          for (int64_t t = 0; t < visible; ++t) {
            sr[t] = std::exp(sr[t] - mx);
            sum += sr[t];
          }
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t t = 0; t < visible; ++t)
            sr[t] *= inv;
          std::fill(sr + visible, sr + T, 0.0f);
        }

        const float *Vh = values_.data() + layer * ctx_ * hkv + kvh * hd;
        for (int64_t d0 = 0; d0 < hd; d0 += kPanelWidth)
          kernels::panelMatmul(
              S, T, R, Vh + d0, hkv, T, O + d0, hd,
              static_cast<int>(std::min<int64_t>(kPanelWidth, hd - d0)),
              /*accumulate=*/false);
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t g = 0; g < group; ++g)
            std::memcpy(attn_.data() + i * H * hd + (kvh * group + g) * hd,
                        O + ((i - i0) * group + g) * hd, hd * sizeof(float));
      },
      /*parallel=*/2 * n * H * hd * (pos + n) >= kMinParallelWork);
}

bool Executor::evalBatch(const int32_t *tokens, int64_t n, int64_t pos,
                         float *logits, int64_t firstOutput) {
  const ModelDesc &m = model_;
  const int64_t d = m.embeddingLength, hq = m.headCount * m.headDim,
                hkv = m.headCountKV * m.headDim, ff = m.feedForwardLength;

  for (int64_t i = 0; i < n; ++i)
    decodeSpan(*embed_, tokens[i], 0, d, x_.data() + i * d);

  for (int64_t l = 0; l < m.blockCount; ++l) {
    const Layer &L = layers_[l];
    rmsNorm(x_.data(), L.attnNorm, n, xn_.data());
    matmul(*L.q, L.qName, xn_.data(), n, q_.data());
    matmul(*L.k, L.kName, xn_.data(), n, k_.data());
    matmul(*L.v, L.vName, xn_.data(), n, v_.data());
    rope(q_.data(), n, m.headCount, pos);
    rope(k_.data(), n, m.headCountKV, pos);
    // Keys go in transposed ([kv head][d][t]), values as they are.
    const int64_t hd = m.headDim;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < hkv; ++c)
        keysT_[((l * m.headCountKV + c / hd) * hd + c % hd) * ctx_ + pos + i] =
            k_[i * hkv + c];
    std::memcpy(values_.data() + (l * ctx_ + pos) * hkv, v_.data(),
                n * hkv * sizeof(float));
    attention(l, n, pos);
    matmul(*L.o, L.oName, attn_.data(), n, tmp_.data());
    for (int64_t i = 0; i < n * d; ++i)
      x_[i] += tmp_[i];

    rmsNorm(x_.data(), L.ffnNorm, n, xn_.data());
    matmul(*L.gate, L.gateName, xn_.data(), n, gate_.data());
    matmul(*L.up, L.upName, xn_.data(), n, up_.data());
    pool_->run(
        n,
        [&](int64_t r, int) {
          for (int64_t i = r * ff; i < (r + 1) * ff; ++i) {
            const float g = gate_[i];
            gate_[i] = (g / (1.0f + std::exp(-g))) * up_[i]; // SiLU(g) * up
          }
        },
        /*parallel=*/n * ff >= kMinParallelWork / 8);
    matmul(*L.down, L.downName, gate_.data(), n, tmp_.data());
    for (int64_t i = 0; i < n * d; ++i)
      x_[i] += tmp_[i];
  }
  (void)hq;

  const int64_t nOut = n - firstOutput;
  if (nOut > 0) {
    rmsNorm(x_.data() + firstOutput * d, outputNorm_, nOut, xn_.data());
    matmul(*output_, outputName_, xn_.data(), nOut, logits);
  }
  return true;
}

bool Executor::eval(const int32_t *tokens, int64_t n, int64_t pos,
                    std::vector<float> &logits, int64_t firstOutput,
                    std::string &err) {
  if (n < 0 || pos < 0 || firstOutput < 0 || firstOutput > n) {
    err = "invalid eval arguments";
    return false;
  }
  if (pos > cached_) {
    err = "position " + std::to_string(pos) + " is past the " +
          std::to_string(cached_) + " cached tokens";
    return false;
  }
  if (pos + n > ctx_) {
    err = "context full: " + std::to_string(pos + n) + " tokens, context " +
          std::to_string(ctx_);
    return false;
  }
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= model_.vocabSize) {
      err = "token id " + std::to_string(tokens[i]) + " outside the " +
            std::to_string(model_.vocabSize) + "-token vocabulary";
      return false;
    }
  const int64_t V = model_.vocabSize;
  logits.resize(static_cast<size_t>(n - firstOutput) * V);
  for (int64_t s = 0; s < n; s += batch_) {
    const int64_t e = std::min(n, s + batch_);
    const int64_t first = std::max(firstOutput, s);
    float *out = logits.data() + (first - firstOutput) * V;
    if (!evalBatch(tokens + s, e - s, pos + s, first < e ? out : nullptr,
                   std::min(first, e) - s))
      return false;
    cached_ = pos + e;
  }
  if (n == 0)
    cached_ = pos;
  return true;
}

} // namespace lowbit::exec
