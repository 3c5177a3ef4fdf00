//===- AWQ.h - Activation-aware per-channel weight scaling ------*- C++ -*-===//
//
// AWQ (Lin et al., 2023): weights that multiply large activations matter
// most, so scale input channel c of every weight that reads an input by
// s_c = a_c^alpha (a = activation magnitude per channel) before quantizing,
// and divide the producer of that input by s_c so that the float model is
// unchanged: W x = (W diag(s)) (diag(s)^-1 x). alpha is searched on a grid
// for each group of weights that share one input.
//
// lowbit's choices, and why:
//  * a_c = sqrt(mean x_c^2), the RMS activation from the importance matrix
//    (sum2 / count). The reference uses mean |x_c|, which the calibration
//    state does not record; the RMS ranks channels the same way for the
//    heavy-tailed channels AWQ is about.
//  * The search minimises the Hessian-weighted output error of the group,
//    sum over weights and rows of e^T H e with e = W - Q(W diag(s)) diag(s)^-1,
//    H = sum x x^T of the group's input (the reference measures the same
//    thing as the output MSE on calibration samples). The quantizer Q is the
//    target format's own encoder with importance diag(H) / s^2 (the
//    importance of the scaled weight's input x / s).
//  * alpha = 0 gives s = 1, i.e. plain RTN, and is on the grid, so the chosen
//    scales never do worse than RTN on this objective.
//  * No clipping search: the block formats' encoders already search the
//    scale (and so the clipping range) of every block for the smallest
//    importance-weighted error.
//  * Scales are normalised as in the reference (s / sqrt(max s * min s)) and
//    a_c is floored at 1e-5 * max a so dead channels do not blow up the
//    folded norm weight.
//
// The folding helpers below are what keeps the float model unchanged; the
// lowbit-awq-scale pass decides where they apply (norm -> q/k/v, gate/up;
// v rows -> attn_output columns, tied across the query heads that share a KV
// head; up rows -> down columns). No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_QUANT_AWQ_H
#define LOWBIT_QUANT_AWQ_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::quant {

struct AWQOptions {
  /// alpha = i / (gridPoints - 1), i in [0, gridPoints).
  int gridPoints = 20;
  /// Rows of each weight used by the search (an even stride); 0 = all.
  int64_t maxSearchRows = 0;
  /// 0 = all hardware threads.
  int threads = 0;
};

/// One weight of a group that reads the same input.
struct AWQWeight {
  std::string name;
  const float *data = nullptr; // rows x cols, f32
  int64_t rows = 0;
  /// Format it will be stored in. A float format has no quantization error
  /// and does not steer the search.
  formats::Format format = formats::Format::F32;
};

struct AWQResult {
  double alpha = 0;
  std::vector<float> scales;  // s per input column (all 1 when alpha = 0)
  std::vector<double> alphas; // the grid
  std::vector<double> errors; // group output error per grid point
  double rtnError = 0;        // alpha = 0
  double error = 0;           // at the chosen alpha
};

/// s = a^alpha, a floored at 1e-5 * max(a), normalised to
/// s / sqrt(max(s) * min(s)).
std::vector<float> awqScales(const std::vector<float> &activation,
                             double alpha);

/// Searches alpha for `group` (all weights have `cols` columns). `activation`
/// has `cols` magnitudes; `hessian` is cols x cols (sum of x x^T). Fails with
/// `error` naming the weight when a format cannot hold the scaled weight.
bool searchAWQ(const std::vector<AWQWeight> &group, int64_t cols,
               const std::vector<float> &activation, const float *hessian,
               const AWQOptions &options, AWQResult &result,
               std::string &error);

/// Hessian-weighted output error of storing w (rows x cols) as `format`
/// after scaling its columns by `scales` (null = 1), unscaled back:
/// sum_r e_r^T H e_r, e = w - Q(w diag(s)) diag(s)^-1. Rows are taken with
/// an even stride when maxRows > 0 and rows > maxRows.
bool scaledQuantError(formats::Format format, const float *w, int64_t rows,
                      int64_t cols, const float *scales, const float *hessian,
                      int64_t maxRows, int threads, double &result,
                      std::string &error);

//===----------------------------------------------------------------------===//
// Folding: each pair keeps the product unchanged.
//===----------------------------------------------------------------------===//

/// w[r][c] *= s[c]: a consumer of the scaled input.
void scaleColumns(float *w, int64_t rows, int64_t cols, const float *s);
/// w[r][c] /= s[r]: the producer of the input (a weight's output rows, or a
/// bias / norm weight as one column).
void divideRows(float *w, int64_t rows, int64_t cols, const float *s);

/// The attention output's columns (heads x headDim) can only be scaled where
/// V's rows (kvHeads x headDim) can: every query head that reads a KV head
/// sees that head's scaled values. Combines a per-column magnitude of the
/// attention output into one per KV column (the RMS over the query heads of
/// the group; query head h reads KV head h / (heads / kvHeads)).
std::vector<float> tieToKVHeads(const std::vector<float> &perColumn,
                                int64_t heads, int64_t kvHeads,
                                int64_t headDim);
/// Expands per-KV-column values back to the attention output's columns.
std::vector<float> expandFromKVHeads(const std::vector<float> &perKVColumn,
                                     int64_t heads, int64_t kvHeads,
                                     int64_t headDim);

} // namespace lowbit::quant

#endif // LOWBIT_QUANT_AWQ_H
