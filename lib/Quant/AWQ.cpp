//===- AWQ.cpp - Activation-aware per-channel weight scaling --------------===//
#include "lowbit/Quant/AWQ.h"
#include "lowbit/Support/Parallel.h"
#include "Quadratic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

using namespace lowbit;
using namespace lowbit::quant;
using formats::Format;

std::vector<float> lowbit::quant::awqScales(const std::vector<float> &a,
                                            double alpha) {
  std::vector<float> s(a.size(), 1.0f);
  if (a.empty() || alpha == 0)
    return s;
  double maxA = 0;
  for (float v : a)
    maxA = std::max(maxA, std::isfinite(v) ? double(v) : 0.0);
  if (!(maxA > 0))
    return s;
  double floor = 1e-5 * maxA, lo = std::numeric_limits<double>::infinity(),
         hi = 0;
  std::vector<double> raw(a.size());
  for (size_t c = 0; c < a.size(); ++c) {
    double v = std::isfinite(a[c]) ? std::max(double(a[c]), floor) : floor;
    raw[c] = std::pow(v, alpha);
    lo = std::min(lo, raw[c]);
    hi = std::max(hi, raw[c]);
  }
  double norm = std::sqrt(lo * hi);
  for (size_t c = 0; c < a.size(); ++c)
    s[c] = static_cast<float>(raw[c] / norm);
  return s;
}

bool lowbit::quant::scaledQuantError(Format format, const float *w,
                                     int64_t rows, int64_t cols,
                                     const float *scales, const float *hessian,
                                     int64_t maxRows, int threads,
                                     double &result, std::string &error) {
  result = 0;
  if (formats::info(format).kind == formats::FormatKind::Float)
    return true;
  std::vector<int64_t> picked;
  if (maxRows > 0 && rows > maxRows) {
    for (int64_t i = 0; i < maxRows; ++i)
      picked.push_back(i * rows / maxRows);
  } else {
    picked.resize(rows);
    std::iota(picked.begin(), picked.end(), 0);
  }
  // The scaled weight reads x / s: its importance is diag(H) / s^2.
  std::vector<float> importance(cols);
  for (int64_t c = 0; c < cols; ++c) {
    double s = scales ? scales[c] : 1.0;
    importance[c] = static_cast<float>(
        std::max(double(hessian[c * cols + c]), 0.0) / (s * s));
  }
  const int64_t n = static_cast<int64_t>(picked.size());
  const int64_t chunk = 16;
  const int64_t tasks = (n + chunk - 1) / chunk;
  const uint64_t rowBytes = formats::rowBytes(formats::info(format), cols);
  std::vector<double> partial(tasks, 0.0);
  std::mutex mutex;
  std::string firstError;
  ::lowbit::parallelFor(tasks, threads, [&](int64_t task, int) {
    int64_t i0 = task * chunk, count = std::min(chunk, n - i0);
    std::vector<float> in(count * cols), dec(count * cols);
    std::vector<uint8_t> bytes(count * rowBytes);
    for (int64_t i = 0; i < count; ++i) {
      const float *src = w + picked[i0 + i] * cols;
      for (int64_t c = 0; c < cols; ++c)
        in[i * cols + c] = scales ? src[c] * scales[c] : src[c];
    }
    std::string why;
    if (!formats::quantizeRows(format, in.data(), bytes.data(), count, cols,
                               importance.data(), 1, &why)) {
      std::lock_guard<std::mutex> lock(mutex);
      if (firstError.empty())
        firstError = why;
      return;
    }
    formats::dequantizeRows(format, bytes.data(), dec.data(), count, cols, 1);
    std::vector<float> e(cols);
    double sum = 0;
    for (int64_t i = 0; i < count; ++i) {
      const float *src = w + picked[i0 + i] * cols;
      for (int64_t c = 0; c < cols; ++c)
        e[c] = scales ? src[c] - dec[i * cols + c] / scales[c]
                      : src[c] - dec[i * cols + c];
      sum += detail::quadraticForm(hessian, e.data(), cols);
    }
    partial[task] = sum;
  });
  if (!firstError.empty()) {
    error = firstError;
    return false;
  }
  result = std::accumulate(partial.begin(), partial.end(), 0.0);
  // Report on the scale of the whole weight when rows were sampled.
  if (n > 0 && n < rows)
    result *= double(rows) / double(n);
  return true;
}

bool lowbit::quant::searchAWQ(const std::vector<AWQWeight> &group, int64_t cols,
                              const std::vector<float> &activation,
                              const float *hessian, const AWQOptions &options,
                              AWQResult &result, std::string &error) {
  if (static_cast<int64_t>(activation.size()) != cols) {
    error = "activation statistics have " + std::to_string(activation.size()) +
            " channels, the weights " + std::to_string(cols) + " columns";
    return false;
  }
  int points = std::max(options.gridPoints, 1);
  result = AWQResult();
  double bestError = std::numeric_limits<double>::infinity();
  for (int i = 0; i < points; ++i) {
    double alpha = points == 1 ? 0.0 : double(i) / double(points - 1);
    std::vector<float> s = awqScales(activation, alpha);
    double total = 0;
    for (const AWQWeight &w : group) {
      double e;
      std::string why;
      if (!scaledQuantError(w.format, w.data, w.rows, cols,
                            alpha == 0 ? nullptr : s.data(), hessian,
                            options.maxSearchRows, options.threads, e, why)) {
        error = "tensor '" + w.name + "': " + why;
        return false;
      }
      total += e;
    }
    result.alphas.push_back(alpha);
    result.errors.push_back(total);
    if (i == 0)
      result.rtnError = total;
    // Strictly better only: ties keep the smaller alpha (RTN at worst).
    if (total < bestError) {
      bestError = total;
      result.alpha = alpha;
      result.scales = std::move(s);
    }
  }
  result.error = bestError;
  return true;
}

void lowbit::quant::scaleColumns(float *w, int64_t rows, int64_t cols,
                                 const float *s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[r * cols + c] *= s[c];
}

void lowbit::quant::divideRows(float *w, int64_t rows, int64_t cols,
                               const float *s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[r * cols + c] /= s[r];
}

std::vector<float> lowbit::quant::tieToKVHeads(const std::vector<float> &a,
                                               int64_t heads, int64_t kvHeads,
                                               int64_t headDim) {
  int64_t group = heads / kvHeads;
  std::vector<float> out(kvHeads * headDim, 0.0f);
  for (int64_t kv = 0; kv < kvHeads; ++kv)
    for (int64_t d = 0; d < headDim; ++d) {
      double sum = 0;
      for (int64_t g = 0; g < group; ++g) {
        double v = a[(kv * group + g) * headDim + d];
        sum += v * v;
      }
      out[kv * headDim + d] = static_cast<float>(std::sqrt(sum / group));
    }
  return out;
}

std::vector<float> lowbit::quant::expandFromKVHeads(const std::vector<float> &s,
                                                    int64_t heads,
                                                    int64_t kvHeads,
                                                    int64_t headDim) {
  int64_t group = heads / kvHeads;
  std::vector<float> out(heads * headDim);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t d = 0; d < headDim; ++d)
      out[h * headDim + d] = s[(h / group) * headDim + d];
  return out;
}
