//===- KQuantsTest.cpp - Q2_K..Q6_K codecs against ggml's golden data -----===//
//
// Decoders must reproduce ggml's dequantized floats bit for bit; encoders
// must quantise the golden matrix with at most 2% more error than ggml.
//
//===----------------------------------------------------------------------===//

#include "../../../lib/Formats/Codecs.h"
#include "lowbit/GGUF/GGUF.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace lowbit::formats::detail;

namespace {

constexpr int kRows = 16, kCols = 512, kSpikeRow = 7;

/// The golden file, opened once for all tests.
class GoldenFile {
public:
  static const GoldenFile &get() {
    static const GoldenFile file(LOWBIT_SHARED_DIR "/golden/ggml-golden.gguf");
    return file;
  }
  bool ok() const { return reader_ != nullptr; }
  const uint8_t *tensor(const std::string &name) const {
    const lowbit::gguf::TensorInfo *t = reader_->findTensor(name);
    return t ? reader_->tensorData(*t) : nullptr;
  }
  const float *floats(const std::string &name) const {
    return reinterpret_cast<const float *>(tensor(name));
  }
  uint64_t byteSize(const std::string &name) const {
    const lowbit::gguf::TensorInfo *t = reader_->findTensor(name);
    return t ? t->byteSize : 0;
  }

private:
  explicit GoldenFile(const char *path) {
    lowbit::gguf::Error err;
    reader_ = lowbit::gguf::Reader::open(path, err);
  }
  std::unique_ptr<lowbit::gguf::Reader> reader_;
};

struct Codec {
  const char *name;
  DecodeFn decode;
  EncodeFn encode;
  size_t blockBytes;
};

const Codec kCodecs[] = {
    {"Q2_K", decode_q2_k, encode_q2_k, 84},
    {"Q3_K", decode_q3_k, encode_q3_k, 110},
    {"Q4_K", decode_q4_k, encode_q4_k, 144},
    {"Q5_K", decode_q5_k, encode_q5_k, 176},
    {"Q6_K", decode_q6_k, encode_q6_k, 210},
};

size_t rowBytes(const Codec &c) { return kCols / 256 * c.blockBytes; }

struct Errors {
  double rmse, wrmse, rmseNoSpike;
  bool finite;
};

/// errors.md's definitions: RMSE over all cells, importance-weighted RMSE,
/// and RMSE over the rows other than the spike row.
Errors measure(const float *got, const float *src, const float *imp) {
  double se = 0, seNoSpike = 0, wse = 0, sumImp = 0;
  bool finite = true;
  for (int c = 0; c < kCols; ++c)
    sumImp += imp[c];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) {
      const float v = got[r * kCols + c];
      finite &= std::isfinite(v);
      const double d = double(v) - double(src[r * kCols + c]);
      se += d * d;
      wse += imp[c] * d * d;
      if (r != kSpikeRow)
        seNoSpike += d * d;
    }
  return {std::sqrt(se / (kRows * kCols)), std::sqrt(wse / (kRows * sumImp)),
          std::sqrt(seNoSpike / ((kRows - 1) * kCols)), finite};
}

std::vector<float> decodeAll(const Codec &c, const uint8_t *q) {
  std::vector<float> out(kRows * kCols);
  for (int r = 0; r < kRows; ++r)
    c.decode(q + r * rowBytes(c), out.data() + r * kCols, kCols);
  return out;
}

std::vector<uint8_t> encodeAll(const Codec &c, const float *src,
                               const float *imp) {
  std::vector<uint8_t> q(kRows * rowBytes(c));
  for (int r = 0; r < kRows; ++r)
    c.encode(src + r * kCols, q.data() + r * rowBytes(c), kCols, imp);
  return q;
}

class KQuants : public ::testing::TestWithParam<std::tuple<int, bool>> {
protected:
  void SetUp() override {
    if (!GoldenFile::get().ok())
      GTEST_SKIP() << "golden file not found under " LOWBIT_SHARED_DIR;
  }
  const Codec &codec() const { return kCodecs[std::get<0>(GetParam())]; }
  bool withImportance() const { return std::get<1>(GetParam()); }
  std::string variant() const {
    return std::string(codec().name) +
           (withImportance() ? ".imatrix" : ".plain");
  }
};

TEST_P(KQuants, DecodeIsBitExact) {
  const GoldenFile &g = GoldenFile::get();
  const uint8_t *q = g.tensor(variant());
  const float *want = g.floats(variant() + ".dequant");
  ASSERT_TRUE(q && want) << variant();
  ASSERT_EQ(g.byteSize(variant()), kRows * rowBytes(codec()));
  std::vector<float> got = decodeAll(codec(), q);
  int mismatches = 0;
  for (int i = 0; i < kRows * kCols; ++i)
    mismatches += floatBits(got[i]) != floatBits(want[i]);
  EXPECT_EQ(mismatches, 0) << variant();
}

TEST_P(KQuants, EncodeErrorWithinGGML) {
  const GoldenFile &g = GoldenFile::get();
  const float *src = g.floats("source");
  const float *imp = g.floats("importance");
  ASSERT_TRUE(src && imp);
  const Errors ggml = measure(g.floats(variant() + ".dequant"), src, imp);
  std::vector<uint8_t> q =
      encodeAll(codec(), src, withImportance() ? imp : nullptr);
  std::vector<float> dq = decodeAll(codec(), q.data());
  const Errors ours = measure(dq.data(), src, imp);
  std::printf("%-13s rmse %.6f (ggml %.6f)  w-rmse %.6f (ggml %.6f)  "
              "rmse-no7 %.6f (ggml %.6f)\n",
              variant().c_str(), ours.rmse, ggml.rmse, ours.wrmse, ggml.wrmse,
              ours.rmseNoSpike, ggml.rmseNoSpike);
  EXPECT_TRUE(ours.finite);
  constexpr double kSlack = 1.02;
  EXPECT_LE(ours.rmse, ggml.rmse * kSlack);
  EXPECT_LE(ours.rmseNoSpike, ggml.rmseNoSpike * kSlack);
  if (withImportance())
    EXPECT_LE(ours.wrmse, ggml.wrmse * kSlack);
}

TEST_P(KQuants, ThreadSafeAndDeterministic) {
  const GoldenFile &g = GoldenFile::get();
  const float *src = g.floats("source");
  const float *imp = withImportance() ? g.floats("importance") : nullptr;
  const std::vector<uint8_t> want = encodeAll(codec(), src, imp);
  std::vector<std::vector<uint8_t>> got(4);
  std::vector<std::thread> threads;
  for (auto &out : got)
    threads.emplace_back([&] { out = encodeAll(codec(), src, imp); });
  for (auto &t : threads)
    t.join();
  for (const auto &out : got)
    EXPECT_EQ(out, want);
}

INSTANTIATE_TEST_SUITE_P(
    Golden, KQuants,
    ::testing::Combine(::testing::Range(0, 5), ::testing::Bool()),
    [](const ::testing::TestParamInfo<KQuants::ParamType> &info) {
      return std::string(kCodecs[std::get<0>(info.param)].name) +
             (std::get<1>(info.param) ? "_imatrix" : "_plain");
    });

// Degenerate inputs (zeros, lone spikes, constant rows, values beyond what
// the fp16 factors can scale, zero importance) must decode to finite values.
TEST(KQuantsEdge, DegenerateRowsStayFinite) {
  constexpr int n = 512;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> rows;
  rows.emplace_back(n, 0.f);
  rows.emplace_back(n, -3.f);
  rows.emplace_back(n, 1e-30f);
  std::vector<float> spike(n, 0.f);
  spike[5] = 6e4f;
  rows.push_back(spike);
  std::vector<float> noisy(n);
  for (float &v : noisy)
    v = normal(rng);
  noisy[300] = -1e4f;
  rows.push_back(noisy);
  std::vector<float> huge(n);
  for (int i = 0; i < n; ++i)
    huge[i] = (i % 3 ? 1e30f : -3e38f) * normal(rng);
  rows.push_back(huge);
  std::vector<float> tiny(n);
  for (float &v : tiny)
    v = 1e-40f * normal(rng); // Subnormal floats.
  rows.push_back(tiny);
  std::vector<float> zeroImp(n, 0.f), oneImp(n, 1.f);
  for (const Codec &c : kCodecs)
    for (const auto &row : rows)
      for (const float *imp :
           {(const float *)nullptr, (const float *)zeroImp.data(),
            (const float *)oneImp.data()}) {
        std::vector<uint8_t> q(n / 256 * c.blockBytes);
        std::vector<float> out(n);
        c.encode(row.data(), q.data(), n, imp);
        c.decode(q.data(), out.data(), n);
        for (int i = 0; i < n; ++i)
          ASSERT_TRUE(std::isfinite(out[i])) << c.name << " col " << i;
      }
}

} // namespace
