//===- CalibratorTest.cpp - Calibration runs, state files, Hessians -------===//
//
// A small random llama model in memory is calibrated; the statistics must be
// those of the activations the executor hands to its observer, the Hessians
// X^T X of the same activations (shared by the weights that read the same
// input), identical whether they fit in one pass or need several, and the
// state file must read back through IMatrix, readCalibrationState and
// HessianStore.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/Calibration/Hessian.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/Exec/Executor.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/GGUF.h"

#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <unistd.h>

using namespace lowbit;
using namespace lowbit::calib;

namespace {

constexpr int64_t kDim = 32, kFFN = 64, kVocab = 40, kLayers = 2, kCtx = 16;

std::string layerWeightName(int64_t layer, const char *what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

exec::ModelDesc makeModel() {
  std::map<std::string, exec::WeightRef> weights;
  auto blobs = std::make_shared<std::vector<std::vector<float>>>();
  blobs->reserve(64);
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto add = [&](const std::string &name, int64_t rows, int64_t cols,
                 float scale, float offset) {
    std::vector<float> w(rows * cols);
    for (float &x : w)
      x = offset + scale * normal(rng);
    blobs->push_back(std::move(w));
    exec::WeightRef ref;
    ref.format = formats::Format::F32;
    ref.rows = rows;
    ref.cols = cols;
    ref.rowBytes = cols * sizeof(float);
    ref.data = reinterpret_cast<const uint8_t *>(blobs->back().data());
    weights[name] = ref;
  };
  const int64_t q = 4 * 8, kv = 2 * 8;
  add("token_embd.weight", kVocab, kDim, 1.0f, 0.0f);
  for (int64_t l = 0; l < kLayers; ++l) {
    add(layerWeightName(l, "attn_norm"), 1, kDim, 0.1f, 1.0f);
    add(layerWeightName(l, "attn_q"), q, kDim, 0.3f, 0.0f);
    add(layerWeightName(l, "attn_k"), kv, kDim, 0.3f, 0.0f);
    add(layerWeightName(l, "attn_v"), kv, kDim, 0.3f, 0.0f);
    add(layerWeightName(l, "attn_output"), kDim, q, 0.2f, 0.0f);
    add(layerWeightName(l, "ffn_norm"), 1, kDim, 0.1f, 1.0f);
    add(layerWeightName(l, "ffn_gate"), kFFN, kDim, 0.3f, 0.0f);
    add(layerWeightName(l, "ffn_up"), kFFN, kDim, 0.3f, 0.0f);
    add(layerWeightName(l, "ffn_down"), kDim, kFFN, 0.2f, 0.0f);
  }
  add("output_norm.weight", 1, kDim, 0.1f, 1.0f);
  add("output.weight", kVocab, kDim, 0.3f, 0.0f);
  lowbit::testing::DecoderShape shape;
  shape.vocab = kVocab;
  shape.embedding = kDim;
  shape.layers = kLayers;
  shape.heads = 4;
  shape.kvHeads = 2;
  shape.feedForward = kFFN;
  shape.context = 64;
  exec::ModelDesc d;
  std::string err;
  EXPECT_TRUE(lowbit::testing::makeDecoder(shape, weights, blobs, d, err))
      << err;
  return d;
}

std::unique_ptr<exec::Executor> makeExecutor(const exec::ModelDesc &d,
                                             int threads) {
  exec::ExecOptions options;
  options.threads = threads;
  options.contextSize = kCtx;
  options.batchSize = kCtx;
  std::string err;
  auto ex = exec::Executor::create(d, options, err);
  EXPECT_TRUE(ex) << err;
  return ex;
}

std::vector<int32_t> randomTokens(size_t n) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> token(0, kVocab - 1);
  std::vector<int32_t> tokens(n);
  for (int32_t &t : tokens)
    t = token(rng);
  return tokens;
}

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/lowbit-calib-" + std::to_string(::getpid()) +
         "-" + name;
}

/// Sums of squares, sums and X^T X recorded by a plain observer.
struct Reference {
  std::map<std::string, std::vector<double>> sum2, sum, xtx;
  std::map<std::string, double> count;
};

Reference observeDirectly(const exec::ModelDesc &d,
                          const std::vector<int32_t> &tokens, int64_t chunks,
                          int32_t bos) {
  Reference ref;
  auto ex = makeExecutor(d, 1);
  ex->setObserver(
      [&](const std::string &name, int64_t, int64_t, const float *x, int64_t n,
          int64_t k) {
        auto &s2 = ref.sum2[name], &s = ref.sum[name], &h = ref.xtx[name];
        s2.resize(k);
        s.resize(k);
        h.resize(k * k);
        for (int64_t t = 0; t < n; ++t)
          for (int64_t i = 0; i < k; ++i) {
            s2[i] += double(x[t * k + i]) * x[t * k + i];
            s[i] += x[t * k + i];
            for (int64_t j = 0; j < k; ++j)
              h[i * k + j] += double(x[t * k + i]) * x[t * k + j];
          }
        ref.count[name] += double(n);
      });
  std::vector<float> logits;
  std::string err;
  for (int64_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * kCtx,
                               tokens.begin() + (c + 1) * kCtx);
    chunk[0] = bos;
    ex->reset();
    EXPECT_TRUE(ex->eval(chunk.data(), kCtx, 0, logits, 0, err)) << err;
  }
  return ref;
}

TEST(Calibrator, StatisticsAndHessiansMatchTheObservedActivations) {
  exec::ModelDesc d = makeModel();
  std::vector<int32_t> tokens = randomTokens(5 * kCtx + 7);
  auto ex = makeExecutor(d, 2);
  CalibrationOptions options;
  options.contextSize = kCtx;
  options.hessians = true;
  options.scratchPath = tempPath("scratch");
  CalibrationResult result;
  std::string err;
  ASSERT_TRUE(runCalibration(*ex, tokens, 1, options, result, err)) << err;
  EXPECT_EQ(result.chunks, 5);
  EXPECT_EQ(result.passes, 1);
  EXPECT_EQ(result.tokens.size(), size_t(5 * kCtx));
  EXPECT_GT(result.ppl, 1.0);
  // Every chunk starts with BOS (id 1).
  EXPECT_GE(result.tokenCounts[1], 5.0f);

  Reference ref = observeDirectly(d, tokens, 5, 1);
  ASSERT_EQ(result.imatrix.entries.size(), ref.sum2.size());
  EXPECT_TRUE(result.imatrix.entries.count("output.weight"));
  for (const auto &[name, sum2] : ref.sum2) {
    const IMatrixEntry &e = result.imatrix.entries.at(name);
    ASSERT_EQ(e.sumSquares.size(), sum2.size()) << name;
    EXPECT_EQ(e.counts[0], 5 * kCtx) << name;
    for (size_t c = 0; c < sum2.size(); ++c) {
      EXPECT_NEAR(e.sumSquares[c], sum2[c], 1e-5 * sum2[c] + 1e-6) << name;
      EXPECT_NEAR(e.sum[c], ref.sum.at(name)[c], 1e-4) << name;
    }
  }

  // q/k/v share a Hessian, gate/up another; every matmul input has one.
  std::map<std::string, const HessianGroup *> groupOf;
  for (const HessianGroup &g : result.hessians)
    for (const std::string &w : g.weights)
      groupOf[w] = &g;
  EXPECT_EQ(groupOf.size(), ref.sum2.size());
  EXPECT_EQ(groupOf.at("blk.0.attn_q.weight"),
            groupOf.at("blk.0.attn_v.weight"));
  EXPECT_EQ(groupOf.at("blk.1.ffn_gate.weight"),
            groupOf.at("blk.1.ffn_up.weight"));
  EXPECT_NE(groupOf.at("blk.0.attn_q.weight"),
            groupOf.at("blk.0.ffn_gate.weight"));
  EXPECT_EQ(groupOf.at("blk.0.ffn_down.weight")->weights.size(), 1u);

  std::string state = tempPath("state.gguf");
  ASSERT_TRUE(writeCalibrationState(state, result, "00000000deadbeef",
                                    options.scratchPath, err))
      << err;
  std::remove(options.scratchPath.c_str());

  std::unique_ptr<HessianStore> store = HessianStore::open(state, err);
  ASSERT_TRUE(store) << err;
  EXPECT_EQ(store->tokens(), uint64_t(5 * kCtx));
  for (const auto &[name, xtx] : ref.xtx) {
    ASSERT_TRUE(store->has(name)) << name;
    std::vector<float> h;
    int64_t k = 0;
    ASSERT_TRUE(store->get(name, h, k, err)) << err;
    ASSERT_EQ(size_t(k * k), xtx.size()) << name;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_NEAR(h[i * k + j], xtx[i * k + j],
                    1e-4 * std::fabs(xtx[i * k + j]) + 1e-4)
            << name << " " << i << "," << j;
        EXPECT_EQ(h[i * k + j], h[j * k + i]);
      }
  }
  EXPECT_FALSE(store->has("token_embd.weight"));
  std::vector<float> h;
  int64_t k = 0;
  EXPECT_FALSE(store->get("nope", h, k, err));
  EXPECT_NE(err.find("no Hessian for 'nope'"), std::string::npos) << err;

  CalibrationState read;
  ASSERT_TRUE(readCalibrationState(state, read, err)) << err;
  EXPECT_EQ(read.modelFingerprint, "00000000deadbeef");
  EXPECT_EQ(read.tokens, result.tokens);
  EXPECT_EQ(read.tokenCounts, result.tokenCounts);
  EXPECT_EQ(read.contextSize, kCtx);
  EXPECT_TRUE(read.hasHessians);
  EXPECT_EQ(read.imatrix.entries.size(), result.imatrix.entries.size());

  // A state file is an importance matrix too.
  IMatrix imatrix;
  ASSERT_TRUE(IMatrix::load(state, imatrix, err)) << err;
  EXPECT_EQ(imatrix.chunkCount, 5);
  EXPECT_EQ(imatrix.chunkSize, kCtx);
  EXPECT_EQ(imatrix.importance("blk.1.ffn_down.weight").size(), size_t(kFFN));
  EXPECT_EQ(imatrix.meanActivation("blk.1.ffn_down.weight").size(),
            size_t(kFFN));
  std::remove(state.c_str());
}

TEST(Calibrator, SmallHessianBudgetTakesMorePassesSameResult) {
  exec::ModelDesc d = makeModel();
  std::vector<int32_t> tokens = randomTokens(3 * kCtx);
  std::string err;
  auto run = [&](uint64_t budget, int threads, CalibrationResult &result,
                 const std::string &scratch) {
    auto ex = makeExecutor(d, threads);
    CalibrationOptions options;
    options.contextSize = kCtx;
    options.hessians = true;
    options.hessianBudget = budget;
    options.scratchPath = scratch;
    ASSERT_TRUE(runCalibration(*ex, tokens, 1, options, result, err)) << err;
  };
  CalibrationResult all, some;
  std::string scratchAll = tempPath("all"), scratchSome = tempPath("some");
  run(uint64_t(1) << 30, 1, all, scratchAll);
  // Room for the biggest Hessian (64 x 64 floats) and a little more.
  run(kFFN * kFFN * 4 + kDim * kDim * 4, 2, some, scratchSome);
  EXPECT_EQ(all.passes, 1);
  EXPECT_GE(some.passes, 3);
  std::string a = tempPath("a.gguf"), b = tempPath("b.gguf");
  ASSERT_TRUE(writeCalibrationState(a, all, "1", scratchAll, err)) << err;
  ASSERT_TRUE(writeCalibrationState(b, some, "1", scratchSome, err)) << err;
  auto sa = HessianStore::open(a, err), sb = HessianStore::open(b, err);
  ASSERT_TRUE(sa && sb) << err;
  for (const HessianGroup &g : all.hessians) {
    std::vector<float> ha, hb;
    int64_t ka, kb;
    ASSERT_TRUE(sa->get(g.weights[0], ha, ka, err)) << err;
    ASSERT_TRUE(sb->get(g.weights.back(), hb, kb, err)) << err;
    // Same sums in the same order, whatever the pass or thread count.
    EXPECT_EQ(ha, hb) << g.weights[0];
  }
  for (const std::string &p : {scratchAll, scratchSome, a, b})
    std::remove(p.c_str());
}

TEST(Calibrator, Errors) {
  exec::ModelDesc d = makeModel();
  auto ex = makeExecutor(d, 1);
  CalibrationOptions options;
  options.contextSize = kCtx;
  CalibrationResult result;
  std::string err;
  EXPECT_FALSE(
      runCalibration(*ex, randomTokens(kCtx - 1), 1, options, result, err));
  EXPECT_NE(err.find("fewer than one chunk of 16"), std::string::npos) << err;
  std::vector<int32_t> bad = randomTokens(kCtx);
  bad[3] = kVocab;
  EXPECT_FALSE(runCalibration(*ex, bad, 1, options, result, err));
  EXPECT_NE(err.find("outside the vocabulary"), std::string::npos) << err;
  options.hessians = true;
  options.hessianBudget = 100;
  options.scratchPath = tempPath("tiny");
  EXPECT_FALSE(
      runCalibration(*ex, randomTokens(kCtx), 1, options, result, err));
  EXPECT_NE(err.find("more than the Hessian budget of 100 bytes"),
            std::string::npos)
      << err;
  std::remove(options.scratchPath.c_str());

  // Reading: a missing file, a plain imatrix, a state without Hessians.
  std::unique_ptr<HessianStore> store =
      HessianStore::open(tempPath("missing.gguf"), err);
  EXPECT_FALSE(store);
  CalibrationState state;
  std::string plain = tempPath("plain.gguf");
  IMatrix im;
  im.entries["w"].sumSquares = {1, 2};
  im.entries["w"].counts = {1};
  ASSERT_TRUE(im.saveGGUF(plain, err)) << err;
  EXPECT_FALSE(readCalibrationState(plain, state, err));
  EXPECT_NE(err.find("not a lowbit calibration state file"), std::string::npos)
      << err;
  EXPECT_FALSE(HessianStore::open(plain, err));
  EXPECT_NE(err.find("no Hessians"), std::string::npos) << err;
  std::remove(plain.c_str());
}

} // namespace
