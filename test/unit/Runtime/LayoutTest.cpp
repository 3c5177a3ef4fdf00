//===- LayoutTest.cpp - Row-interleaved layouts round-trip ----------------===//
//
// Unpacking a packed weight gives back its GGML bytes, for every format of
// the table: the packing pass, the kernels and the runtime's fall-back all
// rely on lowbit/Formats/Layout.h being a pure permutation of whole blocks.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Formats/Layout.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

using namespace lowbit::formats;

TEST(Layout, UnpackGivesBackTheGGMLBytes) {
  size_t count;
  const FormatInfo *all = allFormats(count);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (size_t f = 0; f < count; ++f) {
    const FormatInfo &fi = all[f];
    if (!hasCodec(fi.format) || fi.format == Format::Q8_K)
      continue;
    const uint64_t rows = 16, cols = 2 * std::max<uint32_t>(fi.blockSize, 32);
    std::vector<float> values(rows * cols);
    for (float &v : values)
      v = dist(rng);
    const uint64_t bytes = rowBytes(fi, cols) * rows;
    std::vector<uint8_t> ggml(bytes), packed(bytes), back(bytes);
    ASSERT_TRUE(quantizeRows(fi.format, values.data(), ggml.data(), rows, cols,
                             nullptr, 1));
    for (uint32_t n : {1u, 2u, 4u, 8u, 16u}) {
      SCOPED_TRACE(std::string(fi.name) + " interleave " + std::to_string(n));
      ASSERT_TRUE(packRows(fi.format, ggml.data(), packed.data(), rows, cols, n));
      if (n > 1)
        EXPECT_NE(packed, ggml); // two blocks per row: the order changes
      ASSERT_TRUE(unpackRows(fi.format, packed.data(), back.data(), rows, cols, n));
      EXPECT_EQ(back, ggml);
      // Every block is where packedBlockOffset says.
      const uint64_t blocks = cols / fi.blockSize;
      for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t b = 0; b < blocks; ++b)
          ASSERT_EQ(std::memcmp(packed.data() +
                                    packedBlockOffset(fi.format, cols, n, r, b),
                                ggml.data() + r * rowBytes(fi, cols) +
                                    b * fi.blockBytes,
                                fi.blockBytes),
                    0);
    }
  }
}

TEST(Layout, RejectsShapesThatDoNotFit) {
  std::vector<uint8_t> a(6 * 34), b(6 * 34);
  EXPECT_FALSE(packRows(Format::Q8_0, a.data(), b.data(), 6, 32, 4));
  EXPECT_FALSE(packRows(Format::Q8_0, a.data(), b.data(), 6, 33, 2));
  EXPECT_FALSE(unpackRows(Format::Q8_0, a.data(), b.data(), 6, 32, 0));
  EXPECT_TRUE(packRows(Format::Q8_0, a.data(), b.data(), 6, 32, 2));
}
