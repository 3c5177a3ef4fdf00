//===- CodecTest.cpp - Row codecs: conversions, layouts, errors -----------===//
//
// Everything the golden data cannot show: f16/bf16 rounding corners, the
// layouts of the formats GGUF does not hold (hand-built blocks), round-trip
// error bounds, input validation and thread-count independence.
//
//===----------------------------------------------------------------------===//
#include "Codecs.h"
#include "IQGrids.h"
#include "lowbit/Formats/Formats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <string>
#include <vector>

using namespace lowbit::formats;
using lowbit::formats::detail::bf16ToFp32;
using lowbit::formats::detail::bitsFloat;
using lowbit::formats::detail::floatBits;
using lowbit::formats::detail::fp16ToFp32;
using lowbit::formats::detail::fp32ToBf16;
using lowbit::formats::detail::fp32ToFp16;

namespace {

std::vector<Format> registry() {
  size_t count;
  const FormatInfo *all = allFormats(count);
  std::vector<Format> formats;
  for (size_t i = 0; i < count; ++i)
    formats.push_back(all[i].format);
  return formats;
}

std::string paramName(const ::testing::TestParamInfo<Format> &p) {
  return lowbit::formats::info(p.param).name;
}

/// Deterministic N(0, 1) samples (xorshift64* + Box-Muller).
std::vector<float> gaussian(size_t count, uint64_t seed) {
  std::vector<float> out;
  uint64_t state = seed;
  auto uniform = [&] {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return ((state * 0x2545F4914F6CDD1DULL >> 11) + 0.5) * 0x1.0p-53;
  };
  while (out.size() < count) {
    double r = std::sqrt(-2 * std::log(uniform())),
           t = 6.283185307179586 * uniform();
    out.push_back(static_cast<float>(r * std::cos(t)));
    out.push_back(static_cast<float>(r * std::sin(t)));
  }
  out.resize(count);
  return out;
}

/// A row length every format's block divides.
constexpr int64_t kRowLength = 1024;

//===----------------------------------------------------------------------===//
// f16 / bf16 conversions
//===----------------------------------------------------------------------===//

/// Independent f16 decoder in double arithmetic.
double halfValue(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v =
      exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  if (exp == 0x1f)
    v = mant ? std::numeric_limits<double>::quiet_NaN()
             : std::numeric_limits<double>::infinity();
  return sign ? -v : v;
}

TEST(HalfConversion, DecodesEveryBitPatternExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = fp16ToFp32(static_cast<uint16_t>(h));
    double want = halfValue(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_EQ(fp32ToFp16(f) & 0x7e00, 0x7e00) << "NaN stays a quiet NaN";
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), want) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    ASSERT_EQ(fp32ToFp16(f), h) << "round trip of 0x" << std::hex << h;
  }
}

TEST(HalfConversion, RoundsToNearestEven) {
  // Halfway between 1 and 1 + 2^-10: ties to the even mantissa.
  EXPECT_EQ(fp32ToFp16(1.0f + 0x1.0p-11f), 0x3c00);
  EXPECT_EQ(fp32ToFp16(1.0f + 3 * 0x1.0p-11f), 0x3c02);
  EXPECT_EQ(fp32ToFp16(1.0f + 0x1.0p-11f + 0x1.0p-20f), 0x3c01);
  EXPECT_EQ(fp32ToFp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32ToFp16(65519.99f), 0x7bff);
  EXPECT_EQ(fp32ToFp16(65520.0f), 0x7c00) << "the tie above max is Inf";
  EXPECT_EQ(fp32ToFp16(-65520.0f), 0xfc00);
  EXPECT_EQ(fp32ToFp16(INFINITY), 0x7c00);
  EXPECT_EQ(fp32ToFp16(-0.0f), 0x8000);
  // Subnormals: the unit is 2^-24.
  EXPECT_EQ(fp32ToFp16(0x1.0p-24f), 0x0001);
  EXPECT_EQ(fp32ToFp16(0x1.0p-25f), 0x0000) << "tie to even (zero)";
  EXPECT_EQ(fp32ToFp16(0x1.0p-25f * 1.0001f), 0x0001);
  EXPECT_EQ(fp32ToFp16(3 * 0x1.0p-25f), 0x0002) << "1.5 units ties to 2";
  EXPECT_EQ(fp32ToFp16(-0x1.0p-26f), 0x8000) << "underflow keeps the sign";
  EXPECT_EQ(fp32ToFp16(1023.5f * 0x1.0p-24f), 0x0400)
      << "largest subnormal + half a unit rounds up to the smallest normal";
  EXPECT_EQ(fp32ToFp16(0x1.0p-14f), 0x0400);
  EXPECT_EQ(fp32ToFp16(bitsFloat(1)), 0x0000) << "float subnormal";
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("f16c"))) uint16_t hardwareHalf(float f) {
  return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

TEST(HalfConversion, MatchesF16CHardwareOnSampledFloats) {
  if (!__builtin_cpu_supports("f16c"))
    GTEST_SKIP() << "no F16C on this CPU";
  // A prime stride visits every exponent and many mantissas of both signs.
  for (uint64_t b = 0; b < (1ull << 32); b += 251) {
    const float f = bitsFloat(static_cast<uint32_t>(b));
    const uint16_t want = hardwareHalf(f), got = fp32ToFp16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(fp16ToFp32(got))) << std::hex << b;
      continue;
    }
    ASSERT_EQ(got, want) << "float bits 0x" << std::hex << b;
  }
}
#endif

TEST(BFloat16Conversion, RoundTripsEveryBitPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16ToFp32(static_cast<uint16_t>(b));
    EXPECT_EQ(floatBits(f), b << 16);
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(bf16ToFp32(fp32ToBf16(f))));
    else
      ASSERT_EQ(fp32ToBf16(f), b) << std::hex << b;
  }
}

TEST(BFloat16Conversion, RoundsToNearestEven) {
  EXPECT_EQ(fp32ToBf16(1.0f + 0x1.0p-8f), 0x3f80) << "tie to even";
  EXPECT_EQ(fp32ToBf16(1.0f + 3 * 0x1.0p-8f), 0x3f82) << "tie to even";
  EXPECT_EQ(fp32ToBf16(1.0f + 0x1.0p-8f + 0x1.0p-20f), 0x3f81);
  EXPECT_EQ(fp32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32ToBf16(INFINITY), 0x7f80);
  EXPECT_EQ(fp32ToBf16(bitsFloat(0x7f7f8000u)), 0x7f80) << "ties up to Inf";
  EXPECT_EQ(fp32ToBf16(bitsFloat(0x00018000u)), 0x0002) << "subnormal kept";
  // A signalling NaN becomes quiet, never Inf.
  uint16_t nan = fp32ToBf16(bitsFloat(0x7f800001u));
  EXPECT_TRUE(std::isnan(bf16ToFp32(nan)));
  EXPECT_NE(nan & 0x0040, 0);
}

TEST(FloatRows, F16AndBF16RoundTripThroughRowApi) {
  std::vector<float> x = {0.0f,     -0.0f,      1.0f,        -2.5f,
                          65504.0f, 0x1.0p-24f, 3.14159265f, -1e-3f};
  for (Format f : {Format::F16, Format::BF16, Format::F32}) {
    std::vector<uint8_t> bytes(rowBytes(info(f), x.size()));
    std::string why;
    ASSERT_TRUE(quantizeRow(f, x.data(), bytes.data(), x.size(), nullptr, &why))
        << why;
    std::vector<float> y(x.size());
    dequantizeRow(f, bytes.data(), y.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      float want = f == Format::F16    ? fp16ToFp32(fp32ToFp16(x[i]))
                   : f == Format::BF16 ? bf16ToFp32(fp32ToBf16(x[i]))
                                       : x[i];
      EXPECT_EQ(floatBits(y[i]), floatBits(want)) << info(f).name << " " << i;
    }
  }
}

//===----------------------------------------------------------------------===//
// Hand-built blocks of the formats GGUF does not hold (and MXFP4, which the
// golden file predates).
//===----------------------------------------------------------------------===//

TEST(HandBuiltBlocks, MXFP4) {
  ASSERT_EQ(info(Format::MXFP4).ggmlType, 39);
  ASSERT_EQ(info(Format::MXFP4).blockBytes, 17u);
  uint8_t blk[17];
  blk[0] = 127; // E8M0 2^0: the E2M1 values themselves.
  for (int j = 0; j < 16; ++j)
    blk[1 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const float e2m1[16] = {0, 0.5f,  1,  1.5f,  2,  3,  4,  6,
                          0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  float y[32];
  dequantizeRow(Format::MXFP4, blk, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], e2m1[j]) << j;           // Low nibble: element j.
    EXPECT_EQ(y[16 + j], e2m1[15 - j]) << j; // High nibble: element j + 16.
  }
  blk[0] = 130; // 2^3
  dequantizeRow(Format::MXFP4, blk, y, 32);
  EXPECT_EQ(y[7], 48.0f);
  blk[0] = 0; // 2^-127 times 0.5: subnormal scales decode exactly.
  dequantizeRow(Format::MXFP4, blk, y, 32);
  EXPECT_EQ(y[1], 0x1.0p-128f);
  blk[0] = 254;
  dequantizeRow(Format::MXFP4, blk, y, 32);
  EXPECT_EQ(y[3], 0x1.8p+127f); // 3 * 2^126; larger levels overflow.
}

/// MXFP4 by ggml's reference rule: exponent floor(log2(amax)) - 2, nearest
/// E2M1 level. Returns the block's squared error.
double mxfp4ReferenceError(const float *x) {
  float amax = 0;
  for (int j = 0; j < 32; ++j)
    amax = std::fmax(amax, std::fabs(x[j]));
  const double d = std::ldexp(1.0, std::ilogb(amax) - 2 - 1); // Half scale.
  const double levels[8] = {0, 1, 2, 3, 4, 6, 8, 12};
  double err = 0;
  for (int j = 0; j < 32; ++j) {
    double best = 1e300;
    for (double l : levels)
      best = std::fmin(best, std::fabs(std::fabs(x[j]) - l * d));
    err += best * best;
  }
  return err;
}

TEST(MXFP4Encoder, NeverWorseThanTheReferenceExponent) {
  std::vector<float> x = gaussian(32 * 512, 21);
  for (size_t i = 0; i < x.size(); i += 97)
    x[i] *= 10; // Some blocks with outliers.
  std::vector<uint8_t> bytes(rowBytes(info(Format::MXFP4), x.size()));
  ASSERT_TRUE(
      quantizeRow(Format::MXFP4, x.data(), bytes.data(), x.size(), nullptr));
  std::vector<float> y(x.size());
  dequantizeRow(Format::MXFP4, bytes.data(), y.data(), x.size());
  int better = 0;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    double ours = 0;
    for (int j = 0; j < 32; ++j) {
      double diff = static_cast<double>(y[32 * b + j]) - x[32 * b + j];
      ours += diff * diff;
    }
    const double reference = mxfp4ReferenceError(&x[32 * b]);
    ASSERT_LE(ours, reference * (1 + 1e-6)) << "block " << b;
    better += ours < reference * (1 - 1e-6);
  }
  EXPECT_GT(better, 0) << "the second exponent should help some blocks";
}

TEST(HandBuiltBlocks, NF4) {
  uint8_t blk[34];
  const uint16_t two = 0x4000; // f16 2.0
  blk[0] = two & 0xff;
  blk[1] = two >> 8;
  for (int k = 0; k < 32; ++k) // Elements 2k, 2k+1 = indices k%16, 15-k%16.
    blk[2 + k] = static_cast<uint8_t>((k % 16) | ((15 - k % 16) << 4));
  float y[64];
  dequantizeRow(Format::NF4_G64, blk, y, 64);
  for (int k = 0; k < 32; ++k) {
    EXPECT_EQ(y[2 * k], 2 * kNF4Levels[k % 16]);
    EXPECT_EQ(y[2 * k + 1], 2 * kNF4Levels[15 - k % 16]);
  }
  EXPECT_EQ(kNF4Levels[0], -1.0f);
  EXPECT_EQ(kNF4Levels[7], 0.0f);
  EXPECT_EQ(kNF4Levels[15], 1.0f);
}

void putHalf(uint8_t *p, float v) {
  uint16_t h = fp32ToFp16(v);
  p[0] = h & 0xff;
  p[1] = h >> 8;
}

TEST(HandBuiltBlocks, Int4Symmetric) {
  std::vector<uint8_t> blk(info(Format::I4_SYM_G32).blockBytes);
  putHalf(blk.data(), 0.5f);
  for (int k = 0; k < 16; ++k) // Element 2k = k - 8, element 2k+1 = 7 - k.
    blk[2 + k] = static_cast<uint8_t>(((k - 8) & 0xf) | (((7 - k) & 0xf) << 4));
  float y[32];
  dequantizeRow(Format::I4_SYM_G32, blk.data(), y, 32);
  for (int k = 0; k < 16; ++k) {
    EXPECT_EQ(y[2 * k], 0.5f * (k - 8));
    EXPECT_EQ(y[2 * k + 1], 0.5f * (7 - k));
  }
}

TEST(HandBuiltBlocks, Int4Asymmetric) {
  std::vector<uint8_t> blk(info(Format::I4_ASYM_G64).blockBytes);
  ASSERT_EQ(blk.size(), 35u);
  putHalf(blk.data(), 0.25f);
  blk[2] = 3; // Zero point.
  for (int k = 0; k < 32; ++k)
    blk[3 + k] = static_cast<uint8_t>((k % 16) | ((15 - k % 16) << 4));
  float y[64];
  dequantizeRow(Format::I4_ASYM_G64, blk.data(), y, 64);
  for (int k = 0; k < 32; ++k) {
    EXPECT_EQ(y[2 * k], 0.25f * (k % 16 - 3));
    EXPECT_EQ(y[2 * k + 1], 0.25f * (15 - k % 16 - 3));
  }
}

TEST(HandBuiltBlocks, Int8) {
  std::vector<uint8_t> sym(info(Format::I8_SYM_G128).blockBytes);
  ASSERT_EQ(sym.size(), 130u);
  putHalf(sym.data(), 2.0f);
  for (int j = 0; j < 128; ++j)
    sym[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 64));
  float y[128];
  dequantizeRow(Format::I8_SYM_G128, sym.data(), y, 128);
  for (int j = 0; j < 128; ++j)
    EXPECT_EQ(y[j], 2.0f * (j - 64));

  std::vector<uint8_t> asym(info(Format::I8_ASYM_G32).blockBytes);
  ASSERT_EQ(asym.size(), 35u);
  putHalf(asym.data(), 0.125f);
  asym[2] = 200;
  for (int j = 0; j < 32; ++j)
    asym[3 + j] = static_cast<uint8_t>(j * 8);
  dequantizeRow(Format::I8_ASYM_G32, asym.data(), y, 32);
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(y[j], 0.125f * (j * 8 - 200));
}

TEST(HandBuiltBlocks, Q8KIsGgmlsActivationBlock) {
  // ggml's quantize_row_q8_K_ref: the value of largest magnitude (the first
  // on ties) maps to -127, d = 1 / (-127 / max), int16 sums of each 16.
  float x[256];
  for (int j = 0; j < 256; ++j)
    x[j] = 0.5f * static_cast<float>((j * 37) % 101 - 50);
  x[7] = 40.f;   // the largest magnitude, positive: maps to -127
  x[9] = -40.f;  // same magnitude later: not the reference
  uint8_t block[292];
  ASSERT_TRUE(quantizeRow(Format::Q8_K, x, block, 256, nullptr));
  float d;
  std::memcpy(&d, block, 4);
  EXPECT_EQ(d, 1.f / (-127.f / 40.f));
  const int8_t *q = reinterpret_cast<const int8_t *>(block + 4);
  EXPECT_EQ(q[7], -127);
  EXPECT_EQ(q[9], 127);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i)
      sum += q[16 * g + i];
    int16_t stored;
    std::memcpy(&stored, block + 260 + 2 * g, 2);
    EXPECT_EQ(stored, sum) << "group " << g;
  }
  float y[256];
  dequantizeRow(Format::Q8_K, block, y, 256);
  for (int j = 0; j < 256; ++j)
    EXPECT_EQ(y[j], d * q[j]);
}

TEST(HandBuiltBlocks, BlockBytesMatchDocumentedLayouts) {
  size_t count;
  const FormatInfo *all = allFormats(count);
  for (size_t i = 0; i < count; ++i) {
    const FormatInfo &f = all[i];
    std::string name = f.name;
    if (name.rfind("i8_", 0) == 0 || name.rfind("i4_", 0) == 0) {
      unsigned bits = name[1] - '0';
      unsigned header = name.find("asym") != std::string::npos ? 3 : 2;
      EXPECT_EQ(f.blockBytes, header + f.blockSize * bits / 8) << name;
    }
  }
  EXPECT_EQ(info(Format::NF4_G64).blockBytes, 2 + 64 / 2u);
}

//===----------------------------------------------------------------------===//
// Every format with a codec
//===----------------------------------------------------------------------===//

class CodecTest : public ::testing::TestWithParam<Format> {
protected:
  void SetUp() override {
    if (!hasCodec(GetParam()))
      GTEST_SKIP() << info(GetParam()).name << " has no codec in this build";
  }
};

/// Relative RMSE a format must reach on N(0, 1) data.
double roundTripBound(const FormatInfo &f) {
  // Formats the golden file does not cover: about 5% above what the
  // encoders reach today, so a quality regression shows.
  switch (f.format) {
  case Format::MXFP4:
    return 0.117;
  case Format::NF4_G64:
    return 0.087;
  case Format::I4_SYM_G32:
    return 0.085;
  case Format::I4_SYM_G64:
    return 0.094;
  case Format::I4_SYM_G128:
    return 0.102;
  case Format::I4_ASYM_G32:
    return 0.081;
  case Format::I4_ASYM_G64:
    return 0.092;
  case Format::I4_ASYM_G128:
    return 0.101;
  case Format::I8_SYM_G32:
    return 0.0052;
  case Format::I8_SYM_G64:
    return 0.0059;
  case Format::I8_SYM_G128:
    return 0.0065;
  case Format::I8_ASYM_G32:
    return 0.0047;
  case Format::I8_ASYM_G64:
    return 0.0054;
  case Format::I8_ASYM_G128:
    return 0.0061;
  case Format::Q8_K:
    return 0.0072; // Absmax of 256 activations: the step is amax / 127.
  case Format::IQ1_S:
    return 0.468; // The golden file has IQ1_S with importance only.
  case Format::IQ1_M:
    return 0.434;
  default:
    break;
  }
  switch (f.format) {
  case Format::F32:
    return 0;
  case Format::F16:
    return 0x1.0p-11;
  case Format::BF16:
    return 0x1.0p-8;
  case Format::TQ1_0:
  case Format::TQ2_0:
    return 0.85; // Ternary with an absmax scale: made for ternary weights.
  default:
    break;
  }
  // Roughly the step of a uniform grid over +-3 sigma at the format's bits.
  double bits = std::floor(f.bitsPerWeight());
  return 3.0 / std::pow(2.0, bits);
}

TEST_P(CodecTest, RoundTripErrorIsBounded) {
  const FormatInfo &fi = info(GetParam());
  const int64_t rows = 8;
  std::vector<float> x = gaussian(rows * kRowLength, 42);
  std::vector<uint8_t> bytes(rows * rowBytes(fi, kRowLength));
  std::string why;
  ASSERT_TRUE(quantizeRows(GetParam(), x.data(), bytes.data(), rows, kRowLength,
                           nullptr, 0, &why))
      << why;
  std::vector<float> y(x.size());
  dequantizeRows(GetParam(), bytes.data(), y.data(), rows, kRowLength);
  double err = 0, sig = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err +=
        (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    sig += static_cast<double>(x[i]) * x[i];
  }
  double rel = std::sqrt(err / sig);
  RecordProperty("relative_rmse", std::to_string(rel));
  EXPECT_LE(rel, roundTripBound(fi)) << fi.name;
}

TEST_P(CodecTest, ZeroRowDecodesToZero) {
  const FormatInfo &fi = info(GetParam());
  std::vector<float> x(kRowLength, 0.0f), y(kRowLength, 1.0f);
  std::vector<float> importance(kRowLength, 1.0f);
  std::vector<uint8_t> bytes(rowBytes(fi, kRowLength));
  for (const float *imp : {static_cast<const float *>(nullptr),
                           static_cast<const float *>(importance.data())}) {
    ASSERT_TRUE(
        quantizeRow(GetParam(), x.data(), bytes.data(), kRowLength, imp));
    dequantizeRow(GetParam(), bytes.data(), y.data(), kRowLength);
    for (float v : y)
      ASSERT_EQ(v, 0.0f);
  }
}

TEST_P(CodecTest, OutputDoesNotDependOnThreads) {
  const FormatInfo &fi = info(GetParam());
  const int64_t rows = 64, n = 4096; // Enough work to use several threads.
  std::vector<float> x = gaussian(rows * n, 7);
  std::vector<float> importance = gaussian(n, 9);
  for (float &v : importance)
    v = v * v + 0.1f;
  const size_t size = rows * rowBytes(fi, n);
  std::vector<uint8_t> single(size), threaded(size), byRow(size);
  ASSERT_TRUE(quantizeRows(GetParam(), x.data(), single.data(), rows, n,
                           importance.data(), 1, nullptr));
  ASSERT_TRUE(quantizeRows(GetParam(), x.data(), threaded.data(), rows, n,
                           importance.data(), 3, nullptr));
  for (int64_t r = 0; r < rows; ++r)
    ASSERT_TRUE(quantizeRow(GetParam(), x.data() + r * n,
                            byRow.data() + r * rowBytes(fi, n), n,
                            importance.data()));
  EXPECT_EQ(single, threaded);
  EXPECT_EQ(single, byRow);

  std::vector<float> a(rows * n), b(rows * n);
  dequantizeRows(GetParam(), single.data(), a.data(), rows, n, 1);
  dequantizeRows(GetParam(), single.data(), b.data(), rows, n, 0);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST_P(CodecTest, LargeValuesDecodeFinite) {
  const FormatInfo &fi = info(GetParam());
  std::vector<float> x = gaussian(kRowLength, 3);
  x[5] = 1e6f;
  x[700] = -3e5f;
  std::vector<uint8_t> bytes(rowBytes(fi, kRowLength));
  std::string why;
  if (!quantizeRow(GetParam(), x.data(), bytes.data(), kRowLength, nullptr,
                   &why)) {
    // Only a plain float format may refuse a finite value it cannot hold.
    EXPECT_EQ(GetParam(), Format::F16) << why;
    EXPECT_NE(why.find("column 5"), std::string::npos) << why;
    return;
  }
  std::vector<float> y(kRowLength);
  dequantizeRow(GetParam(), bytes.data(), y.data(), kRowLength);
  for (int64_t i = 0; i < kRowLength; ++i)
    ASSERT_TRUE(std::isfinite(y[i])) << "column " << i;
}

TEST_P(CodecTest, RejectsNonFiniteInputNamingTheColumn) {
  const FormatInfo &fi = info(GetParam());
  std::vector<float> x = gaussian(kRowLength, 5);
  std::vector<uint8_t> bytes(rowBytes(fi, kRowLength));
  std::string why;
  x[37] = NAN;
  EXPECT_FALSE(quantizeRow(GetParam(), x.data(), bytes.data(), kRowLength,
                           nullptr, &why));
  EXPECT_NE(why.find("column 37 is NaN"), std::string::npos) << why;
  EXPECT_NE(why.find(fi.name), std::string::npos) << why;
  x[37] = 0;
  x[500] = -INFINITY;
  EXPECT_FALSE(quantizeRow(GetParam(), x.data(), bytes.data(), kRowLength,
                           nullptr, &why));
  EXPECT_NE(why.find("column 500 is -Inf"), std::string::npos) << why;
}

TEST_P(CodecTest, RejectsPartialBlocks) {
  const FormatInfo &fi = info(GetParam());
  if (fi.blockSize == 1)
    GTEST_SKIP() << "every length is whole blocks";
  std::vector<float> x(fi.blockSize + 1, 1.0f);
  std::vector<uint8_t> bytes(2 * fi.blockBytes);
  std::string why;
  EXPECT_FALSE(quantizeRow(GetParam(), x.data(), bytes.data(), fi.blockSize + 1,
                           nullptr, &why));
  EXPECT_NE(why.find("not a multiple of the block size"), std::string::npos)
      << why;
  EXPECT_FALSE(quantizeRows(GetParam(), x.data(), bytes.data(), 1,
                            fi.blockSize + 1, nullptr, 0, &why));
}

/// Only where GGML needs importance (the golden test checks the list
/// against ggml's); every encoder runs without it.
TEST_P(CodecTest, RequiresImportanceOnlyWhereGgmlDoes) {
  const Format f = GetParam();
  EXPECT_EQ(requiresImportance(f),
            f == Format::IQ2_XXS || f == Format::IQ2_XS || f == Format::IQ1_S);
}

INSTANTIATE_TEST_SUITE_P(Registry, CodecTest, ::testing::ValuesIn(registry()),
                         paramName);

//===----------------------------------------------------------------------===//
// Validation messages of the matrix API
//===----------------------------------------------------------------------===//

TEST(QuantizeRows, ReportsTheFirstBadRowWhateverTheThreadCount) {
  const int64_t rows = 64, n = 16384;
  std::vector<float> x = gaussian(rows * n, 11);
  x[50 * n + 9] = INFINITY;
  x[10 * n + 5] = NAN;
  std::vector<uint8_t> bytes(rows * rowBytes(info(Format::Q4_0), n));
  for (int threads : {1, 2, 8, 0}) {
    std::string why;
    EXPECT_FALSE(quantizeRows(Format::Q4_0, x.data(), bytes.data(), rows, n,
                              nullptr, threads, &why));
    EXPECT_EQ(why, "q4_0: row 10, column 5 is NaN") << threads << " threads";
  }
}

TEST(QuantizeRows, RejectsBadImportance) {
  std::vector<float> x = gaussian(64, 1), importance(64, 1.0f);
  importance[40] = -1.0f;
  std::vector<uint8_t> bytes(rowBytes(info(Format::Q4_0), 64));
  std::string why;
  EXPECT_FALSE(quantizeRow(Format::Q4_0, x.data(), bytes.data(), 64,
                           importance.data(), &why));
  EXPECT_NE(why.find("importance[40]"), std::string::npos) << why;
  // Formats that ignore importance do not look at it.
  std::vector<uint8_t> q8(rowBytes(info(Format::Q8_0), 64));
  EXPECT_TRUE(quantizeRow(Format::Q8_0, x.data(), q8.data(), 64,
                          importance.data(), &why));
}

TEST(QuantizeRows, F16RefusesValuesThatWouldBecomeInf) {
  std::vector<float> x(4, 1.0f);
  x[2] = 65520.0f;
  uint8_t bytes[8];
  std::string why;
  EXPECT_FALSE(quantizeRow(Format::F16, x.data(), bytes, 4, nullptr, &why));
  EXPECT_NE(why.find("column 2"), std::string::npos) << why;
  x[2] = 65519.0f; // Rounds to 65504.
  EXPECT_TRUE(quantizeRow(Format::F16, x.data(), bytes, 4, nullptr, &why));
}

TEST(QuantizeRows, ZeroImportanceGroupsStillEncode) {
  std::vector<float> x = gaussian(256, 2), importance(256, 0.0f), y(256);
  for (Format f : {Format::Q4_0, Format::Q4_1, Format::IQ4_NL, Format::IQ4_XS,
                   Format::I4_SYM_G32, Format::NF4_G64}) {
    std::vector<uint8_t> bytes(rowBytes(info(f), 256));
    ASSERT_TRUE(quantizeRow(f, x.data(), bytes.data(), 256, importance.data()));
    dequantizeRow(f, bytes.data(), y.data(), 256);
    double err = 0;
    for (int i = 0; i < 256; ++i)
      err += (y[i] - x[i]) * (y[i] - x[i]);
    EXPECT_LT(std::sqrt(err / 256), 0.3) << info(f).name;
  }
}

TEST(ImportanceSupport, MatchesGgmlForGgufFormats) {
  // ggml ignores importance for these; so do we.
  for (Format f : {Format::F32, Format::F16, Format::BF16, Format::Q8_0,
                   Format::TQ1_0, Format::TQ2_0})
    EXPECT_FALSE(supportsImportance(f)) << info(f).name;
  for (Format f : {Format::Q4_0, Format::Q4_1, Format::Q5_0, Format::Q5_1,
                   Format::IQ4_NL, Format::IQ4_XS})
    EXPECT_TRUE(supportsImportance(f)) << info(f).name;
}

} // namespace

//===----------------------------------------------------------------------===//
// ggml's lattice i-quants (IQ2_XXS ... IQ3_S)
//===----------------------------------------------------------------------===//

namespace lowbit::formats::detail {
namespace {

/// Grid entries are ascending (as in ggml-common.h, so a swapped or
/// mistyped entry shows) and every coordinate is one of the format's levels.
template <typename Entry, size_t N>
void checkGrid(const Entry (&grid)[N], int dim,
               std::initializer_list<int> levels, const char *name) {
  for (size_t p = 0; p < N; ++p) {
    if (p > 0)
      EXPECT_LT(grid[p - 1], grid[p]) << name << " entry " << p;
    for (int j = 0; j < dim; ++j)
      EXPECT_NE(std::find(levels.begin(), levels.end(), gridCoord(grid[p], j)),
                levels.end())
          << name << " entry " << p << " coordinate " << j;
  }
}

TEST(IQGrids, EntriesAreAscendingOnTheFormatLevels) {
  checkGrid(kIQ2XXSGrid, 8, {0x08, 0x19, 0x2b}, "iq2xxs");
  checkGrid(kIQ2XSGrid, 8, {0x08, 0x19, 0x2b}, "iq2xs");
  checkGrid(kIQ2SGrid, 8, {0x08, 0x19, 0x2b}, "iq2s");
  checkGrid(kIQ3XXSGrid, 4, {4, 12, 20, 28, 36, 44, 52, 62}, "iq3xxs");
  checkGrid(kIQ3SGrid, 4, {1, 3, 5, 7, 9, 11, 13, 15}, "iq3s");
  // Spot checks against ggml-common.h (first, last, and one inside).
  EXPECT_EQ(kIQ2XXSGrid[255], 0x2b2b2b1908081908u);
  EXPECT_EQ(kIQ2SGrid[502], 0x1908081908080808u);
  EXPECT_EQ(kIQ3XXSGrid[200], 0x2c043e04u);
  EXPECT_EQ(kIQ3SGrid[302], 0x07030901u);
}

TEST(IQGrids, SignIndexAddsTheParityBit) {
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(kIQ2Signs[i] & 127, i);
    EXPECT_EQ(__builtin_popcount(kIQ2Signs[i]) % 2, 0) << i;
  }
}

} // namespace
} // namespace lowbit::formats::detail

namespace {

const Format kLatticeFormats[] = {Format::IQ2_XXS, Format::IQ2_XS,
                                  Format::IQ2_S, Format::IQ3_XXS,
                                  Format::IQ3_S};

/// GGML refuses IQ2_XXS and IQ2_XS without importance (requiresImportance);
/// our encoders run without it (SignsFollowTheData encodes without).
TEST(LatticeQuants, UseImportance) {
  for (Format f : kLatticeFormats)
    EXPECT_TRUE(supportsImportance(f)) << info(f).name;
}

TEST(LatticeQuants, TableRowsMatchGgml) {
  struct Row {
    Format format;
    const char *name;
    int32_t ggmlType;
    uint32_t blockBytes;
  };
  const Row rows[] = {{Format::IQ2_XXS, "iq2_xxs", 16, 66},
                      {Format::IQ2_XS, "iq2_xs", 17, 74},
                      {Format::IQ2_S, "iq2_s", 22, 82},
                      {Format::IQ3_XXS, "iq3_xxs", 18, 98},
                      {Format::IQ3_S, "iq3_s", 21, 110}};
  for (const Row &r : rows) {
    const FormatInfo &fi = info(r.format);
    EXPECT_STREQ(fi.name, r.name);
    EXPECT_EQ(fi.ggmlType, r.ggmlType);
    EXPECT_EQ(fi.blockSize, 256u);
    EXPECT_EQ(fi.blockBytes, r.blockBytes);
    EXPECT_EQ(findByGGMLType(r.ggmlType), &fi);
    EXPECT_EQ(findByName(ggmlName(r.format)), &fi);
  }
}

/// Each format's levels are positive: a group cannot decode to zero unless
/// the whole super-block does, and a sign flip must follow the data.
TEST(LatticeQuants, SignsFollowTheData) {
  std::vector<float> x = gaussian(1024, 17), y(1024);
  for (Format f : kLatticeFormats) {
    std::vector<uint8_t> bytes(rowBytes(info(f), 1024));
    ASSERT_TRUE(quantizeRow(f, x.data(), bytes.data(), 1024, nullptr));
    dequantizeRow(f, bytes.data(), y.data(), 1024);
    int against = 0;
    for (int i = 0; i < 1024; ++i)
      against += (x[i] < 0) != (y[i] < 0);
    // Only 7-bit sign indices (even parity) may flip, at most one per 8.
    const bool parity =
        f == Format::IQ2_XXS || f == Format::IQ2_XS || f == Format::IQ3_XXS;
    EXPECT_LE(against, parity ? 1024 / 8 : 0) << info(f).name;
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// ggml's IQ1_S and IQ1_M
//===----------------------------------------------------------------------===//

namespace lowbit::formats::detail {
namespace {

/// kIQ1SGrid is ggml's iq1s_grid: int8 coordinates in {-1, 0, 1}, entries
/// in the order of their 2-bit packing (gguf-py's grid_hex, ggml-quants.c's
/// kgrid_1bit_2048), which is ascending, so a swapped or mistyped entry
/// shows.
TEST(IQGrids, IQ1GridIsTernaryAndInPackedOrder) {
  uint32_t previous = 0;
  for (int p = 0; p < 2048; ++p) {
    uint32_t packed = 0;
    for (int j = 0; j < 8; ++j) {
      const int c = signedGridCoord(kIQ1SGrid[p], j);
      ASSERT_TRUE(c >= -1 && c <= 1) << "entry " << p << " coordinate " << j;
      packed |= static_cast<uint32_t>(c + 1) << (2 * j);
    }
    if (p > 0)
      EXPECT_LT(previous, packed) << "entry " << p;
    previous = packed;
  }
  // Spot checks against ggml-common.h.
  EXPECT_EQ(kIQ1SGrid[0], 0xffffffffffffffffu);
  EXPECT_EQ(kIQ1SGrid[1], 0xffffffffffffff01u);
  EXPECT_EQ(kIQ1SGrid[1500], 0x01ff00ff00ffff00u);
  EXPECT_EQ(kIQ1SGrid[2047], 0x0101010101010101u);
}

} // namespace
} // namespace lowbit::formats::detail

namespace {

const Format kIQ1Formats[] = {Format::IQ1_S, Format::IQ1_M};

TEST(IQ1Quants, TableRowsMatchGgml) {
  EXPECT_STREQ(info(Format::IQ1_S).name, "iq1_s");
  EXPECT_EQ(info(Format::IQ1_S).ggmlType, 19);
  EXPECT_EQ(info(Format::IQ1_S).blockBytes, 50u);
  EXPECT_STREQ(info(Format::IQ1_M).name, "iq1_m");
  EXPECT_EQ(info(Format::IQ1_M).ggmlType, 29);
  EXPECT_EQ(info(Format::IQ1_M).blockBytes, 56u);
  for (Format f : kIQ1Formats) {
    const FormatInfo &fi = info(f);
    EXPECT_EQ(fi.blockSize, 256u);
    EXPECT_EQ(fi.kind, FormatKind::Codebook);
    EXPECT_EQ(findByGGMLType(fi.ggmlType), &fi);
    EXPECT_EQ(findByName(ggmlName(f)), &fi);
  }
}

/// GGML refuses IQ1_S without importance (requiresImportance); ours encodes
/// it without, like IQ1_M.
TEST(IQ1Quants, UseImportance) {
  for (Format f : kIQ1Formats)
    EXPECT_TRUE(supportsImportance(f)) << info(f).name;
  EXPECT_TRUE(requiresImportance(Format::IQ1_S));
  EXPECT_FALSE(requiresImportance(Format::IQ1_M));
}

/// Importance that is zero over a whole super-block counts as uniform, as
/// for the other importance-aware encoders: the bytes are those of no
/// importance.
TEST(IQ1Quants, ZeroImportanceEncodesAsNoImportance) {
  std::vector<float> x = gaussian(512, 5), zeros(512, 0.0f);
  for (Format f : kIQ1Formats) {
    std::vector<uint8_t> plain(rowBytes(info(f), 512)), zero(plain.size());
    ASSERT_TRUE(quantizeRow(f, x.data(), plain.data(), 512, nullptr));
    ASSERT_TRUE(quantizeRow(f, x.data(), zero.data(), 512, zeros.data()));
    EXPECT_EQ(plain, zero) << info(f).name;
  }
}

/// Rows that are exactly on the format's lattice (random grid points,
/// shifts and scales; every block has a sub-block at ls = 7) come back
/// exactly (up to rounding): the search finds the grid points and scales.
TEST(IQ1Quants, LatticeRowsRoundTrip) {
  uint64_t state = 99;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  for (Format f : kIQ1Formats) {
    const FormatInfo &fi = info(f);
    const int blocks = 8;
    std::vector<uint8_t> bytes(blocks * fi.blockBytes), again(bytes.size());
    for (uint8_t &b : bytes)
      b = static_cast<uint8_t>(next());
    // A sane positive f16 d in [0.5, 1) and one sub-block at ls = 7.
    for (int b = 0; b < blocks; ++b) {
      uint8_t *blk = bytes.data() + b * fi.blockBytes;
      const uint16_t d = static_cast<uint16_t>(0x3800 | (next() & 0x3ff));
      if (f == Format::IQ1_S) {
        blk[0] = static_cast<uint8_t>(d);
        blk[1] = static_cast<uint8_t>(d >> 8);
        blk[34 + 1] |= 0x70; // qh[0]: ls = 7.
      } else {
        for (int i = 0; i < 4; ++i)
          blk[48 + 2 * i + 1] = static_cast<uint8_t>(
              (blk[48 + 2 * i + 1] & 0x0f) | (((d >> (4 * i)) & 0xf) << 4));
        blk[48] |= 7; // ls = 7 for the first 16 weights.
      }
    }
    std::vector<float> x(blocks * 256), y(x.size());
    dequantizeRow(f, bytes.data(), x.data(), x.size());
    ASSERT_TRUE(quantizeRow(f, x.data(), again.data(), x.size(), nullptr));
    dequantizeRow(f, again.data(), y.data(), y.size());
    double err = 0, sig = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (static_cast<double>(y[i]) - x[i]) * (y[i] - x[i]);
      sig += static_cast<double>(x[i]) * x[i];
    }
    EXPECT_LE(std::sqrt(err / sig), 1e-6) << fi.name;
  }
}

} // namespace
