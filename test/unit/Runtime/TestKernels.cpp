//===- TestKernels.cpp - A hand-written model.so for runtime tests --------===//
//
// Stands in for generated code so the runtime's kernel path (dlopen, symbol
// lookup, activation quantization, row splitting, interleaved layouts) is
// tested without the compiler: scalar kernels for F32 and Q8_0 weights with
// 64- and 172-column rows, plain and 4-row interleaved, and lb_get_program,
// which returns the program the test assembled (test_set_program) in place
// of a generated one. The F32 kernels sum
// in k order without FMA (built with -ffp-contract=off), as the reference
// executor does, so their results are bit-identical to it.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Formats/Formats.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/Target/KernelABI.h"

#include <cstring>

using namespace lowbit::formats;

#ifndef TEST_ABI_VERSION
#define TEST_ABI_VERSION LB_KERNEL_ABI_VERSION
#endif

namespace {

template <int K, int R>
void mmF32(const void *w, const float *x, const void *, float *y,
           int64_t tokens, int64_t xStride, int64_t yStride, int64_t r0,
           int64_t r1) {
  const uint8_t *base = static_cast<const uint8_t *>(w);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        float wk;
        std::memcpy(&wk, base + packedBlockOffset(Format::F32, K, R, r, k), 4);
        acc += x[t * xStride + k] * wk;
      }
      y[t * yStride + r] = acc;
    }
}

float f16(const uint8_t *p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  float out;
  dequantizeRow(Format::F16, &h, &out, 1);
  return out;
}

// Q8_0 weights against Q8_0 activations: integer block dot products.
template <int K, int R>
void mmQ8(const void *w, const float *, const void *xq, float *y,
          int64_t tokens, int64_t, int64_t yStride, int64_t r0, int64_t r1) {
  const uint8_t *base = static_cast<const uint8_t *>(w);
  const uint8_t *act = static_cast<const uint8_t *>(xq);
  constexpr int64_t blocks = K / 32, rowBytes = blocks * 34;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      float acc = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t *wb = base + packedBlockOffset(Format::Q8_0, K, R, r, b);
        const uint8_t *ab = act + t * rowBytes + b * 34;
        int32_t dot = 0;
        for (int i = 0; i < 32; ++i)
          dot += int32_t(int8_t(wb[2 + i])) * int32_t(int8_t(ab[2 + i]));
        acc += f16(wb) * f16(ab) * float(dot);
      }
      y[t * yStride + r] = acc;
    }
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) int32_t lb_abi_version(void) {
  return TEST_ABI_VERSION;
}

__attribute__((visibility("default"))) void
test_quant_q8_0(const float *x, void *xq, int64_t tokens, int64_t cols,
                int64_t xStride) {
  const uint64_t rb = rowBytes(info(Format::Q8_0), cols);
  for (int64_t t = 0; t < tokens; ++t)
    quantizeRow(Format::Q8_0, x + t * xStride,
                static_cast<uint8_t *>(xq) + t * rb, cols, nullptr);
}

#define F32_KERNEL(K, R)                                                       \
  __attribute__((visibility("default"))) void test_mm_f32_k##K##_r##R(         \
      const void *w, const float *x, const void *xq, float *y, int64_t t,      \
      int64_t xs, int64_t ys, int64_t r0, int64_t r1) {                        \
    mmF32<K, R>(w, x, xq, y, t, xs, ys, r0, r1);                               \
  }
#define Q8_KERNEL(K, R)                                                        \
  __attribute__((visibility("default"))) void test_mm_q8_0_k##K##_r##R(        \
      const void *w, const float *x, const void *xq, float *y, int64_t t,      \
      int64_t xs, int64_t ys, int64_t r0, int64_t r1) {                        \
    mmQ8<K, R>(w, x, xq, y, t, xs, ys, r0, r1);                                \
  }
static const lb_program *testProgram = nullptr;

__attribute__((visibility("default"))) const lb_program *
lb_get_program(void) {
  return testProgram;
}

__attribute__((visibility("default"))) void
test_set_program(const lb_program *program) {
  testProgram = program;
}

F32_KERNEL(64, 1)
F32_KERNEL(64, 4)
F32_KERNEL(172, 1)
F32_KERNEL(172, 4)
Q8_KERNEL(64, 1)
Q8_KERNEL(64, 4)

} // extern "C"
