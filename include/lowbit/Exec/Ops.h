//===- Ops.h - The non-matmul ops of a llama decoder ------------*- C++ -*-===//
//
// One definition of the llama ops both the reference executor (lib/Exec) and
// the native runtime (runtime/) run: RMSNorm, RoPE (normal / NeoX), grouped-
// query attention over a KV cache, SwiGLU, and the decode-to-f32 matmul (the
// executor's only matmul, the runtime's fall-back). Sharing them is what lets
// the runtime reproduce the executor: with every matmul on the fall-back path
// the two give the same bits.
//
// Results never depend on the thread count: every output element is written
// by one task with a fixed order of arithmetic. No MLIR/LLVM dependency; the
// runtime's static aarch64 build compiles this file.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_OPS_H
#define LOWBIT_EXEC_OPS_H

#include "lowbit/Exec/Model.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::exec {

class ThreadPool;

namespace ops {

/// Multiply-adds below which an op runs on the calling thread only: waking
/// the workers costs more than it saves.
constexpr int64_t kMinParallelWork = 1 << 17;

/// Per-thread scratch memory, one vector per pool thread.
using Scratch = std::vector<std::vector<float>>;

/// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w for `rows` rows of `d` floats
/// (the sum of squares in double, as ggml).
void rmsNorm(ThreadPool &pool, const float *x, const float *w, int64_t rows,
             int64_t d, float eps, float *y);

struct RopeParams {
  int64_t headDim = 0;
  int64_t ropeDims = 0; // rotated dimensions per head (<= headDim)
  float freqBase = 10000.0f;
  float freqScale = 1.0f;
  /// YaRN (ggml_rope_ext's ext_factor, attn_factor, n_ctx_orig, beta_fast,
  /// beta_slow); extFactor 0 = plain scaling.
  float extFactor = 0.0f, attnFactor = 1.0f;
  int64_t originalContext = 0;
  float betaFast = 32.0f, betaSlow = 1.0f;
  RopeMode mode = RopeMode::Normal;
  /// ropeDims / 2 divisors of the pair frequencies (Llama-3.1's rope_freqs,
  /// ggml's freq_factors); null: none.
  const float *freqFactors = nullptr;
};

/// y[r] = (x[r] - mean) / sqrt(var + eps) * w (+ b) for `rows` rows of `d`
/// floats (sums in double, as ggml_norm); `b` may be null.
void layerNorm(ThreadPool &pool, const float *x, const float *w,
               const float *b, int64_t rows, int64_t d, float eps, float *y);

/// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise over
/// `count` floats. `y` may alias `x`.
void gelu(ThreadPool &pool, const float *x, float *y, int64_t count);

/// Softmax of each of `rows` rows of `d` floats (max subtracted, the sum of
/// exponentials in double). `y` may alias `x`.
void softmax(ThreadPool &pool, const float *x, float *y, int64_t rows,
             int64_t d);

/// Rotates the first ropeDims values of every head of `rows` rows (row r at
/// position pos + r; row stride heads * headDim), in place.
void rope(const RopeParams &p, float *x, int64_t rows, int64_t heads,
          int64_t pos);

/// out[r, i] = silu(gate[r, i]) * up[r, i] for i < ff. `out` may alias
/// `gate`.
void swiglu(ThreadPool &pool, const float *gate, int64_t gateStride,
            const float *up, int64_t upStride, float *out, int64_t outStride,
            int64_t rows, int64_t ff);

/// The f32 KV cache of every layer: keys transposed ([layer][kv head][dim]
/// [position], so attention reads them as matmul panels), values row-major
/// ([layer][position][kv head * dim]).
class KVCache {
public:
  /// False with `err` when the memory cannot be had.
  bool allocate(int64_t layers, int64_t context, int64_t kvHeads,
                int64_t headDim, std::string &err);
  /// Stores `n` tokens' keys and values (rows of kvHeads * headDim with the
  /// given strides) of `layer` at positions [pos, pos + n).
  void store(int64_t layer, int64_t pos, int64_t n, const float *k,
             int64_t kStride, const float *v, int64_t vStride);
  int64_t context() const { return ctx_; }
  int64_t kvHeads() const { return kvHeads_; }
  int64_t headDim() const { return headDim_; }
  const float *keysT(int64_t layer, int64_t kvHead) const {
    return keysT_.data() + (layer * kvHeads_ + kvHead) * headDim_ * ctx_;
  }
  const float *values(int64_t layer) const {
    return values_.data() + layer * ctx_ * kvHeads_ * headDim_;
  }

private:
  std::vector<float> keysT_, values_;
  int64_t layers_ = 0, ctx_ = 0, kvHeads_ = 0, headDim_ = 0;
};

/// Floats of per-thread scratch `attention` needs.
size_t attentionScratchFloats(int64_t heads, int64_t kvHeads, int64_t headDim,
                              int64_t context);

/// Causal grouped-query attention of `n` queries (rows of heads * headDim,
/// stride `qStride`) at positions [pos, pos + n) against `layer` of the
/// cache, which must already hold positions [0, pos + n). Writes rows of
/// heads * headDim (stride `outStride`) to `out`. Scores are scaled by
/// `scale` (0: 1/sqrt(headDim)). With `window` > 0 a query at position p
/// sees only keys at positions > p - window (sliding-window attention).
void attention(ThreadPool &pool, Scratch &scratch, const KVCache &cache,
               int64_t layer, const float *q, int64_t qStride, int64_t n,
               int64_t pos, int64_t heads, float *out, int64_t outStride,
               float scale = 0.0f, int64_t window = 0, float softcap = 0.0f);

/// Floats of per-thread scratch `matmulDecoded` needs.
size_t matmulScratchFloats();

/// y[r, j] = sum_k x[r, k] * W[j, k] for r < rows, j < w.rows, W decoded to
/// f32 a panel of rows at a time (weights in row-major GGML layout). Row
/// strides: x w.cols, y `yStride` (w.rows when 0).
void matmulDecoded(ThreadPool &pool, Scratch &scratch, const WeightRef &w,
                   const float *x, int64_t rows, float *y, int64_t yStride = 0);

/// Decodes columns [k0, k0 + kc) of row `row` of `w` (k0, kc multiples of
/// the block size) to f32.
void decodeSpan(const WeightRef &w, int64_t row, int64_t k0, int64_t kc,
                float *dst);

} // namespace ops
} // namespace lowbit::exec

#endif // LOWBIT_EXEC_OPS_H
