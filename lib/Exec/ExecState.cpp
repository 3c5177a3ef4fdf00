//===- ExecState.cpp - The op library and the state it runs on ------------===//
//
// One function per op kind (the lb_runtime_api the generated `lb_forward`
// calls, and the executor's interpreter loop), each following the ggml CPU
// op llama.cpp uses for it, including their rounding choices where they
// matter: RMSNorm sums squares in double, softmax sums exponentials in
// double, RoPE angles are built by repeated multiplication in float like
// ggml_rope_cache_init. The KV cache is f32 (llama.cpp defaults to f16).
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/Program.h"

#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"
#include "lowbit/Support/Memory.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace lowbit::exec {

namespace {

/// out[i] = f(a[i], b[i]) over `rows` rows of `width`, split by rows.
template <typename Fn>
void elementwise(ThreadPool &pool, int64_t rows, int64_t width, Fn fn) {
  if (rows * width < ops::kMinParallelWork / 8) {
    // Too small to wake the workers (one token's residual add): no task
    // machinery at all.
    for (int64_t i = 0, e = rows * width; i < e; ++i)
      fn(i);
    return;
  }
  pool.run(
      rows,
      [&](int64_t r, int) {
        for (int64_t i = r * width, e = (r + 1) * width; i < e; ++i)
          fn(i);
      },
      /*parallel=*/rows * width >= ops::kMinParallelWork / 8);
}

} // namespace

//===----------------------------------------------------------------------===//
// State
//===----------------------------------------------------------------------===//

ExecState::~ExecState() = default;

std::unique_ptr<ExecState> ExecState::create(ProgramShape shape,
                                             const ExecOptions &options,
                                             std::string &err) {
  std::unique_ptr<ExecState> s(new ExecState());
  s->shape_ = std::move(shape);
  const ProgramShape &p = s->shape_;
  s->ctx_ = options.contextSize > 0 ? options.contextSize : p.cache.context;
  if (s->ctx_ <= 0) {
    err = "no context size: the model's KV cache has no length, pass one";
    return nullptr;
  }
  s->batch_ = std::max<int64_t>(1, std::min(options.batchSize, s->ctx_));
  // Before allocating anything: the KV cache (keys and values, f32) and at
  // least two activations of the widest value must fit in the machine.
  const double kvBytes = 2.0 * double(p.cache.layers) * double(s->ctx_) *
                         double(p.cache.kvHeads) * double(p.cache.headDim) *
                         sizeof(float);
  int64_t widest = 0;
  for (int64_t w : p.valueWidth)
    widest = std::max(widest, w);
  const double activationBytes =
      2.0 * double(s->batch_) * double(widest) * sizeof(float);
  if (!fitsInMemory(kvBytes,
                    "a KV cache of " + std::to_string(s->ctx_) + " positions",
                    err)) {
    err += "; use a smaller context";
    return nullptr;
  }
  if (!fitsInMemory(kvBytes + activationBytes,
                    "the KV cache and activations of " +
                        std::to_string(s->batch_) + " tokens",
                    err)) {
    err += "; use a smaller context or batch";
    return nullptr;
  }
  s->pool_ = std::make_unique<ThreadPool>(options.threads);
  s->activationFormat_ = options.activationFormat;
  s->backend_ = options.backend;
  const size_t nWeights = p.weightNames.size();
  s->vectors_.resize(nWeights);
  s->handles_.assign(nWeights, -2);
  s->backendRows_.assign(nWeights, -1);
  if (p.cache.layers > 0 &&
      !s->cache_.allocate(p.cache.layers, s->ctx_, p.cache.kvHeads,
                          p.cache.headDim, err))
    return nullptr;
  try {
    s->buffers_.resize(p.bufferWidth.size());
    for (size_t b = 0; b < p.bufferWidth.size(); ++b)
      s->buffers_[b].resize(static_cast<size_t>(s->batch_ * p.bufferWidth[b]));
    size_t perThread = ops::matmulScratchFloats();
    if (p.maxAttentionHeads > 0 && p.cache.kvHeads > 0)
      perThread = std::max(
          perThread, ops::attentionScratchFloats(p.maxAttentionHeads,
                                                 p.cache.kvHeads,
                                                 p.cache.headDim, s->ctx_));
    s->scratch_.assign(s->pool_->size(), std::vector<float>(perThread));
  } catch (const std::bad_alloc &) {
    err = "out of memory allocating the activation buffers; use a smaller "
          "context or batch";
    return nullptr;
  }
  return s;
}

void ExecState::beginPass(const int32_t *tokens, int64_t n, int64_t pos,
                          int64_t firstOutput) {
  tokens_ = tokens;
  n_ = n;
  pos_ = pos;
  firstOutput_ = firstOutput;
  ++passes_;
}

bool ExecState::eval(const int32_t *tokens, int64_t n, int64_t pos,
                     std::vector<float> &logits, int64_t firstOutput,
                     std::string &err, const std::function<void()> &pass) {
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
  const int64_t V = vocabSize();
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V) {
      err = "token id " + std::to_string(tokens[i]) + " outside the " +
            std::to_string(V) + "-token vocabulary";
      return false;
    }
  logits.resize(static_cast<size_t>(n - firstOutput) * V);
  for (int64_t s = 0; s < n; s += batch_) {
    const int64_t e = std::min(n, s + batch_);
    const int64_t first = std::min(std::max(firstOutput, s), e) - s;
    beginPass(tokens + s, e - s, pos + s, first);
    pass();
    rethrowFailure();
    cached_ = pos + e;
    if (first < e - s) {
      // The head ran on rows [first, e - s) only, unless the result was
      // computed before it.
      const float *src =
          value(shape_.result) + (shape_.resultInHead ? 0 : first * V);
      std::memcpy(logits.data() + (s + first - firstOutput) * V, src,
                  (e - s - first) * V * sizeof(float));
    }
  }
  if (n == 0)
    cached_ = pos;
  return true;
}

void ExecState::rethrowFailure() {
  if (std::exception_ptr e = std::exchange(failure_, nullptr))
    std::rethrow_exception(e);
}

const WeightRef &ExecState::weight(int32_t index) const {
  return *shape_.weights[index];
}

const float *ExecState::vector(int32_t index) {
  if (index < 0)
    return nullptr;
  std::vector<float> &v = vectors_[index];
  if (v.empty()) {
    const WeightRef &w = weight(index);
    v.resize(w.cols);
    ops::decodeSpan(w, 0, 0, w.cols, v.data());
  }
  return v.data();
}

int ExecState::handle(int32_t index) {
  if (handles_[index] == -2)
    handles_[index] =
        backend_ ? backend_->bind(shape_.weightNames[index]) : -1;
  return handles_[index];
}

bool ExecState::backendRows(int32_t index) {
  if (backendRows_[index] < 0)
    backendRows_[index] =
        backend_ && backend_->decodesRows(shape_.weightNames[index]) ? 1 : 0;
  return backendRows_[index] == 1;
}

// y[rows, N] = x[rows, K] * W[N, K]^T: on the backend's kernel, or with the
// weights decoded to f32 on the fly.
void ExecState::matmul(const lb_op &op, int32_t weightIndex, const float *x,
                       int64_t rows, float *y) {
  const WeightRef &w = weight(weightIndex);
  if (observer_)
    observer_(shape_.weightNames[weightIndex], 0, 1, x, rows, w.cols);
  const int h = handle(weightIndex);
  if (h >= 0) {
    const uint64_t inputKey =
        (passes_ << 32) | static_cast<uint32_t>(op.inputs[0]);
    backend_->matmul(h, x, rows, y, inputKey, *pool_);
    return;
  }
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
const float *ExecState::roundActivations(formats::Format format,
                                         const float *x, int64_t rows,
                                         int64_t cols) {
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
void ExecState::blockIntegerMatmul(const WeightRef &w, const float *x,
                                   int64_t rows, float *y) {
  const int64_t k = w.cols, n = w.rows, blocks = k / 32;
  const int64_t actRow =
      formats::rowBytes(formats::info(formats::Format::Q8_0), k);
  const int64_t wRow = static_cast<int64_t>(w.rowBytes);
  const int64_t wBlock = formats::info(w.format).blockBytes;
  xQuantized_.resize(std::max<size_t>(xQuantized_.size(), rows * actRow));
  // Activation codes and scales, one block of 32 at a time.
  std::vector<int32_t> xCodes(rows * k);
  std::vector<float> xScales(rows * blocks);
  pool_->run(rows, [&](int64_t t, int) {
    uint8_t *q = xQuantized_.data() + t * actRow;
    if (!formats::quantizeRow(formats::Format::Q8_0, x + t * k, q, k,
                              nullptr)) {
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

// llama.cpp's build_moe_ffn: softmax over the router's logits, the top_k
// experts by probability (ties: lower index), weights optionally divided by
// their sum, each chosen expert's SwiGLU FFN, the weighted outputs summed in
// the order the experts were chosen; then the shared expert, scaled by
// sigmoid(x . gate_inp). Tokens are grouped by expert so that each expert's
// matrices are decoded once per pass.
void ExecState::moeFFN(const lb_op &op, const float *x, int64_t rows,
                       float *y) {
  const WeightRef &router = weight(op.weight);
  const int64_t d = router.cols, e = router.rows, k = op.top_k;
  const std::vector<std::string> &names = shape_.weightNames;
  std::vector<float> probs(static_cast<size_t>(rows * e));
  if (observer_)
    observer_(names[op.weight], 0, 1, x, rows, d);
  ops::matmulDecoded(*pool_, scratch_, router, x, rows, probs.data());
  ops::softmax(*pool_, probs.data(), probs.data(), rows, e);
  std::vector<int32_t> chosen(static_cast<size_t>(rows * k));
  std::vector<float> weights(static_cast<size_t>(rows * k));
  std::vector<int32_t> order(static_cast<size_t>(e));
  for (int64_t t = 0; t < rows; ++t) {
    const float *p = probs.data() + t * e;
    for (int64_t i = 0; i < e; ++i)
      order[i] = static_cast<int32_t>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) {
      chosen[t * k + j] = order[j];
      weights[t * k + j] = p[order[j]];
      sum += p[order[j]];
    }
    if (op.flags & LB_OP_NORMALIZE)
      for (int64_t j = 0; j < k; ++j)
        weights[t * k + j] /= static_cast<float>(sum);
  }

  const WeightRef &gate = weight(op.experts[0]);
  const WeightRef &up = weight(op.experts[1]);
  const WeightRef &down = weight(op.experts[2]);
  const int64_t f = gate.rows / e;
  auto slice = [](const WeightRef &w, int64_t rowsPer, int64_t index) {
    WeightRef r = w;
    r.rows = rowsPer;
    r.data = w.data + static_cast<uint64_t>(index * rowsPer) * w.rowBytes;
    return r;
  };
  // down(silu(gate x) * (up x)) for m rows of x into out, with matrix
  // `expert` of `experts` of the named weights: on the backend's kernels
  // for the routed experts it bound, else decoded to f32.
  std::vector<float> g, u;
  const std::array<int, 3> handles = {handle(op.experts[0]),
                                      handle(op.experts[1]),
                                      handle(op.experts[2])};
  auto multiply = [&](int which, int64_t expert, int64_t experts,
                      const WeightRef &w, const float *xin, int64_t m,
                      float *out, uint64_t inputKey) {
    if (experts > 1 && handles[which] >= 0)
      backend_->matmulRows(handles[which], expert * w.rows, w.rows, xin, m,
                           out, inputKey, *pool_);
    else
      ops::matmulDecoded(*pool_, scratch_, w, xin, m, out);
  };
  auto swigluFFN = [&](const WeightRef &gateW, const WeightRef &upW,
                       const WeightRef &downW, const int32_t *which,
                       int64_t expert, int64_t experts, const float *xin,
                       int64_t m, float *result) {
    const int64_t ff = gateW.rows;
    g.resize(static_cast<size_t>(m * ff));
    u.resize(static_cast<size_t>(m * ff));
    if (observer_) {
      observer_(names[which[0]], expert, experts, xin, m, gateW.cols);
      observer_(names[which[1]], expert, experts, xin, m, upW.cols);
    }
    // Keys for the backend's reuse of a quantized input: gate and up read
    // the same rows; values above 2^31 are never graph values.
    const uint64_t key = (passes_ << 32) | 0x80000000u |
                         static_cast<uint32_t>(2 * expert);
    multiply(0, expert, experts, gateW, xin, m, g.data(), key);
    multiply(1, expert, experts, upW, xin, m, u.data(), key);
    ops::swiglu(*pool_, g.data(), ff, u.data(), ff, g.data(), ff, m, ff);
    if (observer_)
      observer_(names[which[2]], expert, experts, g.data(), m, ff);
    multiply(2, expert, experts, downW, g.data(), m, result, key + 1);
  };
  // Output of every (token, choice), then summed in choice order.
  std::vector<float> perChoice(static_cast<size_t>(rows * k * d));
  std::vector<float> xs, out;
  std::vector<int64_t> slots;
  for (int64_t ex = 0; ex < e; ++ex) {
    slots.clear();
    for (int64_t s = 0; s < rows * k; ++s)
      if (chosen[s] == ex)
        slots.push_back(s);
    if (slots.empty())
      continue;
    const int64_t m = static_cast<int64_t>(slots.size());
    xs.resize(static_cast<size_t>(m * d));
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(xs.data() + i * d, x + (slots[i] / k) * d, d * sizeof(float));
    out.resize(static_cast<size_t>(m * d));
    swigluFFN(slice(gate, f, ex), slice(up, f, ex), slice(down, d, ex),
              op.experts, ex, e, xs.data(), m, out.data());
    for (int64_t i = 0; i < m; ++i) {
      const float wgt = weights[slots[i]];
      float *dst = perChoice.data() + slots[i] * d;
      const float *src = out.data() + i * d;
      for (int64_t c = 0; c < d; ++c)
        dst[c] = src[c] * wgt;
    }
  }
  for (int64_t t = 0; t < rows; ++t) {
    float *yt = y + t * d;
    const float *first = perChoice.data() + t * k * d;
    std::memcpy(yt, first, d * sizeof(float));
    for (int64_t j = 1; j < k; ++j) {
      const float *o = first + j * d;
      for (int64_t c = 0; c < d; ++c)
        yt[c] += o[c];
    }
  }

  if (op.num_experts == 7) {
    const WeightRef &sg = weight(op.experts[3]);
    const WeightRef &su = weight(op.experts[4]);
    const WeightRef &sd = weight(op.experts[5]);
    const WeightRef &si = weight(op.experts[6]);
    out.resize(static_cast<size_t>(rows * d));
    std::vector<float> gateLogit(static_cast<size_t>(rows));
    swigluFFN(sg, su, sd, op.experts + 3, 0, 1, x, rows, out.data());
    if (observer_)
      observer_(names[op.experts[6]], 0, 1, x, rows, d);
    ops::matmulDecoded(*pool_, scratch_, si, x, rows, gateLogit.data());
    for (int64_t t = 0; t < rows; ++t) {
      const float s = 1.0f / (1.0f + std::exp(-gateLogit[t]));
      for (int64_t c = 0; c < d; ++c)
        y[t * d + c] += out[t * d + c] * s;
    }
  }
}

//===----------------------------------------------------------------------===//
// The op library
//===----------------------------------------------------------------------===//

/// The op functions. Each runs one op on the rows of the current pass: all
/// of them, or in the output head (LB_OP_IN_HEAD) the wanted ones, reading
/// inputs computed before the head from the first wanted row on.
struct OpLibrary {
  struct Call {
    ExecState &s;
    const lb_op &op;
    int64_t rows = 0, rowOffset = 0;

    Call(lb_exec *exec, const lb_op *record)
        : s(ExecState::of(exec)), op(*record) {
      const bool head = op.flags & LB_OP_IN_HEAD;
      rows = head ? s.n_ - s.firstOutput_ : s.n_;
      rowOffset = head ? s.firstOutput_ : 0;
    }
    const float *in(int k) const {
      const int32_t v = op.inputs[k];
      const bool before = op.inputs_before_head & (1u << k);
      return s.value(v) + (before ? rowOffset * s.width(v) : 0);
    }
    float *out(int k) const { return s.value(op.outputs[k]); }
    int64_t width() const { return s.width(op.outputs[0]); }
    ThreadPool &pool() const { return *s.pool_; }
  };

  static void embedding(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const int64_t width = c.width();
    float *y = c.out(0);
    const bool rows = c.s.backendRows(c.op.weight);
    const WeightRef &w = c.s.weight(c.op.weight);
    for (int64_t t = 0; t < c.rows; ++t) {
      const int32_t token = c.s.tokens_[t];
      if (rows)
        c.s.backend_->decodeRow(c.s.shape_.weightNames[c.op.weight], token,
                                y + t * width);
      else
        ops::decodeSpan(w, token, 0, width, y + t * width);
    }
  }

  static void matmul(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const int64_t width = c.width();
    float *y = c.out(0);
    c.s.matmul(c.op, c.op.weight, c.in(0), c.rows, y);
    if (c.op.bias >= 0) {
      const float *b = c.s.vector(c.op.bias);
      elementwise(c.pool(), c.rows, width,
                  [&](int64_t e) { y[e] += b[e % width]; });
    }
    if (c.op.kind == LB_OP_MATMUL_RESIDUAL) {
      const float *r = c.in(1);
      elementwise(c.pool(), c.rows, width,
                  [&](int64_t e) { y[e] = r[e] + y[e]; });
    }
  }

  static void rmsNorm(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    // With a group, each group of a row is normalised as a row of its own.
    const int64_t width = c.width();
    const int64_t group = c.op.group > 0 ? c.op.group : width;
    ops::rmsNorm(c.pool(), c.in(0), c.s.vector(c.op.weight),
                 c.rows * (width / group), group, c.op.epsilon, c.out(0));
  }

  static void layerNorm(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    ops::layerNorm(c.pool(), c.in(0), c.s.vector(c.op.weight),
                   c.s.vector(c.op.bias), c.rows, c.width(), c.op.epsilon,
                   c.out(0));
  }

  static void rope(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    float *y = c.out(0);
    if (y != c.in(0))
      std::memcpy(y, c.in(0), c.rows * c.width() * sizeof(float));
    const lb_op &op = c.op;
    ops::RopeParams p;
    p.headDim = op.head_dim;
    p.ropeDims = op.rope_dims;
    p.freqBase = op.theta;
    p.freqScale = op.freq_scale;
    p.extFactor = op.ext_factor;
    p.attnFactor = op.attn_factor;
    p.originalContext = op.original_context;
    p.betaFast = op.beta_fast;
    p.betaSlow = op.beta_slow;
    p.mode = op.flags & LB_OP_ROPE_NEOX ? RopeMode::NeoX : RopeMode::Normal;
    // LongRoPE: the long factors when the run's context exceeds the
    // original one (as llama.cpp chooses them, by n_ctx > n_ctx_orig_yarn).
    const int32_t factors =
        op.long_weight >= 0 && c.s.ctx_ > op.original_context
            ? op.long_weight
            : op.weight;
    p.freqFactors = c.s.vector(factors);
    ops::rope(p, y, c.rows, op.heads, c.s.pos_ + c.rowOffset);
  }

  static void attention(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const int64_t kv = c.s.width(c.op.inputs[1]);
    const int64_t width = c.width();
    c.s.cache_.store(c.op.cache_layer, c.s.pos_, c.rows, c.in(1), kv, c.in(2),
                     kv);
    ops::attention(c.pool(), c.s.scratch_, c.s.cache_, c.op.cache_layer,
                   c.in(0), width, c.rows, c.s.pos_, c.op.heads, c.out(0),
                   width, c.op.scale, c.op.window, c.op.softcap);
  }

  static void add(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *a = c.in(0), *b = c.in(1);
    float *y = c.out(0);
    elementwise(c.pool(), c.rows, c.width(),
                [&](int64_t e) { y[e] = a[e] + b[e]; });
  }

  static void mul(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *a = c.in(0), *b = c.in(1);
    float *y = c.out(0);
    elementwise(c.pool(), c.rows, c.width(),
                [&](int64_t e) { y[e] = a[e] * b[e]; });
  }

  static void silu(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *a = c.in(0);
    float *y = c.out(0);
    elementwise(c.pool(), c.rows, c.width(),
                [&](int64_t e) { y[e] = a[e] / (1.0f + std::exp(-a[e])); });
  }

  static void gelu(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    ops::gelu(c.pool(), c.in(0), c.out(0), c.rows * c.width());
  }

  static void softmax(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    ops::softmax(c.pool(), c.in(0), c.out(0), c.rows, c.width());
  }

  static void swiglu(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const int64_t width = c.width();
    ops::swiglu(c.pool(), c.in(0), width, c.in(1), width, c.out(0), width,
                c.rows, width);
  }

  static void split(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *x = c.in(0);
    const int64_t inWidth = c.s.width(c.op.inputs[0]);
    int64_t col = 0;
    for (int32_t k = 0; k < c.op.num_outputs; ++k) {
      float *y = c.out(k);
      const int64_t cols = c.op.sizes[k];
      for (int64_t t = 0; t < c.rows; ++t)
        std::memcpy(y + t * cols, x + t * inWidth + col, cols * sizeof(float));
      col += cols;
    }
  }

  static void scale(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *a = c.in(0);
    float *y = c.out(0);
    const float factor = c.op.scale;
    elementwise(c.pool(), c.rows, c.width(),
                [&](int64_t e) { y[e] = a[e] * factor; });
  }

  static void moeFFN(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    c.s.moeFFN(c.op, c.in(0), c.rows, c.out(0));
  }

  static void softcap(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    const float *a = c.in(0);
    float *y = c.out(0);
    const float cap = c.op.scale;
    elementwise(c.pool(), c.rows, c.width(),
                [&](int64_t e) { y[e] = cap * std::tanh(a[e] / cap); });
  }

  static void boundary(lb_exec *exec, const lb_op *record) {
    Call c(exec, record);
    if (c.rows <= 0)
      return;
    if (c.out(0) != c.in(0))
      std::memcpy(c.out(0), c.in(0), c.rows * c.width() * sizeof(float));
  }

  /// No exception leaves an op function: the caller may be generated code
  /// without unwind tables. The first failure is kept for rethrowFailure()
  /// and the rest of the pass does nothing.
  template <void (*Fn)(lb_exec *, const lb_op *)>
  static void guarded(lb_exec *exec, const lb_op *record) {
    ExecState &s = ExecState::of(exec);
    if (s.failure_)
      return;
    try {
      Fn(exec, record);
    } catch (...) {
      s.failure_ = std::current_exception();
    }
  }

  static lb_runtime_api table() {
    lb_runtime_api api = {};
    api.abi_version = LB_KERNEL_ABI_VERSION;
    api.num_ops = LB_OP_KIND_COUNT;
    api.ops[LB_OP_EMBEDDING] = guarded<embedding>;
    api.ops[LB_OP_MATMUL] = guarded<matmul>;
    api.ops[LB_OP_MATMUL_RESIDUAL] = guarded<matmul>;
    api.ops[LB_OP_RMS_NORM] = guarded<rmsNorm>;
    api.ops[LB_OP_LAYER_NORM] = guarded<layerNorm>;
    api.ops[LB_OP_ROPE] = guarded<rope>;
    api.ops[LB_OP_ATTENTION] = guarded<attention>;
    api.ops[LB_OP_ADD] = guarded<add>;
    api.ops[LB_OP_MUL] = guarded<mul>;
    api.ops[LB_OP_SILU] = guarded<silu>;
    api.ops[LB_OP_GELU] = guarded<gelu>;
    api.ops[LB_OP_SOFTMAX] = guarded<softmax>;
    api.ops[LB_OP_SWIGLU] = guarded<swiglu>;
    api.ops[LB_OP_SPLIT] = guarded<split>;
    api.ops[LB_OP_SCALE] = guarded<scale>;
    api.ops[LB_OP_MOE_FFN] = guarded<moeFFN>;
    api.ops[LB_OP_SOFTCAP] = guarded<softcap>;
    api.ops[LB_OP_LAYER_BOUNDARY] = guarded<boundary>;
    return api;
  }
};

const lb_runtime_api &opLibrary() {
  static const lb_runtime_api api = OpLibrary::table();
  return api;
}

} // namespace lowbit::exec
