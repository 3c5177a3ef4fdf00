//===- ActivationQuants.cpp - Q8_K, the K-quant activation format ---------===//
//
// ggml's block_q8_K (ggml-common.h), what K-quant dot products multiply
// against: f32 d | 256 x int8 q | 16 x int16 bsums (sum of each 16 q), 292
// bytes, x = q * d. The encoder is ggml's quantize_row_q8_K_ref: the value
// of largest magnitude (the first on ties) maps to -127, q = min(127,
// round-to-nearest-even(x * -127 / max)), d = 1 / (-127 / max). An all-zero
// block gets d = 0 and zero sums (ggml leaves its sums unset).
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"

#include <cmath>
#include <cstring>

namespace lowbit::formats::detail {
namespace {
constexpr int kSuper = 256, kBytes = 292, kQs = 4, kSums = 260;
} // namespace

void decode_q8_k(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kSuper; ++b, in += kBytes, dst += kSuper) {
    float d;
    std::memcpy(&d, in, 4);
    const int8_t *q = reinterpret_cast<const int8_t *>(in + kQs);
    for (int j = 0; j < kSuper; ++j)
      dst[j] = d * q[j];
  }
}

void encode_q8_k(const float *src, void *dst, int64_t n,
                 const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / kSuper; ++b, out += kBytes, src += kSuper) {
    float max = 0, amax = 0;
    for (int j = 0; j < kSuper; ++j) {
      const float ax = std::fabs(src[j]);
      if (ax > amax) {
        amax = ax;
        max = src[j];
      }
    }
    std::memset(out, 0, kBytes);
    if (!(amax > 0))
      continue;
    const float iscale = -127.f / max;
    int8_t *q = reinterpret_cast<int8_t *>(out + kQs);
    for (int j = 0; j < kSuper; ++j) {
      const int v = roundNearestEven(iscale * src[j]);
      q[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < kSuper / 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i)
        sum += q[16 * j + i];
      storeU16(out + kSums + 2 * j, static_cast<uint16_t>(sum));
    }
    const float d = 1 / iscale;
    std::memcpy(out, &d, 4);
  }
}

} // namespace lowbit::formats::detail
