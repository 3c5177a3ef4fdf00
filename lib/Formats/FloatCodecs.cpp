//===- FloatCodecs.cpp - F32, F16, BF16
//------------------------------------===//
//
// Plain element-wise conversions, round to nearest even (what ggml, F16C and
// PyTorch do). The row API rejects values that would become Inf, so the
// encoders never see them.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"

namespace lowbit::formats::detail {

void decode_f32(const void *src, float *dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void encode_f32(const float *src, void *dst, int64_t n,
                const float * /*importance*/) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void decode_f16(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n; ++i)
    dst[i] = fp16ToFp32(loadU16(in + 2 * i));
}
void encode_f16(const float *src, void *dst, int64_t n,
                const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t i = 0; i < n; ++i)
    storeU16(out + 2 * i, fp32ToFp16(src[i]));
}

void decode_bf16(const void *src, float *dst, int64_t n) {
  const uint8_t *in = static_cast<const uint8_t *>(src);
  for (int64_t i = 0; i < n; ++i)
    dst[i] = bf16ToFp32(loadU16(in + 2 * i));
}
void encode_bf16(const float *src, void *dst, int64_t n,
                 const float * /*importance*/) {
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (int64_t i = 0; i < n; ++i)
    storeU16(out + 2 * i, fp32ToBf16(src[i]));
}

} // namespace lowbit::formats::detail
