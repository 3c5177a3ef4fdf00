//===- Executor.cpp - CPU reference executor: an interpreter of the graph -===//
//
// Each op follows the ggml CPU op llama.cpp uses for it, including their
// rounding choices where they matter: RMSNorm sums squares in double, softmax
// sums exponentials in double, RoPE angles are built by repeated
// multiplication in float like ggml_rope_cache_init. The KV cache is f32
// (llama.cpp defaults to f16).
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/Executor.h"

#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"
#include "lowbit/Support/Memory.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace lowbit::exec {

namespace {

std::vector<float> decodeVector(const WeightRef &w) {
  std::vector<float> v(w.cols);
  ops::decodeSpan(w, 0, 0, w.cols, v.data());
  return v;
}

/// Ops whose every output row depends only on the same input row (and not on
/// the token ids or positions): those may run on a subset of the rows.
bool isRowWise(OpKind kind) {
  switch (kind) {
  case OpKind::Matmul:
  case OpKind::MatmulResidual:
  case OpKind::RMSNorm:
  case OpKind::LayerNorm:
  case OpKind::Add:
  case OpKind::Mul:
  case OpKind::SiLU:
  case OpKind::GELU:
  case OpKind::Softmax:
  case OpKind::SwiGLU:
  case OpKind::Split:
  case OpKind::Scale:
  case OpKind::SoftCap:
  case OpKind::MoEFFN:
  case OpKind::Boundary:
    return true;
  case OpKind::Embedding:
  case OpKind::Rope:
  case OpKind::Attention:
    return false;
  }
  return false;
}

/// Ops whose weight is a small vector decoded to f32 once (norm gains, RoPE
/// frequency factors).
bool readsVectorWeight(const GraphOp &op) {
  return op.kind == OpKind::RMSNorm || op.kind == OpKind::LayerNorm ||
         (op.kind == OpKind::Rope && !op.weight.empty());
}

/// The vector an op reads: its weight, or for a rope with LongRoPE factors
/// the long ones when the run's context exceeds the original context (as
/// llama.cpp chooses them, by n_ctx > n_ctx_orig_yarn).
const std::string &vectorWeightOf(const GraphOp &op, int64_t context) {
  if (op.kind == OpKind::Rope && !op.longWeight.empty() &&
      context > op.originalContext)
    return op.longWeight;
  return op.weight;
}

/// Ops that may write their result over their first input (element i of the
/// result depends only on element i of the inputs, or the op rewrites its
/// input in place anyway).
bool mayOverwriteInput(OpKind kind) {
  switch (kind) {
  case OpKind::Rope:
  case OpKind::Add:
  case OpKind::Mul:
  case OpKind::SiLU:
  case OpKind::GELU:
  case OpKind::Softmax:
  case OpKind::SwiGLU:
  case OpKind::Scale:
  case OpKind::SoftCap:
    return true;
  default:
    return false;
  }
}

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

Executor::~Executor() = default;

int Executor::threads() const { return pool_->size(); }

int64_t Executor::boundaryWidth(int64_t b) const {
  const Graph &g = model_.graph;
  return g.valueWidth[g.ops[g.boundaries[b]].outputs[0]];
}

std::unique_ptr<Executor> Executor::create(const ModelDesc &model,
                                           const ExecOptions &options,
                                           std::string &err) {
  if (!model.validate(err))
    return nullptr;
  std::unique_ptr<Executor> e(new Executor());
  e->model_ = model;
  const ModelDesc &m = e->model_;
  const Graph &g = m.graph;
  e->ctx_ = options.contextSize > 0 ? options.contextSize : g.cache.context;
  if (e->ctx_ <= 0) {
    err = "no context size: the model's KV cache has no length, pass one";
    return nullptr;
  }
  e->batch_ = std::max<int64_t>(1, std::min(options.batchSize, e->ctx_));
  // Before allocating anything: the KV cache (keys and values, f32) and at
  // least two activations of the widest value must fit in the machine.
  const double kvBytes = 2.0 * double(g.cache.layers) * double(e->ctx_) *
                         double(g.cache.kvHeads) * double(g.cache.headDim) *
                         sizeof(float);
  int64_t widest = 0;
  for (int64_t w : g.valueWidth)
    widest = std::max(widest, w);
  const double activationBytes =
      2.0 * double(e->batch_) * double(widest) * sizeof(float);
  if (!fitsInMemory(kvBytes,
                    "a KV cache of " + std::to_string(e->ctx_) + " positions",
                    err)) {
    err += "; use a smaller context";
    return nullptr;
  }
  if (!fitsInMemory(kvBytes + activationBytes,
                    "the KV cache and activations of " +
                        std::to_string(e->batch_) + " tokens",
                    err)) {
    err += "; use a smaller context or batch";
    return nullptr;
  }
  e->pool_ = std::make_unique<ThreadPool>(options.threads);
  e->activationFormat_ = options.activationFormat;
  e->backend_ = options.backend;

  size_t attentionScratch = 0;
  for (const GraphOp &op : g.ops) {
    e->weightOf_.push_back(op.weight.empty() ? nullptr : m.find(op.weight));
    e->biasOf_.push_back(op.bias.empty() ? nullptr : m.find(op.bias));
    const bool isMatmul =
        op.kind == OpKind::Matmul || op.kind == OpKind::MatmulResidual;
    e->backendHandle_.push_back(isMatmul && e->backend_
                                    ? e->backend_->bind(op.weight)
                                    : -1);
    std::array<int, 3> experts = {-1, -1, -1};
    if (op.kind == OpKind::MoEFFN && e->backend_)
      for (int i = 0; i < 3; ++i)
        experts[i] = e->backend_->bind(op.experts[i]);
    e->expertHandles_.push_back(experts);
    e->backendRows_.push_back(op.kind == OpKind::Embedding && e->backend_ &&
                              e->backend_->decodesRows(op.weight));
    const bool vectorWeight = readsVectorWeight(op);
    const std::string &vectorName = vectorWeightOf(op, e->ctx_);
    if (vectorWeight && !e->vectors_.count(vectorName))
      e->vectors_[vectorName] = decodeVector(*m.find(vectorName));
    if (!op.bias.empty() && !e->vectors_.count(op.bias))
      e->vectors_[op.bias] = decodeVector(*m.find(op.bias));
    if (op.kind == OpKind::Attention)
      attentionScratch = std::max(
          attentionScratch,
          ops::attentionScratchFloats(op.heads, g.cache.kvHeads,
                                      g.cache.headDim, e->ctx_));
  }
  // The decoded vectors are final now: each op keeps pointers to its own.
  for (const GraphOp &op : g.ops) {
    const bool vectorWeight = readsVectorWeight(op);
    e->vectorOf_.push_back(
        vectorWeight ? e->vectors_.at(vectorWeightOf(op, e->ctx_)).data()
                     : nullptr);
    e->biasVectorOf_.push_back(op.bias.empty() ? nullptr
                                               : e->vectors_.at(op.bias).data());
  }
  if (g.cache.layers > 0 &&
      !e->cache_.allocate(g.cache.layers, e->ctx_, g.cache.kvHeads,
                          g.cache.headDim, err))
    return nullptr;
  try {
    if (!e->plan(err))
      return nullptr;
    const size_t perThread =
        std::max(ops::matmulScratchFloats(), attentionScratch);
    e->scratch_.assign(e->pool_->size(), std::vector<float>(perThread));
  } catch (const std::bad_alloc &) {
    err = "out of memory allocating the activation buffers; use a smaller "
          "context or batch";
    return nullptr;
  }
  return e;
}

// Liveness over the op list: a value's buffer returns to the free list after
// its last reader; a new value takes the smallest free buffer that fits.
// Elementwise ops write over an input that dies with them, and a boundary is
// its input's buffer under another name.
bool Executor::plan(std::string &err) {
  const Graph &g = model_.graph;
  const size_t nValues = g.valueWidth.size(), nOps = g.ops.size();
  constexpr size_t kNever = std::numeric_limits<size_t>::max();
  definedAt_.assign(nValues, kNever);
  std::vector<size_t> lastUse(nValues, kNever);
  for (size_t i = 0; i < nOps; ++i) {
    for (int32_t v : g.ops[i].outputs)
      definedAt_[v] = i;
    for (int32_t v : g.ops[i].inputs)
      lastUse[v] = i;
  }
  lastUse[g.result] = nOps; // read by eval() after the last op

  // The output head: the ops after the last boundary, when all are row-wise.
  headStart_ = nOps;
  if (!g.boundaries.empty()) {
    const size_t b = g.boundaries.back();
    bool rowWise = true;
    for (size_t i = b + 1; i < nOps; ++i)
      rowWise &= isRowWise(g.ops[i].kind);
    if (rowWise)
      headStart_ = b + 1;
  }

  // Which boundaries cut the graph: nothing but their state is read across.
  boundaryCut_.assign(g.boundaries.size(), true);
  for (size_t j = 0; j < nOps; ++j)
    for (int32_t v : g.ops[j].inputs)
      for (size_t b = 0; b < g.boundaries.size(); ++b) {
        const size_t at = g.boundaries[b];
        if (definedAt_[v] <= at && at < j && v != g.ops[at].outputs[0])
          boundaryCut_[b] = false;
      }

  bufferOf_.assign(nValues, -1);
  std::vector<size_t> capacity; // floats per buffer
  std::vector<int> refs;        // live values per buffer
  std::vector<int32_t> freeList;
  auto take = [&](size_t floats) -> int32_t {
    int32_t best = -1;
    size_t bestAt = 0;
    for (size_t k = 0; k < freeList.size(); ++k) {
      const int32_t b = freeList[k];
      if (capacity[b] >= floats &&
          (best < 0 || capacity[b] < capacity[best])) {
        best = b;
        bestAt = k;
      }
    }
    if (best >= 0) {
      freeList.erase(freeList.begin() + bestAt);
      return best;
    }
    capacity.push_back(floats);
    refs.push_back(0);
    return static_cast<int32_t>(capacity.size() - 1);
  };
  auto release = [&](int32_t v) {
    if (--refs[bufferOf_[v]] == 0)
      freeList.push_back(bufferOf_[v]);
  };
  for (size_t i = 0; i < nOps; ++i) {
    const GraphOp &op = g.ops[i];
    for (size_t k = 0; k < op.outputs.size(); ++k) {
      const int32_t out = op.outputs[k];
      const size_t floats = static_cast<size_t>(batch_ * g.valueWidth[out]);
      int32_t buffer = -1;
      if (k == 0 && !op.inputs.empty()) {
        const int32_t in = op.inputs[0];
        const bool crossesHead = i >= headStart_ && definedAt_[in] < headStart_;
        if (op.kind == OpKind::Boundary && !crossesHead)
          buffer = bufferOf_[in];
        else if (mayOverwriteInput(op.kind) && !crossesHead &&
                 lastUse[in] == i && refs[bufferOf_[in]] == 1 &&
                 capacity[bufferOf_[in]] >= floats)
          buffer = bufferOf_[in];
      }
      if (buffer < 0)
        buffer = take(floats);
      bufferOf_[out] = buffer;
      ++refs[buffer];
    }
    std::vector<int32_t> inputs = op.inputs;
    std::sort(inputs.begin(), inputs.end());
    inputs.erase(std::unique(inputs.begin(), inputs.end()), inputs.end());
    for (int32_t v : inputs)
      if (lastUse[v] == i)
        release(v);
    for (int32_t v : op.outputs)
      if (lastUse[v] == kNever)
        release(v); // computed but never read (e.g. an unused split part)
  }
  buffers_.resize(capacity.size());
  for (size_t b = 0; b < capacity.size(); ++b)
    buffers_[b].resize(capacity[b]);
  (void)err;
  return true;
}

// y[rows, N] = x[rows, K] * W[N, K]^T: on the backend's kernel, or with the
// weights decoded to f32 on the fly.
void Executor::matmul(size_t index, const float *x, int64_t rows, float *y) {
  const GraphOp &op = model_.graph.ops[index];
  const WeightRef &w = *weightOf_[index];
  if (observer_)
    observer_(op.weight, 0, 1, x, rows, w.cols);
  if (backendHandle_[index] >= 0) {
    const uint64_t inputKey =
        (passes_ << 32) | static_cast<uint32_t>(op.inputs[0]);
    backend_->matmul(backendHandle_[index], x, rows, y, inputKey, *pool_);
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

void Executor::parallelFor(int64_t count,
                           const std::function<void(int64_t, int)> &fn) {
  pool_->run(count, fn);
}

void Executor::runOps(size_t begin, size_t end, const int32_t *tokens,
                      int64_t n, int64_t pos, int64_t firstOutput) {
  const Graph &g = model_.graph;
  ++passes_;
  for (size_t i = begin; i < end; ++i) {
    const bool head = i >= headStart_;
    const int64_t rows = head ? n - firstOutput : n;
    if (rows <= 0)
      continue;
    runOp(g.ops[i], tokens, rows, pos, head ? firstOutput : 0,
          head ? headStart_ : 0);
  }
}

// Runs `op` on `rows` rows. In the head (headStart > 0) inputs computed before
// the head are read from row `rowOffset` on; everything else starts at row 0.
void Executor::runOp(const GraphOp &op, const int32_t *tokens, int64_t rows,
                     int64_t pos, int64_t rowOffset, int64_t headStart) {
  const Graph &g = model_.graph;
  const size_t index = static_cast<size_t>(&op - g.ops.data());
  auto in = [&](size_t k) -> const float * {
    const int32_t v = op.inputs[k];
    const bool before = headStart > 0 && definedAt_[v] < static_cast<size_t>(headStart);
    return value(v) + (before ? rowOffset * g.valueWidth[v] : 0);
  };
  auto out = [&](size_t k) { return value(op.outputs[k]); };
  const int64_t width = g.valueWidth[op.outputs.empty() ? 0 : op.outputs[0]];
  const WeightRef *w = weightOf_[index];
  switch (op.kind) {
  case OpKind::Embedding: {
    float *y = out(0);
    for (int64_t t = 0; t < rows; ++t) {
      if (backendRows_[index])
        backend_->decodeRow(op.weight, tokens[t], y + t * width);
      else
        ops::decodeSpan(*w, tokens[t], 0, width, y + t * width);
    }
    return;
  }
  case OpKind::Matmul:
  case OpKind::MatmulResidual: {
    float *y = out(0);
    matmul(index, in(0), rows, y);
    if (biasOf_[index]) {
      const float *b = biasVectorOf_[index];
      elementwise(*pool_, rows, width,
                  [&](int64_t e) { y[e] += b[e % width]; });
    }
    if (op.kind == OpKind::MatmulResidual) {
      const float *r = in(1);
      elementwise(*pool_, rows, width, [&](int64_t e) { y[e] = r[e] + y[e]; });
    }
    return;
  }
  case OpKind::RMSNorm: {
    // With a group, each group of a row is normalised as a row of its own.
    const int64_t group = op.group > 0 ? op.group : width;
    ops::rmsNorm(*pool_, in(0), vectorOf_[index], rows * (width / group), group,
                 op.epsilon, out(0));
    return;
  }
  case OpKind::LayerNorm:
    ops::layerNorm(*pool_, in(0), vectorOf_[index], biasVectorOf_[index],
                   rows, width, op.epsilon, out(0));
    return;
  case OpKind::Rope: {
    float *y = out(0);
    if (y != in(0))
      std::memcpy(y, in(0), rows * width * sizeof(float));
    ops::RopeParams p;
    p.headDim = op.headDim;
    p.ropeDims = op.ropeDims;
    p.freqBase = op.theta;
    p.freqScale = op.freqScale;
    p.extFactor = op.extFactor;
    p.attnFactor = op.attnFactor;
    p.originalContext = op.originalContext;
    p.betaFast = op.betaFast;
    p.betaSlow = op.betaSlow;
    p.mode = op.ropeMode;
    p.freqFactors = vectorOf_[index];
    ops::rope(p, y, rows, op.heads, pos + rowOffset);
    return;
  }
  case OpKind::Attention: {
    const int64_t kv = g.valueWidth[op.inputs[1]];
    cache_.store(op.cacheLayer, pos, rows, in(1), kv, in(2), kv);
    ops::attention(*pool_, scratch_, cache_, op.cacheLayer, in(0), width, rows,
                   pos, op.heads, out(0), width, op.scale, op.window,
                   op.softcap);
    return;
  }
  case OpKind::Add: {
    const float *a = in(0), *b = in(1);
    float *y = out(0);
    elementwise(*pool_, rows, width, [&](int64_t e) { y[e] = a[e] + b[e]; });
    return;
  }
  case OpKind::Mul: {
    const float *a = in(0), *b = in(1);
    float *y = out(0);
    elementwise(*pool_, rows, width, [&](int64_t e) { y[e] = a[e] * b[e]; });
    return;
  }
  case OpKind::SiLU: {
    const float *a = in(0);
    float *y = out(0);
    elementwise(*pool_, rows, width,
                [&](int64_t e) { y[e] = a[e] / (1.0f + std::exp(-a[e])); });
    return;
  }
  case OpKind::GELU:
    ops::gelu(*pool_, in(0), out(0), rows * width);
    return;
  case OpKind::MoEFFN:
    moeFFN(index, op, *w, in(0), rows, out(0));
    return;
  case OpKind::Scale: {
    const float *a = in(0);
    float *y = out(0);
    const float factor = op.scale;
    elementwise(*pool_, rows, width, [&](int64_t e) { y[e] = a[e] * factor; });
    return;
  }
  case OpKind::SoftCap: {
    const float *a = in(0);
    float *y = out(0);
    const float cap = op.scale;
    elementwise(*pool_, rows, width,
                [&](int64_t e) { y[e] = cap * std::tanh(a[e] / cap); });
    return;
  }
  case OpKind::Softmax:
    ops::softmax(*pool_, in(0), out(0), rows, width);
    return;
  case OpKind::SwiGLU:
    ops::swiglu(*pool_, in(0), width, in(1), width, out(0), width, rows,
                width);
    return;
  case OpKind::Split: {
    const float *x = in(0);
    const int64_t inWidth = g.valueWidth[op.inputs[0]];
    int64_t col = 0;
    for (size_t k = 0; k < op.outputs.size(); ++k) {
      float *y = out(k);
      const int64_t cols = op.sizes[k];
      for (int64_t t = 0; t < rows; ++t)
        std::memcpy(y + t * cols, x + t * inWidth + col, cols * sizeof(float));
      col += cols;
    }
    return;
  }
  case OpKind::Boundary:
    if (out(0) != in(0))
      std::memcpy(out(0), in(0), rows * width * sizeof(float));
    return;
  }
}

bool Executor::evalRange(const int32_t *tokens, int64_t n, int64_t pos,
                         int64_t from, int64_t to, std::vector<float> &state,
                         std::string &err) {
  const Graph &g = model_.graph;
  const int64_t nb = boundaryCount();
  if (from < -1 || from >= nb || to <= from || to > nb) {
    err = "invalid layer range " + std::to_string(from) + ".." +
          std::to_string(to) + " (the graph has " + std::to_string(nb) +
          " boundaries)";
    return false;
  }
  for (int64_t b : {from, to})
    if (b >= 0 && b < nb && !boundaryCut_[b]) {
      err = "values other than the residual stream cross layer boundary " +
            std::to_string(b) + "; the graph cannot be run in parts there";
      return false;
    }
  if (n <= 0 || n > batch_ || pos < 0 || pos + n > ctx_) {
    err = "invalid token range for a partial run: " + std::to_string(n) +
          " tokens at " + std::to_string(pos) + " (batch " +
          std::to_string(batch_) + ", context " + std::to_string(ctx_) + ")";
    return false;
  }
  if (from < 0) {
    for (int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= model_.vocabSize) {
        err = "token id " + std::to_string(tokens[i]) + " outside the " +
              std::to_string(model_.vocabSize) + "-token vocabulary";
        return false;
      }
  } else {
    const int32_t v = g.ops[g.boundaries[from]].outputs[0];
    if (static_cast<int64_t>(state.size()) != n * g.valueWidth[v]) {
      err = "the state of boundary " + std::to_string(from) + " must hold " +
            std::to_string(n * g.valueWidth[v]) + " floats";
      return false;
    }
    std::memcpy(value(v), state.data(), state.size() * sizeof(float));
  }
  const size_t begin = from < 0 ? 0 : g.boundaries[from] + 1;
  const size_t end = to < nb ? g.boundaries[to] + 1 : g.ops.size();
  runOps(begin, end, tokens, n, pos, 0);
  const int32_t v = to < nb ? g.ops[g.boundaries[to]].outputs[0] : g.result;
  state.assign(value(v), value(v) + n * g.valueWidth[v]);
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
  const Graph &g = model_.graph;
  const int64_t V = model_.vocabSize;
  logits.resize(static_cast<size_t>(n - firstOutput) * V);
  for (int64_t s = 0; s < n; s += batch_) {
    const int64_t e = std::min(n, s + batch_);
    const int64_t first = std::min(std::max(firstOutput, s), e) - s;
    runOps(0, g.ops.size(), tokens + s, e - s, pos + s, first);
    cached_ = pos + e;
    if (first < e - s) {
      // The head ran on rows [first, e - s) only, unless the result was
      // computed before it.
      const bool sliced = definedAt_[g.result] >= headStart_;
      const float *src = value(g.result) + (sliced ? 0 : first * V);
      std::memcpy(logits.data() + (s + first - firstOutput) * V, src,
                  (e - s - first) * V * sizeof(float));
    }
  }
  if (n == 0)
    cached_ = pos;
  return true;
}

// llama.cpp's build_moe_ffn: softmax over the router's logits, the top_k
// experts by probability (ties: lower index), weights optionally divided by
// their sum, each chosen expert's SwiGLU FFN, the weighted outputs summed in
// the order the experts were chosen; then the shared expert, scaled by
// sigmoid(x . gate_inp). Tokens are grouped by expert so that each expert's
// matrices are decoded once per pass.
void Executor::moeFFN(size_t index, const GraphOp &op,
                      const WeightRef &router,
                      const float *x, int64_t rows, float *y) {
  const int64_t d = router.cols, e = router.rows, k = op.topK;
  std::vector<float> probs(static_cast<size_t>(rows * e));
  if (observer_)
    observer_(op.weight, 0, 1, x, rows, d);
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
    if (op.normalize)
      for (int64_t j = 0; j < k; ++j)
        weights[t * k + j] /= static_cast<float>(sum);
  }

  const WeightRef &gate = *model_.find(op.experts[0]);
  const WeightRef &up = *model_.find(op.experts[1]);
  const WeightRef &down = *model_.find(op.experts[2]);
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
  const std::array<int, 3> &handles = expertHandles_[index];
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
                       const WeightRef &downW, const std::string *names,
                       int64_t expert, int64_t experts, const float *xin,
                       int64_t m, float *result) {
    const int64_t ff = gateW.rows;
    g.resize(static_cast<size_t>(m * ff));
    u.resize(static_cast<size_t>(m * ff));
    if (observer_) {
      observer_(names[0], expert, experts, xin, m, gateW.cols);
      observer_(names[1], expert, experts, xin, m, upW.cols);
    }
    // Keys for the backend's reuse of a quantized input: gate and up read
    // the same rows; values above 2^31 are never graph values.
    const uint64_t key = (passes_ << 32) | 0x80000000u |
                         static_cast<uint32_t>(2 * expert);
    multiply(0, expert, experts, gateW, xin, m, g.data(), key);
    multiply(1, expert, experts, upW, xin, m, u.data(), key);
    ops::swiglu(*pool_, g.data(), ff, u.data(), ff, g.data(), ff, m, ff);
    if (observer_)
      observer_(names[2], expert, experts, g.data(), m, ff);
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
              op.experts.data(), ex, e, xs.data(), m, out.data());
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

  if (op.experts.size() == 7) {
    const WeightRef &sg = *model_.find(op.experts[3]);
    const WeightRef &su = *model_.find(op.experts[4]);
    const WeightRef &sd = *model_.find(op.experts[5]);
    const WeightRef &si = *model_.find(op.experts[6]);
    out.resize(static_cast<size_t>(rows * d));
    std::vector<float> gateLogit(static_cast<size_t>(rows));
    swigluFFN(sg, su, sd, op.experts.data() + 3, 0, 1, x, rows, out.data());
    if (observer_)
      observer_(op.experts[6], 0, 1, x, rows, d);
    ops::matmulDecoded(*pool_, scratch_, si, x, rows, gateLogit.data());
    for (int64_t t = 0; t < rows; ++t) {
      const float s = 1.0f / (1.0f + std::exp(-gateLogit[t]));
      for (int64_t c = 0; c < d; ++c)
        y[t * d + c] += out[t * d + c] * s;
    }
  }
}

} // namespace lowbit::exec
