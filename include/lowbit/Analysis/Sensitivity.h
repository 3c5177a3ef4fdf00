//===- Sensitivity.h - Predicted damage of quantizing a tensor --*- C++ -*-===//
//
// The damage of storing a weight W[N, K] (y = W x) as Q is the expected
// squared error it adds to the output, per token:
//
//   E ||(W - Q) x||^2 = sum over rows of e^T E[x x^T] e,   e = w_row - q_row
//                     = sum over rows of e^T (Sigma + mu mu^T) e
//
// with mu = E[x] and Sigma the covariance of the activations. Calibration
// keeps only per-channel statistics (sum of squares, sum, count), so Sigma is
// taken as diagonal, Sigma_cc = E[x_c^2] - mu_c^2:
//
//   damage = sum_rows [ sum_c (E[x_c^2] - mu_c^2) e_c^2  +  (e . mu)^2 ]
//
// The first term is the importance-weighted error of llama.cpp's imatrix with
// the mean's share taken out; the second is the bias term: a row's errors
// that share a sign add up coherently on every token through the mean
// activation. (Writing diag(E[x^2]) + mu mu^T instead would count the
// diagonal of mu mu^T twice.) Without means (an imatrix from llama.cpp has
// none) the bias term is dropped and diag(E[x^2]) is used, which is what the
// imatrix quantizers assume. The approximation ignores correlations between
// channels other than through the mean; the measured KL divergence
// (lowbit-sensitivity measure=kld) does not.
//
// Embedding tables are looked up, not multiplied: a row is used as often as
// its token occurs, so their damage is sum_rows p(row) ||e_row||^2.
//
// With no statistics at all (--no-importance) every column counts the same:
// damage = sum of (w - q)^2 over the tensor.
//
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ANALYSIS_SENSITIVITY_H
#define LOWBIT_ANALYSIS_SENSITIVITY_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::analysis {

/// What a tensor's errors are weighed with; empty vectors are unknown.
struct DamageWeights {
  /// Per column: E[x_c^2]. Also the encoder's importance (as
  /// lowbit-quantize uses the imatrix), so the error measured is the error
  /// the quantizer will make.
  std::vector<float> meanSquares;
  /// Per column: E[x_c] (enables the bias term).
  std::vector<float> means;
  /// Per row: the probability of the row being used (embeddings).
  std::vector<float> rowProbabilities;
  /// Whether the encoder gets meanSquares as its importance. False when they
  /// are an estimate the quantizer will not have (no imatrix entry).
  bool importanceInEncoder = true;
};

/// Sums over a tensor's rows; add chunks of rows together.
struct DamageTerms {
  double weighted = 0; // sum_rows sum_c w_c e_c^2 (w = variance or E[x^2])
  double bias = 0;     // sum_rows (e . mu)^2
  double plain = 0;    // sum (w - q)^2
  double norm = 0;     // sum w^2 (for a relative error)
  double damage() const { return weighted + bias; }
};

/// Encodes `rows` x `cols` f32 `values` (row-major) in `format` with the
/// importance meanSquares (none when empty), decodes them and adds the error
/// terms of these rows to `terms`. `firstRow` indexes rowProbabilities.
/// Uses `threads` threads (0 = all). False with `err` when the codec refuses
/// the data (NaN, a row length that does not fit the block).
bool addQuantizationDamage(formats::Format format, const float *values,
                           int64_t rows, int64_t cols, int64_t firstRow,
                           const DamageWeights &weights, int threads,
                           DamageTerms &terms, std::string &err);

/// The GGML formats lowbit-sensitivity considers by default, smallest first:
/// iq2_xxs iq2_xs iq2_s q2_k iq3_xxs iq3_s q3_k iq4_xs q4_0 iq4_nl q4_1 q4_k
/// q5_0 q5_1 q5_k q6_k q8_0 f16.
const std::vector<formats::Format> &defaultCandidateFormats();

} // namespace lowbit::analysis

#endif // LOWBIT_ANALYSIS_SENSITIVITY_H
