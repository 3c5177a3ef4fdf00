//===- Kernels.h - Inner loops of the reference executor --------*- C++ -*-===//
//
// Internal. The matmul works on panels: kc consecutive k of kPanelWidth weight
// rows, transposed to [kc][kPanelWidth], so the kernel accumulates
// y[b][j] += x[b][k] * panel[k][j] for k in order. Each output is the plain
// in-order sum over k, so neither the blocking nor the vector width (SSE2
// baseline, AVX2 or AVX-512 when the CPU has them; never FMA) changes a single
// bit.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_EXEC_KERNELS_H
#define LOWBIT_LIB_EXEC_KERNELS_H

#include <cstdint>

namespace lowbit::exec::kernels {

constexpr int kPanelWidth = 16;
/// k per panel; a multiple of every block size (1, 32, 64, 128, 256).
constexpr int64_t kPanelDepth = 256;

/// y[b * ldy + j] (+)= sum_{k < kc} x[b * ldx + k] * panel[k * ldp + j] for
/// b < rows, j < cols (cols <= 16), k in increasing order. `accumulate`
/// false starts from zero. All 16 panel columns are read (those >= cols
/// must be readable; their results are dropped).
void panelMatmul(const float *x, int64_t ldx, int64_t rows, const float *panel,
                 int64_t ldp, int64_t kc, float *y, int64_t ldy, int cols,
                 bool accumulate);

/// panel[k * 16 + j] = rows[j][k] for k < kc, j < 16.
void transposeToPanel(const float *const rows[kPanelWidth], int64_t kc,
                      float *panel);

} // namespace lowbit::exec::kernels

#endif // LOWBIT_LIB_EXEC_KERNELS_H
