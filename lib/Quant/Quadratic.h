//===- Quadratic.h - e^T H e for the quantization methods -----------------===//
//
// The output error of a weight row, e^T H e, is the inner loop of GPTQ's RTN
// guard and of AWQ's search. Eight float partial sums let the compiler
// vectorise the dot products (a single running sum is a serial dependency
// it may not reorder); each row's total is accumulated in double.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_QUANT_QUADRATIC_H
#define LOWBIT_LIB_QUANT_QUADRATIC_H

#include <cstdint>

namespace lowbit::quant::detail {

inline float dot(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      acc[j] += a[i + j] * b[i + j];
  float sum = 0;
  for (; i < n; ++i)
    sum += a[i] * b[i];
  for (int j = 0; j < 8; ++j)
    sum += acc[j];
  return sum;
}

/// e^T H e for H k x k row-major.
inline double quadraticForm(const float *h, const float *e, int64_t k) {
  double sum = 0;
  for (int64_t a = 0; a < k; ++a)
    if (e[a] != 0.0f)
      sum += double(e[a]) * dot(h + a * k, e, k);
  return sum;
}

} // namespace lowbit::quant::detail

#endif // LOWBIT_LIB_QUANT_QUADRATIC_H
