//===- GPTQ.h - GPTQ error feedback inside GGML block formats ---*- C++ -*-===//
//
// GPTQ (Frantar et al., 2022) quantizes a weight W[N, K] column by column and
// pushes each column's rounding error onto the columns not yet quantized,
// weighted by the inverse Hessian of the layer's input, H = sum x x^T
// (K x K). lowbit runs it inside the GGML block formats so that the result
// is ordinary GGML bytes that llama.cpp loads:
//
//  * Blocks stay where the format puts them (columns [b*bs, (b+1)*bs)). When
//    GPTQ reaches a block, the format's own encoder (formats::quantizeRows,
//    importance = diag(H)) encodes it for all rows of a chunk: that fixes the
//    block's scales exactly as RTN's scale search would.
//  * Then the block's columns are rounded one at a time, GPTQ proper: column
//    j goes to the nearest value its code can take under those scales,
//    err_j = (w_j - q_j) / U_jj (U the upper Cholesky factor of H^-1), and
//    the later columns of the block get w -= err_j * U[j, :]. Setting a code
//    needs to know where it sits in the block: lowbit learns that from the
//    format's decoder (which bits change only weight e when flipped), so no
//    block layout is written down twice. Every GGML block format has such a
//    map except TQ1_0 (base-3 packing); there the encoder's values are kept
//    and only the exact block-level update -(W_B - Q_B) U_BB^-1 U_BR reaches
//    the later blocks.
//  * Scales chosen from the uncompensated weights need not suit the
//    compensated ones, so the block is re-encoded from its compensated
//    weights (refinePasses times, until nothing changes) and each row keeps
//    the pass with the smallest GPTQ loss sum_j err_j^2.
//  * The errors of a block reach the rest of the lazy batch at once and the
//    columns after the batch in one update per batch (GPTQ's lazy batches).
//  * Act-order: columns cannot move between blocks, so the processing order
//    is a permutation that keeps blocks contiguous: blocks in decreasing
//    total diag(H), and inside a block columns in decreasing diag(H) (the
//    order of error propagation inside the block; the encoder always sees
//    the block in storage order). The output layout is unchanged.
//  * Dead columns (H_jj = 0: the input is always zero there) get H_jj = 1 and
//    weight 0. Damping adds percDamp * mean(diag H) to the diagonal and is
//    raised tenfold while H is not positive definite.
//  * GPTQ's loss is a proxy once a format clips or re-scales; each row is
//    checked against plain RTN on the true objective e^T H e and the better
//    encoding is kept, so GPTQ never does worse than RTN on calibration data.
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
  /// Compare every row with plain RTN on e^T H e and keep the better.
  bool guardRTN = true;
  /// 0 = all hardware threads.
  int threads = 0;
};

struct GPTQReport {
  double damp = 0;         // absolute damping finally added to diag(H)
  int dampRaises = 0;      // times it was raised because H was not PD
  int64_t deadColumns = 0; // columns with H_jj = 0
  double loss = 0;         // GPTQ's objective, sum of e_j^2 over all rows
  // With guardRTN: the output error tr(E H E^T) of the result and of RTN,
  // and the rows where RTN was kept.
  double outputError = 0, rtnOutputError = 0;
  int64_t rtnRows = 0;
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

/// Bits of each weight's code that GPTQ sets one column at a time in
/// `format` (learned from the decoder, see GPTQ.cpp); 0 when the format has
/// no such map and GPTQ falls back to the block-level update.
int gptqCodeBits(formats::Format format);

/// The layer output error of replacing W by Q under H: sum over rows of
/// (w_r - q_r)^T H (w_r - q_r), i.e. tr(E H E^T) = sum over calibration
/// tokens of ||x W^T - x Q^T||^2.
double outputError(const float *w, const float *q, int64_t rows, int64_t cols,
                   const float *hessian, int threads = 0);

} // namespace lowbit::quant

#endif // LOWBIT_QUANT_GPTQ_H
