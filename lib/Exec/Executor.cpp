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

#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowbit::exec {

namespace {

std::vector<float> decodeVector(const WeightRef &w) {
  std::vector<float> v(w.cols);
  ops::decodeSpan(w, 0, 0, w.cols, v.data());
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
  e->activationFormat_ = options.activationFormat;

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
  e->rope_.headDim = m.headDim;
  e->rope_.ropeDims = m.ropeDims;
  e->rope_.freqBase = m.ropeFreqBase;
  e->rope_.freqScale = m.ropeFreqScale;
  e->rope_.mode = m.ropeMode;
  if (!e->cache_.allocate(m.blockCount, e->ctx_, m.headCountKV, m.headDim,
                          err))
    return nullptr;
  try {
    e->x_.resize(B * d);
    e->xn_.resize(B * std::max(d, hq));
    e->q_.resize(B * hq);
    e->k_.resize(B * hkv);
    e->v_.resize(B * hkv);
    e->attn_.resize(B * hq);
    e->gate_.resize(B * ff);
    e->up_.resize(B * ff);
    e->tmp_.resize(B * d);
    // Decode tiles for matmuls; Q, O and scores of a query block for
    // attention.
    const size_t perThread = std::max(
        ops::matmulScratchFloats(),
        ops::attentionScratchFloats(m.headCount, m.headCountKV, m.headDim,
                                    e->ctx_));
    e->scratch_.assign(e->pool_->size(), std::vector<float>(perThread));
  } catch (const std::bad_alloc &) {
    err = "out of memory allocating the activation buffers; use a smaller "
          "context or batch";
    return nullptr;
  }
  return e;
}

// y[rows, N] = x[rows, K] * W[N, K]^T, weights decoded to f32 on the fly.
void Executor::matmul(const WeightRef &w, const std::string &name,
                      const float *x, int64_t rows, float *y) {
  if (observer_)
    observer_(name, x, rows, w.cols);
  formats::Format act =
      activationFormat_ ? activationFormat_(w.format) : formats::Format::F32;
  if (act == formats::Format::Q8_0 && formats::isScaledIntegerBlock(w.format) &&
      w.cols % 32 == 0) {
    blockIntegerMatmul(w, x, rows, y);
    return;
  }
  if (act != formats::Format::F32 && w.cols % formats::info(act).blockSize == 0)
    x = roundActivations(act, x, rows, w.cols);
  ops::matmulDecoded(*pool_, scratch_, w, x, rows, y);
}

// Quantizes x[rows, cols] to `format` and decodes it again, row by row on the
// pool (quantizing a row is independent of every other row, so the result does
// not depend on the thread count).
const float *Executor::roundActivations(formats::Format format, const float *x,
                                        int64_t rows, int64_t cols) {
  const int64_t rowBytes = formats::rowBytes(formats::info(format), cols);
  xRounded_.resize(std::max<size_t>(xRounded_.size(), rows * cols));
  xQuantized_.resize(std::max<size_t>(xQuantized_.size(), rows * rowBytes));
  pool_->run(rows, [&](int64_t r, int) {
    uint8_t *q = xQuantized_.data() + r * rowBytes;
    float *out = xRounded_.data() + r * cols;
    // A non-finite activation cannot be encoded; it passes through unchanged
    // so that the logits show it, as they would without the round trip.
    if (formats::quantizeRow(format, x + r * cols, q, cols, nullptr))
      formats::dequantizeRow(format, q, out, cols);
    else
      std::memcpy(out, x + r * cols, cols * sizeof(float));
  });
  return xRounded_.data();
}

// y[t, r] for 32-weight blocks of d * integer codes against Q8_0 inputs, in
// the order the native one-token kernels use: per output, blocks in order,
// acc = fma(float(sum of code products), d_w * d_x, acc) from acc = 0. The
// integer sums are exact, so the result is bit-identical to such a kernel.
void Executor::blockIntegerMatmul(const WeightRef &w, const float *x,
                                  int64_t rows, float *y) {
  const int64_t k = w.cols, n = w.rows, blocks = k / 32;
  const int64_t actRow = formats::rowBytes(formats::info(formats::Format::Q8_0), k);
  const int64_t wRow = static_cast<int64_t>(w.rowBytes);
  const int64_t wBlock = formats::info(w.format).blockBytes;
  xQuantized_.resize(std::max<size_t>(xQuantized_.size(), rows * actRow));
  // Activation codes and scales, one block of 32 at a time.
  std::vector<int32_t> xCodes(rows * k);
  std::vector<float> xScales(rows * blocks);
  pool_->run(rows, [&](int64_t t, int) {
    uint8_t *q = xQuantized_.data() + t * actRow;
    if (!formats::quantizeRow(formats::Format::Q8_0, x + t * k, q, k, nullptr)) {
      std::memset(q, 0, actRow); // non-finite input: the logits show it anyway
    }
    for (int64_t b = 0; b < blocks; ++b)
      xScales[t * blocks + b] = formats::splitScaledIntegerBlock(
          formats::Format::Q8_0, q + b * 34, &xCodes[t * k + b * 32]);
  });
  const uint8_t *base = w.data;
  const int64_t perTask = 16;
  pool_->run((n + perTask - 1) / perTask, [&](int64_t task, int) {
    int32_t codes[32];
    std::vector<float> acc(rows);
    for (int64_t r = task * perTask; r < std::min(n, (task + 1) * perTask);
         ++r) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b = 0; b < blocks; ++b) {
        const float dw = formats::splitScaledIntegerBlock(
            w.format, base + r * wRow + b * wBlock, codes);
        for (int64_t t = 0; t < rows; ++t) {
          const int32_t *xc = &xCodes[t * k + b * 32];
          int32_t sum = 0;
          for (int j = 0; j < 32; ++j)
            sum += codes[j] * xc[j];
          acc[t] = std::fma(static_cast<float>(sum),
                            dw * xScales[t * blocks + b], acc[t]);
        }
      }
      for (int64_t t = 0; t < rows; ++t)
        y[t * n + r] = acc[t];
    }
  });
}

void Executor::rmsNorm(const float *x, const std::vector<float> &weight,
                       int64_t rows, float *y) {
  ops::rmsNorm(*pool_, x, weight.data(), rows, model_.embeddingLength,
               model_.rmsNormEps, y);
}

void Executor::parallelFor(int64_t count,
                           const std::function<void(int64_t, int)> &fn) {
  pool_->run(count, fn);
}

bool Executor::evalBatch(const int32_t *tokens, int64_t n, int64_t pos,
                         float *logits, int64_t firstOutput) {
  const ModelDesc &m = model_;
  const int64_t d = m.embeddingLength, hq = m.headCount * m.headDim,
                hkv = m.headCountKV * m.headDim, ff = m.feedForwardLength;

  for (int64_t i = 0; i < n; ++i)
    ops::decodeSpan(*embed_, tokens[i], 0, d, x_.data() + i * d);

  for (int64_t l = 0; l < m.blockCount; ++l) {
    const Layer &L = layers_[l];
    rmsNorm(x_.data(), L.attnNorm, n, xn_.data());
    matmul(*L.q, L.qName, xn_.data(), n, q_.data());
    matmul(*L.k, L.kName, xn_.data(), n, k_.data());
    matmul(*L.v, L.vName, xn_.data(), n, v_.data());
    ops::rope(rope_, q_.data(), n, m.headCount, pos);
    ops::rope(rope_, k_.data(), n, m.headCountKV, pos);
    cache_.store(l, pos, n, k_.data(), hkv, v_.data(), hkv);
    ops::attention(*pool_, scratch_, cache_, l, q_.data(), hq, n, pos,
                   m.headCount, attn_.data(), hq);
    matmul(*L.o, L.oName, attn_.data(), n, tmp_.data());
    for (int64_t i = 0; i < n * d; ++i)
      x_[i] += tmp_[i];

    rmsNorm(x_.data(), L.ffnNorm, n, xn_.data());
    matmul(*L.gate, L.gateName, xn_.data(), n, gate_.data());
    matmul(*L.up, L.upName, xn_.data(), n, up_.data());
    ops::swiglu(*pool_, gate_.data(), ff, up_.data(), ff, gate_.data(), ff, n,
                ff);
    matmul(*L.down, L.downName, gate_.data(), n, tmp_.data());
    for (int64_t i = 0; i < n * d; ++i)
      x_[i] += tmp_[i];
  }

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
