//===- GPTQ.h - GPTQ error feedback inside GGML block formats ---*- C++ -*-===//
//
// GPTQ (Frantar et al., 2022) quantizes a weight W[N, K] column by column and
// pushes each column's rounding error onto the columns not yet quantized,
// weighted by the inverse Hessian of the layer's input, H = sum x x^T
// (K x K). lowbit runs it inside the GGML block formats so that the result
// is ordinary GGML bytes that llama.cpp loads:
//
//  * Blocks stay where the format puts them (columns [b*bs, (b+1)*bs)); the
//    format's own encoder (formats::quantizeRows, importance = diag(H)) picks
//    the scales and codes of a block, and its decoder gives the values the
//    error is measured against. No rounding outside the format's encoder.
//  * A block is quantized as a unit: with Q_B fixed, the exact OBS update of
//    the later columns is -(W_B - Q_B) U_BB^-1 U_BR, U the upper Cholesky
//    factor of H^-1 (H^-1 = U^T U); solving U_BB column by column is GPTQ's
//    "err / Hinv_jj, propagate by row j of Hinv" within the block.
//  * Because the encoder sees the whole block at once, the block is then
//    re-encoded from its error-compensated weights (each column as it would
//    be after the errors of the columns before it in the block were pushed
//    onto it) a few times; for every row the pass with the smallest GPTQ
//    loss sum_j e_j^2 is kept. The first pass (no compensation inside the
//    block) is the block-level update above, so refinement never does worse
//    on that loss; at a fixed point it is plain column-by-column GPTQ. This
//    matters for K-quants: a 256-wide super-block can be a whole row.
//  * Act-order: columns cannot move between blocks, so the processing order
//    is a permutation that keeps blocks contiguous: blocks in decreasing
//    total diag(H), and inside a block columns in decreasing diag(H) (the
//    order of error propagation inside the block; the encoder always sees
//    the block in storage order). The output layout is unchanged.
//  * Dead columns (H_jj = 0: the input is always zero there) get H_jj = 1 and
//    weight 0. Damping adds percDamp * mean(diag H) to the diagonal and is
//    raised tenfold while H is not positive definite.
//  * Rows are independent given U: threads take chunks of rows, and only
//    those chunks are held in f32 (the weight is never expanded whole).
//
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_QUANT_GPTQ_H
#define LOWBIT_QUANT_GPTQ_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>
#include <functional>
#include <string>

namespace lowbit::quant {

struct GPTQOptions {
  /// Added to the diagonal of H, as a fraction of its mean diagonal.
  double percDamp = 0.01;
  /// Process blocks (and columns inside a block) in decreasing diag(H).
  bool actOrder = true;
  /// Re-encodings of a block from its compensated weights (0 = block-level
  /// update only).
  int refinePasses = 3;
  /// Columns whose errors reach the later columns in one lazy update
  /// (rounded up to whole blocks).
  int64_t lazyBatch = 128;
  /// Rows a thread holds in f32 at a time.
  int64_t rowsPerChunk = 64;
  /// 0 = all hardware threads.
  int threads = 0;
};

struct GPTQReport {
  double damp = 0;         // absolute damping finally added to diag(H)
  int dampRaises = 0;      // times it was raised because H was not PD
  int64_t deadColumns = 0; // columns with H_jj = 0
  double loss = 0;         // GPTQ's objective, sum of e_j^2 over all rows
};

/// Writes rows [row, row + count) of the weight (f32, row-major) to `dst`
/// (count x cols floats). Called from worker threads, concurrently.
using RowLoader = std::function<bool(int64_t row, int64_t count, float *dst,
                                     std::string &error)>;

/// Quantizes a rows x cols weight to `format` with GPTQ under `hessian`
/// (cols x cols, row-major, symmetric, sum of x x^T). Writes
/// rows * formats::rowBytes(info(format), cols) bytes to `out`. Returns false
/// with `error` on a bad shape, a format without a codec, a non-finite
/// Hessian or weight, or an H that stays indefinite under damping.
bool quantizeGPTQ(formats::Format format, int64_t rows, int64_t cols,
                  const RowLoader &load, const float *hessian,
                  const GPTQOptions &options, uint8_t *out, std::string &error,
                  GPTQReport *report = nullptr);

/// Convenience for a weight held in f32.
bool quantizeGPTQ(formats::Format format, const float *weights, int64_t rows,
                  int64_t cols, const float *hessian,
                  const GPTQOptions &options, uint8_t *out, std::string &error,
                  GPTQReport *report = nullptr);

/// The layer output error of replacing W by Q under H: sum over rows of
/// (w_r - q_r)^T H (w_r - q_r), i.e. tr(E H E^T) = sum over calibration
/// tokens of ||x W^T - x Q^T||^2.
double outputError(const float *w, const float *q, int64_t rows, int64_t cols,
                   const float *hessian, int threads = 0);

} // namespace lowbit::quant

#endif // LOWBIT_QUANT_GPTQ_H
