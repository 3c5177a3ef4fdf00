//===- AffineForm.cpp - Formats as integer codes, scales and zeros --------===//
//
// Q4_0, Q4_1, Q8_0, Q2_K, Q4_K and the I4_*/I8_* group formats decode every
// group as an affine map of unsigned integer codes; this rewrites a row in
// that form (for ONNX Runtime's MatMulNBits, which stores exactly that). The
// block layouts are BlockLayouts.h's and Formats.h's, read the way the row
// decoders read them.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "QuantMath.h"
#include "lowbit/Formats/BlockLayouts.h"

#include <cassert>
#include <cstring>

namespace lowbit::formats {
using namespace detail;

bool affineForm(Format format, AffineForm &form) {
  switch (format) {
  case Format::Q4_0:
    form = {4, 32, true, true};
    return true;
  case Format::Q4_1:
    form = {4, 32, false, false};
    return true;
  case Format::Q8_0:
    form = {8, 32, true, true};
    return true;
  case Format::Q2_K:
    form = {2, 16, false, false};
    return true;
  case Format::Q4_K:
    form = {4, 32, false, false};
    return true;
  case Format::I4_SYM_G32:
  case Format::I4_SYM_G64:
  case Format::I4_SYM_G128:
    form = {4, info(format).blockSize, true, true};
    return true;
  case Format::I4_ASYM_G32:
  case Format::I4_ASYM_G64:
  case Format::I4_ASYM_G128:
    form = {4, info(format).blockSize, true, false};
    return true;
  case Format::I8_SYM_G32:
  case Format::I8_SYM_G64:
  case Format::I8_SYM_G128:
    form = {8, info(format).blockSize, true, true};
    return true;
  case Format::I8_ASYM_G32:
  case Format::I8_ASYM_G64:
  case Format::I8_ASYM_G128:
    form = {8, info(format).blockSize, true, false};
    return true;
  default:
    return false;
  }
}

uint64_t onnxWeightBytes(Format format, int64_t rows, int64_t cols) {
  if (format == Format::F32 || format == Format::F16 || format == Format::BF16)
    return uint64_t(rows) * cols * (format == Format::F32 ? 4 : 2);
  AffineForm form;
  if (!affineForm(format, form) || cols % form.groupSize != 0)
    return 0;
  const uint64_t groups = uint64_t(cols) / form.groupSize;
  uint64_t perRow = uint64_t(cols) * form.bits / 8 + groups * sizeof(float);
  if (!form.defaultZeros)
    perRow += form.integerZeros ? (groups * form.bits + 7) / 8
                                : groups * sizeof(float);
  return perRow * uint64_t(rows);
}

namespace {

/// A group decoding as x = scale * q - offset (Q4_1 with offset -m, the
/// K-quants with offset dmin * m): zero = offset / scale. A zero scale with a
/// non-zero offset decodes to -offset whatever the codes say; codes 0,
/// scale 1, zero `offset` keep that value.
void affineGroup(float scale, float offset, uint8_t *codes, int count,
                 float &scaleOut, float &zeroOut) {
  if (scale != 0.0f) {
    scaleOut = scale;
    zeroOut = offset / scale;
    return;
  }
  std::memset(codes, 0, count);
  scaleOut = 1.0f;
  zeroOut = offset;
}

} // namespace

void decodeAffineRow(Format format, const void *src, int64_t n,
                     uint8_t *codes, float *scales, float *zeros) {
  AffineForm form;
  [[maybe_unused]] bool known = affineForm(format, form);
  assert(known && n % info(format).blockSize == 0 && "no affine form");
  const uint8_t *in = static_cast<const uint8_t *>(src);
  const int64_t blocks = n / info(format).blockSize;
  const float defaultZero = float(1u << (form.bits - 1));
  switch (format) {
  case Format::Q4_0:
  case Format::Q4_1:
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t *c = codes + 32 * b;
      const uint8_t *qs;
      if (format == Format::Q4_0) {
        const auto &blk = reinterpret_cast<const blocks::Q4_0 *>(in)[b];
        qs = blk.qs;
        scales[b] = fp16ToFp32(blk.d);
        zeros[b] = defaultZero;
      } else {
        const auto &blk = reinterpret_cast<const blocks::Q4_1 *>(in)[b];
        qs = blk.qs;
      }
      // Element j in the low nibble of byte j, element j + 16 in the high.
      for (int j = 0; j < 16; ++j) {
        c[j] = qs[j] & 0xF;
        c[j + 16] = qs[j] >> 4;
      }
      if (format == Format::Q4_1) {
        const auto &blk = reinterpret_cast<const blocks::Q4_1 *>(in)[b];
        affineGroup(fp16ToFp32(blk.d), -fp16ToFp32(blk.m), c, 32, scales[b],
                    zeros[b]);
      }
    }
    return;
  case Format::Q8_0:
    for (int64_t b = 0; b < blocks; ++b) {
      const auto &blk = reinterpret_cast<const blocks::Q8_0 *>(in)[b];
      for (int j = 0; j < 32; ++j)
        codes[32 * b + j] = uint8_t(blk.qs[j] + 128);
      scales[b] = fp16ToFp32(blk.d);
      zeros[b] = defaultZero;
    }
    return;
  case Format::Q2_K:
    for (int64_t b = 0; b < blocks; ++b) {
      const auto &blk = reinterpret_cast<const blocks::Q2_K *>(in)[b];
      const float d = fp16ToFp32(blk.d), dmin = fp16ToFp32(blk.dmin);
      for (int j = 0; j < 16; ++j) {
        const uint8_t sc = blk.scales[j];
        const uint8_t *q = blk.qs + (j / 8) * 32 + (j % 2) * 16;
        const int shift = 2 * ((j % 8) / 2);
        uint8_t *c = codes + 256 * b + 16 * j;
        for (int l = 0; l < 16; ++l)
          c[l] = (q[l] >> shift) & 3;
        affineGroup(d * (sc & 0xF), dmin * (sc >> 4), c, 16,
                    scales[16 * b + j], zeros[16 * b + j]);
      }
    }
    return;
  case Format::Q4_K:
    for (int64_t b = 0; b < blocks; ++b) {
      const auto &blk = reinterpret_cast<const blocks::Q4_K *>(in)[b];
      const float d = fp16ToFp32(blk.d), dmin = fp16ToFp32(blk.dmin);
      for (int g = 0; g < 8; ++g) {
        uint8_t sc, m;
        unpackScaleMin(g, blk.scales, sc, m);
        // Sub-blocks 2k and 2k + 1 share bytes 32k..32k+31 of qs: low and
        // high nibbles.
        const uint8_t *q = blk.qs + 32 * (g / 2);
        uint8_t *c = codes + 256 * b + 32 * g;
        for (int l = 0; l < 32; ++l)
          c[l] = g % 2 ? q[l] >> 4 : q[l] & 0xF;
        affineGroup(d * sc, dmin * m, c, 32, scales[8 * b + g],
                    zeros[8 * b + g]);
      }
    }
    return;
  default:
    break;
  }
  // The I4_*/I8_* groups: f16 d | (asym) u8 zero | codes (Formats.h).
  const int group = int(form.groupSize);
  const int header = form.defaultZeros ? 2 : 3;
  const int64_t bytes = info(format).blockBytes;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t *blk = in + bytes * b;
    const uint8_t *qs = blk + header;
    uint8_t *c = codes + group * b;
    scales[b] = loadHalf(blk);
    zeros[b] = form.defaultZeros ? defaultZero : float(blk[2]);
    if (form.bits == 8) {
      // Sym int8 is two's complement: code = q + 128.
      for (int j = 0; j < group; ++j)
        c[j] = form.defaultZeros ? uint8_t(qs[j] ^ 0x80) : qs[j];
    } else {
      // Sym int4 is two's complement too: code = q + 8 = nibble ^ 8.
      const uint8_t flip = form.defaultZeros ? 8 : 0;
      for (int k = 0; k < group / 2; ++k) {
        c[2 * k] = (qs[k] & 0xF) ^ flip;
        c[2 * k + 1] = (qs[k] >> 4) ^ flip;
      }
    }
  }
}

} // namespace lowbit::formats
