//===- Kernels.cpp - Inner loops of the reference executor ----------------===//
//
// Built with -ffp-contract=off: a multiply and an add are never fused, so the
// SSE2 and AVX2 kernels round exactly like the scalar definition.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

namespace lowbit::exec::kernels {

namespace {

typedef float v4 __attribute__((vector_size(16)));

inline v4 load4(const float *p) {
  v4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store4(float *p, v4 v) { std::memcpy(p, &v, sizeof(v)); }

/// Loads (or zeroes) the 16 outputs of row `y`, padding past `cols`.
inline void loadRow(const float *y, int cols, bool accumulate, float *dst) {
  if (!accumulate) {
    std::memset(dst, 0, kPanelWidth * sizeof(float));
    return;
  }
  for (int j = 0; j < kPanelWidth; ++j)
    dst[j] = j < cols ? y[j] : 0.0f;
}

inline void storeRow(float *y, int cols, const float *src) {
  std::memcpy(y, src, cols * sizeof(float));
}

// Two rows of x against the 16-wide panel: 8 accumulators of 4 lanes.
void panelMatmulGeneric(const float *x, int64_t ldx, int64_t rows,
                        const float *panel, int64_t ldp, int64_t kc, float *y,
                        int64_t ldy, int cols, bool accumulate) {
  int64_t b = 0;
  alignas(16) float buf[2][kPanelWidth];
  for (; b + 2 <= rows; b += 2) {
    loadRow(y + b * ldy, cols, accumulate, buf[0]);
    loadRow(y + (b + 1) * ldy, cols, accumulate, buf[1]);
    v4 a0 = load4(buf[0]), a1 = load4(buf[0] + 4), a2 = load4(buf[0] + 8),
       a3 = load4(buf[0] + 12);
    v4 c0 = load4(buf[1]), c1 = load4(buf[1] + 4), c2 = load4(buf[1] + 8),
       c3 = load4(buf[1] + 12);
    const float *x0 = x + b * ldx, *x1 = x0 + ldx;
    for (int64_t k = 0; k < kc; ++k) {
      const float *p = panel + k * ldp;
      v4 w0 = load4(p), w1 = load4(p + 4), w2 = load4(p + 8),
         w3 = load4(p + 12);
      v4 s = {x0[k], x0[k], x0[k], x0[k]};
      a0 += s * w0;
      a1 += s * w1;
      a2 += s * w2;
      a3 += s * w3;
      v4 t = {x1[k], x1[k], x1[k], x1[k]};
      c0 += t * w0;
      c1 += t * w1;
      c2 += t * w2;
      c3 += t * w3;
    }
    store4(buf[0], a0);
    store4(buf[0] + 4, a1);
    store4(buf[0] + 8, a2);
    store4(buf[0] + 12, a3);
    store4(buf[1], c0);
    store4(buf[1] + 4, c1);
    store4(buf[1] + 8, c2);
    store4(buf[1] + 12, c3);
    storeRow(y + b * ldy, cols, buf[0]);
    storeRow(y + (b + 1) * ldy, cols, buf[1]);
  }
  for (; b < rows; ++b) {
    loadRow(y + b * ldy, cols, accumulate, buf[0]);
    v4 a0 = load4(buf[0]), a1 = load4(buf[0] + 4), a2 = load4(buf[0] + 8),
       a3 = load4(buf[0] + 12);
    const float *x0 = x + b * ldx;
    for (int64_t k = 0; k < kc; ++k) {
      const float *p = panel + k * ldp;
      v4 s = {x0[k], x0[k], x0[k], x0[k]};
      a0 += s * load4(p);
      a1 += s * load4(p + 4);
      a2 += s * load4(p + 8);
      a3 += s * load4(p + 12);
    }
    store4(buf[0], a0);
    store4(buf[0] + 4, a1);
    store4(buf[0] + 8, a2);
    store4(buf[0] + 12, a3);
    storeRow(y + b * ldy, cols, buf[0]);
  }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define LOWBIT_HAVE_AVX2_KERNEL 1
typedef float v8 __attribute__((vector_size(32)));

// Four rows against the panel with 256-bit vectors: 8 accumulators.
__attribute__((target("avx2"))) void
panelMatmulAvx2(const float *x, int64_t ldx, int64_t rows, const float *panel,
                int64_t ldp, int64_t kc, float *y, int64_t ldy, int cols,
                bool accumulate) {
  constexpr int MR = 4;
  alignas(32) float buf[MR][kPanelWidth];
  int64_t b = 0;
  for (; b + MR <= rows; b += MR) {
    v8 acc[MR][2];
    for (int r = 0; r < MR; ++r) {
      loadRow(y + (b + r) * ldy, cols, accumulate, buf[r]);
      std::memcpy(&acc[r][0], buf[r], 32);
      std::memcpy(&acc[r][1], buf[r] + 8, 32);
    }
    const float *xr[MR];
    for (int r = 0; r < MR; ++r)
      xr[r] = x + (b + r) * ldx;
    for (int64_t k = 0; k < kc; ++k) {
      v8 w0, w1;
      std::memcpy(&w0, panel + k * ldp, 32);
      std::memcpy(&w1, panel + k * ldp + 8, 32);
      for (int r = 0; r < MR; ++r) {
        float xv = xr[r][k];
        v8 s = {xv, xv, xv, xv, xv, xv, xv, xv};
        acc[r][0] += s * w0;
        acc[r][1] += s * w1;
      }
    }
    for (int r = 0; r < MR; ++r) {
      std::memcpy(buf[r], &acc[r][0], 32);
      std::memcpy(buf[r] + 8, &acc[r][1], 32);
      storeRow(y + (b + r) * ldy, cols, buf[r]);
    }
  }
  if (b < rows)
    panelMatmulGeneric(x + b * ldx, ldx, rows - b, panel, ldp, kc, y + b * ldy,
                       ldy, cols, accumulate);
}

typedef float v16 __attribute__((vector_size(64)));

// Eight rows against the panel, one 512-bit vector per row.
__attribute__((target("avx512f"))) void
panelMatmulAvx512(const float *x, int64_t ldx, int64_t rows, const float *panel,
                  int64_t ldp, int64_t kc, float *y, int64_t ldy, int cols,
                  bool accumulate) {
  constexpr int MR = 8;
  alignas(64) float buf[kPanelWidth];
  int64_t b = 0;
  for (; b + MR <= rows; b += MR) {
    v16 acc[MR];
    const float *xr[MR];
    for (int r = 0; r < MR; ++r) {
      loadRow(y + (b + r) * ldy, cols, accumulate, buf);
      std::memcpy(&acc[r], buf, 64);
      xr[r] = x + (b + r) * ldx;
    }
    for (int64_t k = 0; k < kc; ++k) {
      v16 w;
      std::memcpy(&w, panel + k * ldp, 64);
      for (int r = 0; r < MR; ++r) {
        const float xv = xr[r][k];
        v16 s = {xv, xv, xv, xv, xv, xv, xv, xv,
                 xv, xv, xv, xv, xv, xv, xv, xv};
        acc[r] += s * w;
      }
    }
    for (int r = 0; r < MR; ++r) {
      std::memcpy(buf, &acc[r], 64);
      storeRow(y + (b + r) * ldy, cols, buf);
    }
  }
  if (b < rows)
    panelMatmulAvx2(x + b * ldx, ldx, rows - b, panel, ldp, kc, y + b * ldy,
                    ldy, cols, accumulate);
}

/// The widest vector path to use: LOWBIT_SIMD=scalar|avx2|avx512 caps it
/// (the determinism test runs every path on one machine), the CPU decides
/// otherwise. 0 generic, 1 AVX2, 2 AVX-512.
int simdLevel() {
  static const int level = [] {
    int cpu = __builtin_cpu_supports("avx512f") ? 2
              : __builtin_cpu_supports("avx2")  ? 1
                                                : 0;
    if (const char *cap = std::getenv("LOWBIT_SIMD")) {
      const std::string c = cap;
      cpu = std::min(cpu, c == "scalar" ? 0 : c == "avx2" ? 1 : 2);
    }
    return cpu;
  }();
  return level;
}
bool cpuHasAvx2() { return simdLevel() >= 1; }
bool cpuHasAvx512() { return simdLevel() >= 2; }
#endif

} // namespace

void panelMatmul(const float *x, int64_t ldx, int64_t rows, const float *panel,
                 int64_t ldp, int64_t kc, float *y, int64_t ldy, int cols,
                 bool accumulate) {
#ifdef LOWBIT_HAVE_AVX2_KERNEL
  if (cpuHasAvx512()) {
    panelMatmulAvx512(x, ldx, rows, panel, ldp, kc, y, ldy, cols, accumulate);
    return;
  }
  if (cpuHasAvx2()) {
    panelMatmulAvx2(x, ldx, rows, panel, ldp, kc, y, ldy, cols, accumulate);
    return;
  }
#endif
  panelMatmulGeneric(x, ldx, rows, panel, ldp, kc, y, ldy, cols, accumulate);
}

void transposeToPanel(const float *const rows[kPanelWidth], int64_t kc,
                      float *panel) {
  int64_t k = 0;
#if defined(__clang__)
  // 4x4 blocks through registers: loads stay contiguous along each row.
  for (; k + 4 <= kc; k += 4) {
    for (int j = 0; j < kPanelWidth; j += 4) {
      v4 r0 = load4(rows[j] + k), r1 = load4(rows[j + 1] + k),
         r2 = load4(rows[j + 2] + k), r3 = load4(rows[j + 3] + k);
      v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
      v4 t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
      v4 t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
      v4 t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
      float *p = panel + k * kPanelWidth + j;
      store4(p, __builtin_shufflevector(t0, t2, 0, 1, 4, 5));
      store4(p + kPanelWidth, __builtin_shufflevector(t0, t2, 2, 3, 6, 7));
      store4(p + 2 * kPanelWidth, __builtin_shufflevector(t1, t3, 0, 1, 4, 5));
      store4(p + 3 * kPanelWidth, __builtin_shufflevector(t1, t3, 2, 3, 6, 7));
    }
  }
#endif
  for (; k < kc; ++k)
    for (int j = 0; j < kPanelWidth; ++j)
      panel[k * kPanelWidth + j] = rows[j][k];
}

} // namespace lowbit::exec::kernels
