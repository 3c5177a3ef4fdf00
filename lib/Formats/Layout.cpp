//===- Layout.cpp - Packed (row-interleaved) weight layouts ---------------===//

#include "lowbit/Formats/Layout.h"

#include <cstring>

namespace lowbit::formats {

uint64_t packedBlockOffset(Format format, uint64_t cols, uint32_t interleave,
                           uint64_t row, uint64_t block) {
  const FormatInfo &fi = info(format);
  const uint64_t rowBytes = cols / fi.blockSize * fi.blockBytes;
  const uint64_t group = row / interleave, lane = row % interleave;
  return group * interleave * rowBytes +
         (block * interleave + lane) * fi.blockBytes;
}

namespace {
bool shuffle(Format format, const void *src, void *dst, uint64_t rows,
             uint64_t cols, uint32_t interleave, bool pack) {
  const FormatInfo &fi = info(format);
  if (interleave == 0 || rows % interleave != 0 || cols % fi.blockSize != 0)
    return false;
  const uint64_t blocks = cols / fi.blockSize, bb = fi.blockBytes;
  const uint64_t rowBytes = blocks * bb;
  const uint8_t *in = static_cast<const uint8_t *>(src);
  uint8_t *out = static_cast<uint8_t *>(dst);
  for (uint64_t g = 0; g < rows; g += interleave) {
    const uint64_t base = g * rowBytes;
    for (uint64_t lane = 0; lane < interleave; ++lane)
      for (uint64_t b = 0; b < blocks; ++b) {
        const uint64_t plain = base + lane * rowBytes + b * bb;
        const uint64_t packed = base + (b * interleave + lane) * bb;
        if (pack)
          std::memcpy(out + packed, in + plain, bb);
        else
          std::memcpy(out + plain, in + packed, bb);
      }
  }
  return true;
}
} // namespace

bool packRows(Format format, const void *src, void *dst, uint64_t rows,
              uint64_t cols, uint32_t interleave) {
  return shuffle(format, src, dst, rows, cols, interleave, /*pack=*/true);
}

bool unpackRows(Format format, const void *src, void *dst, uint64_t rows,
                uint64_t cols, uint32_t interleave) {
  return shuffle(format, src, dst, rows, cols, interleave, /*pack=*/false);
}

} // namespace lowbit::formats
