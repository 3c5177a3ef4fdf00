//===- Sensitivity.cpp - Predicted damage of quantizing a tensor ----------===//
#include "lowbit/Support/Parallel.h"
#include "lowbit/Analysis/Sensitivity.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace lowbit::analysis {

namespace {

/// Rows per task of the error sums; partial sums are added in task order so
/// the result does not depend on the thread count.
constexpr int64_t kRowsPerTask = 16;

template <typename Fn> void parallelTasks(int64_t tasks, int threads, Fn fn) {
  parallelFor(tasks, threads, [&](int64_t task, int) { fn(task); });
}

} // namespace

bool addQuantizationDamage(formats::Format format, const float *values,
                           int64_t rows, int64_t cols, int64_t firstRow,
                           const DamageWeights &weights, int threads,
                           DamageTerms &terms, std::string &err) {
  const formats::FormatInfo &info = formats::info(format);
  const uint64_t rowBytes =
      formats::rowBytes(info, static_cast<uint64_t>(cols));
  if (rowBytes == 0) {
    err = std::string("rows of ") + std::to_string(cols) +
          " weights do not fit " + info.name + "'s blocks of " +
          std::to_string(info.blockSize);
    return false;
  }
  const bool hasImportance = !weights.meanSquares.empty();
  const bool hasMeans = !weights.means.empty();
  const bool hasRowProbabilities = !weights.rowProbabilities.empty();
  if ((hasImportance && int64_t(weights.meanSquares.size()) != cols) ||
      (hasMeans && int64_t(weights.means.size()) != cols)) {
    err = "activation statistics have the wrong number of columns";
    return false;
  }
  if (hasRowProbabilities &&
      int64_t(weights.rowProbabilities.size()) < firstRow + rows) {
    err = "row probabilities have the wrong number of rows";
    return false;
  }

  std::vector<uint8_t> encoded(static_cast<size_t>(rowBytes * rows));
  std::string why;
  if (!formats::quantizeRows(format, values, encoded.data(), rows, cols,
                             hasImportance && weights.importanceInEncoder
                                 ? weights.meanSquares.data()
                                 : nullptr,
                             threads, &why)) {
    err = why;
    return false;
  }
  std::vector<float> decoded(static_cast<size_t>(rows * cols));
  formats::dequantizeRows(format, encoded.data(), decoded.data(), rows, cols,
                          threads);

  // Variance per column: the mean's share goes to the bias term.
  std::vector<double> columnWeight(static_cast<size_t>(cols), 1.0);
  if (hasImportance)
    for (int64_t c = 0; c < cols; ++c) {
      double m2 = weights.meanSquares[c];
      double mu = hasMeans ? weights.means[c] : 0.0;
      columnWeight[c] = std::max(0.0, m2 - mu * mu);
    }

  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<DamageTerms> partial(static_cast<size_t>(tasks));
  parallelTasks(tasks, threads, [&](int64_t task) {
    DamageTerms sums;
    int64_t r0 = task * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    for (int64_t r = r0; r < r1; ++r) {
      const float *w = values + r * cols;
      const float *q = decoded.data() + r * cols;
      double weighted = 0, plain = 0, dot = 0, norm = 0;
      for (int64_t c = 0; c < cols; ++c) {
        double e = double(w[c]) - double(q[c]);
        plain += e * e;
        weighted += columnWeight[c] * e * e;
        norm += double(w[c]) * double(w[c]);
        if (hasMeans)
          dot += double(weights.means[c]) * e;
      }
      double rowWeight =
          hasRowProbabilities ? weights.rowProbabilities[firstRow + r] : 1.0;
      sums.weighted += rowWeight * weighted;
      sums.bias += rowWeight * dot * dot;
      sums.plain += plain;
      sums.norm += norm;
    }
    partial[task] = sums;
  });
  for (const DamageTerms &p : partial) {
    terms.weighted += p.weighted;
    terms.bias += p.bias;
    terms.plain += p.plain;
    terms.norm += p.norm;
  }
  return true;
}

const std::vector<formats::Format> &defaultCandidateFormats() {
  using formats::Format;
  static const std::vector<Format> candidates = {
      Format::IQ1_S,   Format::IQ1_M,  Format::IQ2_XXS, Format::IQ2_XS,
      Format::IQ2_S,   Format::Q2_K,
      Format::IQ3_XXS, Format::IQ3_S,  Format::Q3_K,   Format::IQ4_XS,
      Format::Q4_0,    Format::IQ4_NL, Format::Q4_1,   Format::Q4_K,
      Format::Q5_0,    Format::Q5_1,   Format::Q5_K,   Format::Q6_K,
      Format::Q8_0,    Format::F16};
  return candidates;
}

} // namespace lowbit::analysis
