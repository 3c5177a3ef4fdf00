//===- AffineFormTest.cpp - Rows as codes, scales and zeros ---------------===//
#include "lowbit/Formats/BlockLayouts.h"
#include "lowbit/Formats/Formats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace lowbit::formats;

namespace {

/// (code - zero) * scale for every weight of a row in affine form.
std::vector<float> reconstruct(Format format, const std::vector<uint8_t> &row,
                               int64_t n) {
  AffineForm form;
  EXPECT_TRUE(affineForm(format, form));
  std::vector<uint8_t> codes(n);
  std::vector<float> scales(n / form.groupSize), zeros(n / form.groupSize);
  decodeAffineRow(format, row.data(), n, codes.data(), scales.data(),
                  zeros.data());
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t g = i / form.groupSize;
    EXPECT_LT(codes[i], 1u << form.bits) << "code out of range at " << i;
    if (form.defaultZeros)
      EXPECT_EQ(zeros[g], float(1u << (form.bits - 1)));
    if (form.integerZeros)
      EXPECT_EQ(zeros[g], std::floor(zeros[g]));
    values[i] = (float(codes[i]) - zeros[g]) * scales[g];
  }
  return values;
}

TEST(AffineForm, MatchesTheRowDecoder) {
  const Format formats[] = {
      Format::Q4_0,        Format::Q4_1,        Format::Q8_0,
      Format::Q2_K,        Format::Q4_K,        Format::I4_SYM_G32,
      Format::I4_SYM_G128, Format::I4_ASYM_G64, Format::I8_SYM_G64,
      Format::I8_ASYM_G128};
  const int64_t n = 1024;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> x(n);
  for (float &v : x)
    v = normal(rng) + 0.01f; // an offset, so asymmetric zeros are not 0
  for (Format format : formats) {
    SCOPED_TRACE(ggmlName(format));
    AffineForm form;
    ASSERT_TRUE(affineForm(format, form));
    std::vector<uint8_t> row(rowBytes(info(format), n));
    ASSERT_TRUE(quantizeRow(format, x.data(), row.data(), n, nullptr));
    std::vector<float> decoded(n);
    dequantizeRow(format, row.data(), decoded.data(), n);
    std::vector<float> affine = reconstruct(format, row, n);
    float largest = 0, worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      largest = std::max(largest, std::fabs(decoded[i]));
      worst = std::max(worst, std::fabs(decoded[i] - affine[i]));
    }
    // Integer zeros reconstruct exactly; float zeros up to rounding.
    if (form.integerZeros)
      EXPECT_EQ(worst, 0.0f);
    else
      EXPECT_LE(worst, 4e-7f * largest);
  }
}

TEST(AffineForm, ZeroScaleKeepsTheOffset) {
  // A Q4_1 block with d = 0 decodes to m whatever its nibbles say.
  blocks::Q4_1 block = {};
  block.d = 0;
  block.m = 0x3c00; // 1.0
  for (uint8_t &q : block.qs)
    q = 0x5a;
  std::vector<uint8_t> row(sizeof(block));
  std::memcpy(row.data(), &block, sizeof(block));
  std::vector<float> affine = reconstruct(Format::Q4_1, row, 32);
  for (float v : affine)
    EXPECT_EQ(v, 1.0f);
}

TEST(AffineForm, OnlyAffineFormats) {
  AffineForm form;
  EXPECT_FALSE(affineForm(Format::Q6_K, form));
  EXPECT_FALSE(affineForm(Format::IQ4_NL, form));
  EXPECT_FALSE(affineForm(Format::F32, form));
}

} // namespace
