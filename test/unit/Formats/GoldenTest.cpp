//===- GoldenTest.cpp - Codecs against ggml's golden data -----------------===//
//
// Conformance over the format registry: for every format of FormatTable.def
// that the golden file (shared/golden/ggml-golden.gguf, see its README.md)
// holds, decode ggml's bytes and compare float bits with ggml's dequantized
// tensor, and encode the source matrix and compare the error with ggml's
// (shared/golden/errors.md). A new table row is tested as soon as it has a
// codec and the golden file has its type.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/GGUF.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace lowbit::formats;

namespace {

constexpr int64_t kRows = 16;
constexpr int64_t kCols = 512;
constexpr int64_t kSpikeRow = 7; // The row with the single 1e4 value.
/// Our error may exceed ggml's by at most this factor.
constexpr double kErrorSlack = 1.02;

/// Formats whose encoders must be at least as good as ggml's on every
/// column of errors.md (largest errors included), with no slack.
bool beatsGgmlOnEveryColumn(Format f) {
  return f == Format::IQ1_S || f == Format::IQ1_M;
}

const std::string kGoldenDir = LOWBIT_SHARED_DIR "/golden";

/// The golden GGUF file, opened once for all tests (null when absent).
const lowbit::gguf::Reader *golden() {
  static std::unique_ptr<lowbit::gguf::Reader> reader = [] {
    lowbit::gguf::Error err;
    auto r = lowbit::gguf::Reader::open(kGoldenDir + "/ggml-golden.gguf", err);
    if (!r)
      std::cerr << "golden file not loaded: " << err.message() << "\n";
    return r;
  }();
  return reader.get();
}

/// ggml's numbers for one type and variant, from errors.md.
struct GgmlError {
  double bpw = 0, rmse = 0, maxAbs = 0, weightedRmse = 0;
  double rmseWithoutSpike = 0, maxAbsWithoutSpike = 0;
};

/// Parses the first table of errors.md: "| TYPE | variant | bpw | RMSE |
/// max abs | w-RMSE | RMSE excl. row 7 | max abs excl. row 7 |".
const std::map<std::string, GgmlError> &ggmlErrors() {
  static const std::map<std::string, GgmlError> table = [] {
    std::map<std::string, GgmlError> result;
    std::ifstream in(kGoldenDir + "/errors.md");
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> cells;
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, '|')) {
        size_t b = cell.find_first_not_of(' ');
        size_t e = cell.find_last_not_of(' ');
        cells.push_back(b == std::string::npos ? ""
                                               : cell.substr(b, e - b + 1));
      }
      // Leading empty cell, then 8 columns.
      if (cells.size() < 9 || (cells[2] != "plain" && cells[2] != "imatrix"))
        continue;
      GgmlError e;
      e.bpw = std::stod(cells[3]);
      e.rmse = std::stod(cells[4]);
      e.maxAbs = std::stod(cells[5]);
      e.weightedRmse = std::stod(cells[6]);
      e.rmseWithoutSpike = std::stod(cells[7]);
      e.maxAbsWithoutSpike = std::stod(cells[8]);
      result[cells[1] + "." + cells[2]] = e;
    }
    return result;
  }();
  return table;
}

const char *const kVariants[] = {"plain", "imatrix"};

const float *goldenFloats(const char *name) {
  const lowbit::gguf::TensorInfo *t = golden()->findTensor(name);
  if (!t || t->ggmlType != 0)
    return nullptr;
  return reinterpret_cast<const float *>(golden()->tensorData(*t));
}

std::vector<Format> registry() {
  size_t count;
  const FormatInfo *all = allFormats(count);
  std::vector<Format> formats;
  for (size_t i = 0; i < count; ++i)
    formats.push_back(all[i].format);
  return formats;
}

class GoldenFormatTest : public ::testing::TestWithParam<Format> {
protected:
  void SetUp() override {
    const FormatInfo &fi = info(GetParam());
    if (fi.ggmlType < 0)
      GTEST_SKIP() << fi.name << " is not a GGUF format";
    if (!golden())
      GTEST_SKIP() << "golden data missing: " << kGoldenDir
                   << "/ggml-golden.gguf";
    bool present = false;
    for (const char *variant : kVariants)
      present |= tensorOf(variant) != nullptr;
    if (!present)
      GTEST_SKIP() << ggmlName(GetParam()) << " is not in the golden file";
    ASSERT_TRUE(hasCodec(GetParam()))
        << fi.name << " is in the golden file but has no codec";
  }

  const lowbit::gguf::TensorInfo *tensorOf(const std::string &variant) {
    return golden()->findTensor(std::string(ggmlName(GetParam())) + "." +
                                variant);
  }
};

TEST_P(GoldenFormatTest, DecodeIsBitExact) {
  const Format format = GetParam();
  const FormatInfo &fi = info(format);
  for (const char *variant : kVariants) {
    const lowbit::gguf::TensorInfo *quant = tensorOf(variant);
    if (!quant)
      continue;
    SCOPED_TRACE(std::string(ggmlName(format)) + "." + variant);
    ASSERT_EQ(quant->ggmlType, static_cast<uint32_t>(fi.ggmlType));
    ASSERT_EQ(quant->byteSize, kRows * rowBytes(fi, kCols));
    std::string dequantName =
        std::string(ggmlName(format)) + "." + variant + ".dequant";
    const float *expected = goldenFloats(dequantName.c_str());
    ASSERT_NE(expected, nullptr) << "missing " << dequantName;

    std::vector<float> decoded(kRows * kCols);
    dequantizeRows(format, golden()->tensorData(*quant), decoded.data(), kRows,
                   kCols, 1);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < kRows * kCols; ++i) {
      uint32_t want, got;
      std::memcpy(&want, &expected[i], 4);
      std::memcpy(&got, &decoded[i], 4);
      if (want == got)
        continue;
      if (mismatches++ < 5)
        ADD_FAILURE() << "row " << i / kCols << " column " << i % kCols
                      << ": expected " << expected[i] << " (0x" << std::hex
                      << want << "), decoded " << decoded[i] << " (0x" << got
                      << std::dec << ")";
    }
    EXPECT_EQ(mismatches, 0);

    // The multi-threaded decoder must agree with the single-threaded one.
    std::vector<float> threaded(kRows * kCols);
    dequantizeRows(format, golden()->tensorData(*quant), threaded.data(), kRows,
                   kCols, 4);
    EXPECT_EQ(0, std::memcmp(threaded.data(), decoded.data(),
                             decoded.size() * sizeof(float)));
  }
}

struct ErrorStats {
  double rmse = 0, weightedRmse = 0, rmseWithoutSpike = 0;
  double maxAbs = 0, maxAbsWithoutSpike = 0;
};

/// The metrics of errors.md, in double precision.
ErrorStats measure(const float *source, const float *decoded,
                   const float *importance) {
  double sum = 0, sumWithoutSpike = 0, weighted = 0, importanceSum = 0;
  double maxAbs = 0, maxAbsWithoutSpike = 0;
  for (int64_t c = 0; c < kCols; ++c)
    importanceSum += importance[c];
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t c = 0; c < kCols; ++c) {
      double diff = static_cast<double>(decoded[r * kCols + c]) -
                    static_cast<double>(source[r * kCols + c]);
      sum += diff * diff;
      weighted += importance[c] * diff * diff;
      maxAbs = std::max(maxAbs, std::fabs(diff));
      if (r != kSpikeRow) {
        sumWithoutSpike += diff * diff;
        maxAbsWithoutSpike = std::max(maxAbsWithoutSpike, std::fabs(diff));
      }
    }
  ErrorStats s;
  s.maxAbs = maxAbs;
  s.maxAbsWithoutSpike = maxAbsWithoutSpike;
  s.rmse = std::sqrt(sum / (kRows * kCols));
  s.rmseWithoutSpike = std::sqrt(sumWithoutSpike / ((kRows - 1) * kCols));
  s.weightedRmse = std::sqrt(weighted / (kRows * importanceSum));
  return s;
}

TEST_P(GoldenFormatTest, EncodeErrorWithinGgml) {
  const Format format = GetParam();
  const FormatInfo &fi = info(format);
  const float *source = goldenFloats("source");
  const float *importance = goldenFloats("importance");
  ASSERT_NE(source, nullptr);
  ASSERT_NE(importance, nullptr);
  if (ggmlErrors().empty())
    GTEST_SKIP() << "errors.md missing or unreadable in " << kGoldenDir;

  for (const char *variant : kVariants) {
    if (!tensorOf(variant))
      continue;
    const std::string key = std::string(ggmlName(format)) + "." + variant;
    SCOPED_TRACE(key);
    auto it = ggmlErrors().find(key);
    ASSERT_NE(it, ggmlErrors().end()) << "no errors.md row for " << key;
    const GgmlError &ggml = it->second;
    EXPECT_DOUBLE_EQ(fi.bitsPerWeight(), ggml.bpw);

    const bool withImportance = std::string(variant) == "imatrix";
    std::vector<uint8_t> bytes(kRows * rowBytes(fi, kCols));
    std::string why;
    ASSERT_TRUE(quantizeRows(format, source, bytes.data(), kRows, kCols,
                             withImportance ? importance : nullptr, 0, &why))
        << why;
    std::vector<float> decoded(kRows * kCols);
    dequantizeRows(format, bytes.data(), decoded.data(), kRows, kCols, 1);
    ErrorStats ours = measure(source, decoded.data(), importance);

    std::cout << "[ error ] " << key << "  RMSE " << ours.rmse << " (ggml "
              << ggml.rmse << ")  RMSE w/o row 7 " << ours.rmseWithoutSpike
              << " (ggml " << ggml.rmseWithoutSpike << ")  w-RMSE "
              << ours.weightedRmse << " (ggml " << ggml.weightedRmse
              << ")  max abs " << ours.maxAbs << " (ggml " << ggml.maxAbs
              << ")  max abs w/o row 7 " << ours.maxAbsWithoutSpike << " (ggml "
              << ggml.maxAbsWithoutSpike << ")\n";
    EXPECT_LE(ours.rmse, ggml.rmse * kErrorSlack);
    EXPECT_LE(ours.rmseWithoutSpike, ggml.rmseWithoutSpike * kErrorSlack);
    if (withImportance)
      EXPECT_LE(ours.weightedRmse, ggml.weightedRmse * kErrorSlack);
    if (beatsGgmlOnEveryColumn(format)) {
      EXPECT_LE(ours.rmse, ggml.rmse);
      EXPECT_LE(ours.maxAbs, ggml.maxAbs);
      EXPECT_LE(ours.weightedRmse, ggml.weightedRmse);
      EXPECT_LE(ours.rmseWithoutSpike, ggml.rmseWithoutSpike);
      EXPECT_LE(ours.maxAbsWithoutSpike, ggml.maxAbsWithoutSpike);
    }
  }
}

/// Formats whose encoder without importance is ggml's reference
/// round-to-nearest: the bytes must match ggml's exactly. (Encoders that
/// ignore importance must give the same bytes with it.)
TEST_P(GoldenFormatTest, ReferenceEncoderBytesMatchGgml) {
  const Format format = GetParam();
  static const Format kReferenceEncoders[] = {
      Format::F16,  Format::BF16, Format::Q4_0,  Format::Q4_1, Format::Q5_0,
      Format::Q5_1, Format::Q8_0, Format::TQ1_0, Format::TQ2_0};
  if (std::find(std::begin(kReferenceEncoders), std::end(kReferenceEncoders),
                format) == std::end(kReferenceEncoders))
    GTEST_SKIP() << info(format).name << " uses its own encoder";
  const FormatInfo &fi = info(format);
  const float *source = goldenFloats("source");
  const float *importance = goldenFloats("importance");
  ASSERT_NE(source, nullptr);
  for (const char *variant : kVariants) {
    const bool withImportance = std::string(variant) == "imatrix";
    if (withImportance && supportsImportance(format))
      continue;
    const lowbit::gguf::TensorInfo *quant = tensorOf(variant);
    if (!quant)
      continue;
    SCOPED_TRACE(std::string(ggmlName(format)) + "." + variant);
    std::vector<uint8_t> bytes(kRows * rowBytes(fi, kCols));
    std::string why;
    ASSERT_TRUE(quantizeRows(format, source, bytes.data(), kRows, kCols,
                             withImportance ? importance : nullptr, 1, &why))
        << why;
    ASSERT_EQ(bytes.size(), quant->byteSize);
    const uint8_t *want = golden()->tensorData(*quant);
    int64_t firstDiff = -1;
    for (size_t i = 0; i < bytes.size() && firstDiff < 0; ++i)
      if (bytes[i] != want[i])
        firstDiff = static_cast<int64_t>(i);
    EXPECT_EQ(firstDiff, -1) << "first differing byte " << firstDiff << " (row "
                             << firstDiff / rowBytes(fi, kCols) << ")";
  }
}

/// requiresImportance() is ggml_quantize_requires_imatrix(), which the
/// golden file records for its types.
TEST_P(GoldenFormatTest, RequiresImportanceAsGgml) {
  const lowbit::gguf::KeyValue *only =
      golden()->find("golden.imatrix_only_types");
  ASSERT_NE(only, nullptr);
  bool listed = false;
  for (const lowbit::gguf::Value &v : only->value.elements)
    listed |= v.str == ggmlName(GetParam());
  EXPECT_EQ(requiresImportance(GetParam()), listed);
  // Every variant ggml wrote must be there: a plain one only when ggml
  // encodes without importance.
  EXPECT_EQ(tensorOf("plain") == nullptr, listed);
}

std::string formatName(const ::testing::TestParamInfo<Format> &p) {
  return lowbit::formats::info(p.param).name;
}

INSTANTIATE_TEST_SUITE_P(Registry, GoldenFormatTest,
                         ::testing::ValuesIn(registry()), formatName);

} // namespace
