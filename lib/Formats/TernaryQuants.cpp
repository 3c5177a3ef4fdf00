//===- TernaryQuants.cpp - TQ1_0, TQ2_0 (BitNet b1.58 / TriLM)
//-------------===//
//
// 256-weight blocks of trits t in {-1, 0, 1}, x = t * d, d = f16 absmax.
//
//   TQ1_0  48 B of 5 trits each | 4 B of 4 trits each | f16 d   (1.6875 bpw)
//     A byte holds trits t0..t4 as v = sum (t_i + 1) 3^(4 - i), stored as
//     ceil(v * 256 / 243) so that trit i is the top base-3 digit of the byte
//     times 3^i: ((uint8_t)(byte * 3^i) * 3) >> 8. Bytes 0-31 cover weights
//     0-159 (byte m: weights m + 32 i), bytes 32-47 weights 160-239 (byte m:
//     160 + m + 16 i), the 4 trailing bytes weights 240-255 (byte j: 240 + j
//     + 4 i, the fifth trit zero).
//   TQ2_0  64 B of 2-bit codes t + 1 | f16 d                    (2.0625 bpw)
//     Byte 32 h + m holds weights 128 h + m + 32 i in bits 2i..2i+1.
//
// The encoders are ggml's reference (round |x| / absmax to the nearest trit):
// the formats exist to carry models trained ternary, where that is exact.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"

namespace lowbit::formats::detail {
namespace {

constexpr int kBlock = 256;
constexpr int kTQ1Bytes = 54;
constexpr int kTQ2Bytes = 66;
constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};

/// Absmax scale stored as f16; returns 1/d (0 when the block is all zero)
/// computed from the unrounded d, as ggml.
float storeAbsMaxScale(const float *x, uint8_t *scaleOut) {
  float amax = 0;
  for (int j = 0; j < kBlock; ++j)
    amax = std::fmax(amax, std::fabs(x[j]));
  storeHalfScale(scaleOut, amax);
  return amax != 0 ? 1.0f / amax : 0.0f;
}

/// x * id rounded half away from zero to {-1, 0, 1}, plus one.
inline int tritCode(float v) { return 1 + (v >= 0.5f) - (v <= -0.5f); }

/// Packs trit codes c0..c(count-1) base 3 (first most significant), then
/// scales to a byte with ceiling division so decoding is a multiply.
inline uint8_t packTrits(const int *codes, int count) {
  unsigned v = 0;
  for (int i = 0; i < count; ++i)
    v = v * 3 + codes[i];
  for (int i = count; i < 5; ++i)
    v *= 3;
  return static_cast<uint8_t>((v * 256 + 242) / 243);
}

inline float tritValue(uint8_t byte, int digit, float d) {
  uint8_t shifted = static_cast<uint8_t>(byte * kPow3[digit]);
  int code = (shifted * 3) >> 8;
  return static_cast<float>(code - 1) * d;
}

} // namespace

void encode_tq1_0(const float *src, void *dst, int64_t n,
                  const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float *x = src + kBlock * b;
    uint8_t *blk = out + kTQ1Bytes * b;
    const float id = storeAbsMaxScale(x, blk + 52);
    int codes[5];
    for (int m = 0; m < 32; ++m) {
      for (int i = 0; i < 5; ++i)
        codes[i] = tritCode(x[m + 32 * i] * id);
      blk[m] = packTrits(codes, 5);
    }
    for (int m = 0; m < 16; ++m) {
      for (int i = 0; i < 5; ++i)
        codes[i] = tritCode(x[160 + m + 16 * i] * id);
      blk[32 + m] = packTrits(codes, 5);
    }
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 4; ++i)
        codes[i] = tritCode(x[240 + j + 4 * i] * id);
      blk[48 + j] = packTrits(codes, 4);
    }
  }
}

void decode_tq1_0(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t *blk = in + kTQ1Bytes * b;
    float *y = dst + kBlock * b;
    const float d = loadHalf(blk + 52);
    for (int i = 0; i < 5; ++i)
      for (int m = 0; m < 32; ++m)
        y[32 * i + m] = tritValue(blk[m], i, d);
    for (int i = 0; i < 5; ++i)
      for (int m = 0; m < 16; ++m)
        y[160 + 16 * i + m] = tritValue(blk[32 + m], i, d);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        y[240 + 4 * i + j] = tritValue(blk[48 + j], i, d);
  }
}

void encode_tq2_0(const float *src, void *dst, int64_t n,
                  const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float *x = src + kBlock * b;
    uint8_t *blk = out + kTQ2Bytes * b;
    const float id = storeAbsMaxScale(x, blk + 64);
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 32; ++m) {
        unsigned byte = 0;
        for (int i = 0; i < 4; ++i)
          byte |= tritCode(x[128 * h + m + 32 * i] * id) << (2 * i);
        blk[32 * h + m] = static_cast<uint8_t>(byte);
      }
  }
}

void decode_tq2_0(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const uint8_t *blk = in + kTQ2Bytes * b;
    float *y = dst + kBlock * b;
    const float d = loadHalf(blk + 64);
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i)
        for (int m = 0; m < 32; ++m) {
          int code = (blk[32 * h + m] >> (2 * i)) & 3;
          y[128 * h + 32 * i + m] = static_cast<float>(code - 1) * d;
        }
  }
}

} // namespace lowbit::formats::detail
