//===- AllocationTest.cpp - Bit allocation and sensitivity math -----------===//
//
// The allocator against brute force on small problems, its Lagrangian path
// against the exact one on larger ones, the damage terms against their
// definitions, and the saved-results file.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Analysis/BitAllocation.h"
#include "lowbit/Analysis/Sensitivity.h"
#include "lowbit/Analysis/SensitivityState.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <unistd.h>

using namespace lowbit;
using namespace lowbit::analysis;

namespace {

/// A random problem shaped like a model: options whose damage falls as their
/// size grows (roughly 4x per extra bit), sizes multiples of 32.
std::vector<AllocationTensor> randomProblem(std::mt19937 &rng, int tensors,
                                            int options) {
  std::uniform_int_distribution<int> size(1, 40);
  std::uniform_real_distribution<double> scale(0.1, 10.0);
  std::vector<AllocationTensor> problem;
  for (int t = 0; t < tensors; ++t) {
    AllocationTensor tensor;
    tensor.name = "t" + std::to_string(t);
    uint64_t bytes = 32 * static_cast<uint64_t>(size(rng));
    double damage = scale(rng);
    for (int o = 0; o < options; ++o) {
      tensor.options.push_back({bytes, damage, o});
      bytes += 32 * static_cast<uint64_t>(size(rng));
      damage *= std::uniform_real_distribution<double>(0.1, 0.9)(rng);
    }
    // Not always sorted, and sometimes a dominated option.
    std::shuffle(tensor.options.begin(), tensor.options.end(), rng);
    problem.push_back(std::move(tensor));
  }
  return problem;
}

/// Least damage within the budget by trying every combination.
double bruteForce(const std::vector<AllocationTensor> &problem,
                  uint64_t budget) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> choice(problem.size(), 0);
  while (true) {
    uint64_t bytes = 0;
    double damage = 0;
    for (size_t t = 0; t < problem.size(); ++t) {
      bytes += problem[t].options[choice[t]].bytes;
      damage += problem[t].options[choice[t]].damage;
    }
    if (bytes <= budget)
      best = std::min(best, damage);
    size_t t = 0;
    for (; t < problem.size(); ++t) {
      if (++choice[t] < problem[t].options.size())
        break;
      choice[t] = 0;
    }
    if (t == problem.size())
      return best;
  }
}

uint64_t smallest(const std::vector<AllocationTensor> &problem) {
  uint64_t total = 0;
  for (const AllocationTensor &t : problem) {
    uint64_t m = UINT64_MAX;
    for (const AllocationOption &o : t.options)
      m = std::min(m, o.bytes);
    total += m;
  }
  return total;
}

uint64_t largest(const std::vector<AllocationTensor> &problem) {
  uint64_t total = 0;
  for (const AllocationTensor &t : problem) {
    uint64_t m = 0;
    for (const AllocationOption &o : t.options)
      m = std::max(m, o.bytes);
    total += m;
  }
  return total;
}

void checkConsistent(const std::vector<AllocationTensor> &problem,
                     const AllocationResult &r, uint64_t budget) {
  ASSERT_EQ(r.choice.size(), problem.size());
  uint64_t bytes = 0;
  double damage = 0;
  for (size_t t = 0; t < problem.size(); ++t) {
    ASSERT_LT(r.choice[t], problem[t].options.size());
    bytes += problem[t].options[r.choice[t]].bytes;
    damage += problem[t].options[r.choice[t]].damage;
  }
  EXPECT_EQ(bytes, r.bytes);
  EXPECT_NEAR(damage, r.damage, 1e-9 * std::max(1.0, damage));
  EXPECT_LE(r.bytes, budget);
}

TEST(BitAllocation, ExactMatchesBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    auto problem = randomProblem(rng, 2 + trial % 4, 2 + trial % 3);
    uint64_t lo = smallest(problem), hi = largest(problem);
    for (int step = 0; step <= 8; ++step) {
      uint64_t budget = lo + (hi - lo) * step / 8 + (step % 3) * 7;
      AllocationResult r;
      std::string err;
      ASSERT_TRUE(
          allocateBits(problem, budget, r, err, AllocationMethod::Exact))
          << err;
      EXPECT_EQ(r.method, "exact");
      checkConsistent(problem, r, budget);
      EXPECT_NEAR(r.damage, bruteForce(problem, budget),
                  1e-9 * std::max(1.0, r.damage))
          << "trial " << trial << " budget " << budget;
    }
  }
}

TEST(BitAllocation, LagrangianIsCloseToExact) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 10; ++trial) {
    auto problem = randomProblem(rng, 60, 8);
    uint64_t lo = smallest(problem), hi = largest(problem);
    for (int step = 1; step < 8; ++step) {
      uint64_t budget = lo + (hi - lo) * step / 8;
      AllocationResult exact, relaxed;
      std::string err;
      ASSERT_TRUE(
          allocateBits(problem, budget, exact, err, AllocationMethod::Exact))
          << err;
      ASSERT_TRUE(allocateBits(problem, budget, relaxed, err,
                               AllocationMethod::Lagrangian))
          << err;
      EXPECT_EQ(relaxed.method, "lagrangian");
      checkConsistent(problem, relaxed, budget);
      EXPECT_GE(relaxed.damage, exact.damage * (1 - 1e-12));
      // The greedy fill leaves little: within 2% of the optimum here.
      EXPECT_LE(relaxed.damage, exact.damage * 1.02)
          << "trial " << trial << " step " << step;
      // And it spends the budget like the exact solution does.
      EXPECT_GE(relaxed.bytes + 40 * 32, exact.bytes);
    }
  }
}

TEST(BitAllocation, FillsTheBudget) {
  // Damage always falls with size, so whatever budget the optimum leaves is
  // too small for any single upgrade (or it would have taken it).
  std::mt19937 rng(3);
  auto problem = randomProblem(rng, 30, 6);
  for (auto &t : problem)
    std::sort(t.options.begin(), t.options.end(),
              [](const AllocationOption &a, const AllocationOption &b) {
                return a.bytes < b.bytes;
              });
  uint64_t lo = smallest(problem), hi = largest(problem);
  for (uint64_t budget = lo + 1000; budget < hi - 1000; budget += 977) {
    AllocationResult r;
    std::string err;
    ASSERT_TRUE(allocateBits(problem, budget, r, err)) << err;
    EXPECT_LE(r.bytes, budget);
    for (size_t t = 0; t < problem.size(); ++t) {
      const AllocationOption &now = problem[t].options[r.choice[t]];
      for (const AllocationOption &o : problem[t].options)
        if (o.bytes > now.bytes)
          EXPECT_GT(o.bytes - now.bytes, budget - r.bytes)
              << "budget " << budget << " tensor " << t;
    }
  }
}

TEST(BitAllocation, Errors) {
  std::vector<AllocationTensor> problem = {
      {"a", {{100, 1.0, 0}, {200, 0.5, 1}}}, {"b", {{64, 2.0, 0}}}};
  AllocationResult r;
  std::string err;
  EXPECT_FALSE(allocateBits(problem, 163, r, err));
  EXPECT_NE(err.find("below the smallest possible size of 164"),
            std::string::npos)
      << err;
  ASSERT_TRUE(allocateBits(problem, 164, r, err)) << err;
  EXPECT_EQ(r.choice, (std::vector<size_t>{0, 0}));
  ASSERT_TRUE(allocateBits(problem, 264, r, err)) << err;
  EXPECT_EQ(r.choice, (std::vector<size_t>{1, 0}));
  problem.push_back({"c", {}});
  EXPECT_FALSE(allocateBits(problem, 1000, r, err));
  EXPECT_NE(err.find("'c' has no candidate"), std::string::npos) << err;
  problem.back().options.push_back({10, -1.0, 0});
  EXPECT_FALSE(allocateBits(problem, 1000, r, err));
  EXPECT_NE(err.find("negative"), std::string::npos) << err;
}

TEST(BitAllocation, ParseByteSize) {
  uint64_t b = 0;
  std::string err;
  ASSERT_TRUE(parseByteSize("123456", b, err));
  EXPECT_EQ(b, 123456u);
  ASSERT_TRUE(parseByteSize("3.2GiB", b, err));
  EXPECT_EQ(b, static_cast<uint64_t>(3.2 * 1024 * 1024 * 1024));
  ASSERT_TRUE(parseByteSize("3200MB", b, err));
  EXPECT_EQ(b, 3200000000u);
  ASSERT_TRUE(parseByteSize("512kib", b, err));
  EXPECT_EQ(b, 512u * 1024);
  ASSERT_TRUE(parseByteSize("10B", b, err));
  EXPECT_EQ(b, 10u);
  EXPECT_FALSE(parseByteSize("3.2G", b, err));
  EXPECT_NE(err.find("unknown unit 'G'"), std::string::npos) << err;
  EXPECT_FALSE(parseByteSize("lots", b, err));
  EXPECT_FALSE(parseByteSize("-5MB", b, err));
}

TEST(BitAllocation, TensorPins) {
  TensorPins pins;
  std::string err, rule;
  ASSERT_TRUE(pins.parse({"ffn_(up|gate)=q4_0", "ffn_.*=q6_k"}, err)) << err;
  EXPECT_EQ(pins.match("blk.0.ffn_up.weight", &rule),
            static_cast<int>(formats::Format::Q4_0));
  EXPECT_EQ(rule, "ffn_(up|gate)=q4_0");
  EXPECT_EQ(pins.match("blk.0.ffn_down.weight"),
            static_cast<int>(formats::Format::Q6_K));
  EXPECT_EQ(pins.match("blk.0.attn_q.weight"), -1);
  EXPECT_FALSE(pins.parse({"(=q8_0"}, err));
  EXPECT_NE(err.find("invalid --tensor-type regex '('"), std::string::npos)
      << err;
  EXPECT_FALSE(pins.parse({"ffn=q9"}, err));
  EXPECT_NE(err.find("unknown format 'q9'"), std::string::npos) << err;
}

//===----------------------------------------------------------------------===//
// Damage terms
//===----------------------------------------------------------------------===//

std::vector<float> gaussian(std::mt19937 &rng, size_t n, float sigma) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = normal(rng);
  return v;
}

TEST(Sensitivity, TermsMatchTheirDefinitions) {
  std::mt19937 rng(5);
  const int64_t rows = 24, cols = 256;
  std::vector<float> w = gaussian(rng, rows * cols, 0.05f);
  DamageWeights weights;
  weights.meanSquares.resize(cols);
  weights.means.resize(cols);
  for (int64_t c = 0; c < cols; ++c) {
    weights.means[c] = 0.5f * std::sin(float(c));
    weights.meanSquares[c] =
        weights.means[c] * weights.means[c] + 0.1f + 0.01f * float(c % 7);
  }
  DamageTerms terms;
  std::string err;
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_K, w.data(), rows, cols,
                                    0, weights, 2, terms, err))
      << err;

  // The same codec call by hand.
  const formats::FormatInfo &fi = formats::info(formats::Format::Q4_K);
  std::vector<uint8_t> bytes(formats::rowBytes(fi, cols) * rows);
  ASSERT_TRUE(formats::quantizeRows(formats::Format::Q4_K, w.data(),
                                    bytes.data(), rows, cols,
                                    weights.meanSquares.data(), 1));
  std::vector<float> q(rows * cols);
  formats::dequantizeRows(formats::Format::Q4_K, bytes.data(), q.data(), rows,
                          cols, 1);
  double weighted = 0, bias = 0, plain = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) {
      double e = double(w[r * cols + c]) - q[r * cols + c];
      double var = double(weights.meanSquares[c]) -
                   double(weights.means[c]) * weights.means[c];
      weighted += var * e * e;
      plain += e * e;
      dot += weights.means[c] * e;
    }
    bias += dot * dot;
  }
  EXPECT_NEAR(terms.weighted, weighted, 1e-9 * weighted);
  EXPECT_NEAR(terms.bias, bias, 1e-9 * bias);
  EXPECT_NEAR(terms.plain, plain, 1e-9 * plain);
  EXPECT_GT(terms.bias, 0);
  EXPECT_DOUBLE_EQ(terms.damage(), terms.weighted + terms.bias);

  // Chunks of rows add up to the whole (the pass works 256 rows at a time).
  DamageTerms split;
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_K, w.data(), 10, cols,
                                    0, weights, 1, split, err));
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_K, w.data() + 10 * cols,
                                    rows - 10, cols, 10, weights, 3, split,
                                    err));
  EXPECT_NEAR(split.damage(), terms.damage(), 1e-9 * terms.damage());
}

TEST(Sensitivity, DamageFallsWithBits) {
  std::mt19937 rng(9);
  const int64_t rows = 64, cols = 256;
  std::vector<float> w = gaussian(rng, rows * cols, 0.02f);
  DamageWeights none;
  double previous = std::numeric_limits<double>::infinity();
  for (formats::Format f :
       {formats::Format::Q2_K, formats::Format::Q3_K, formats::Format::Q4_K,
        formats::Format::Q5_K, formats::Format::Q6_K, formats::Format::Q8_0,
        formats::Format::F16}) {
    DamageTerms t;
    std::string err;
    ASSERT_TRUE(
        addQuantizationDamage(f, w.data(), rows, cols, 0, none, 0, t, err))
        << err;
    // No statistics: every column weighs 1, no bias term.
    EXPECT_DOUBLE_EQ(t.weighted, t.plain);
    EXPECT_EQ(t.bias, 0);
    EXPECT_LT(t.damage(), previous) << formats::info(f).name;
    previous = t.damage();
  }
}

TEST(Sensitivity, RowProbabilitiesWeighRows) {
  std::mt19937 rng(2);
  const int64_t rows = 8, cols = 32;
  std::vector<float> w = gaussian(rng, rows * cols, 1.0f);
  DamageWeights uniform, onlyRow3;
  onlyRow3.rowProbabilities.assign(rows, 0.0f);
  onlyRow3.rowProbabilities[3] = 1.0f;
  DamageTerms all, row3, direct;
  std::string err;
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_0, w.data(), rows, cols,
                                    0, uniform, 1, all, err));
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_0, w.data(), rows, cols,
                                    0, onlyRow3, 1, row3, err));
  ASSERT_TRUE(addQuantizationDamage(formats::Format::Q4_0, w.data() + 3 * cols,
                                    1, cols, 0, uniform, 1, direct, err));
  EXPECT_DOUBLE_EQ(row3.weighted, direct.weighted);
  EXPECT_LT(row3.weighted, all.weighted);
}

TEST(Sensitivity, RejectsBadInput) {
  std::vector<float> w(2 * 48, 0.5f);
  DamageWeights none;
  DamageTerms t;
  std::string err;
  EXPECT_FALSE(addQuantizationDamage(formats::Format::Q4_K, w.data(), 2, 48, 0,
                                     none, 1, t, err));
  EXPECT_NE(err.find("do not fit q4_k"), std::string::npos) << err;
  DamageWeights wrong;
  wrong.meanSquares.assign(7, 1.0f);
  EXPECT_FALSE(addQuantizationDamage(formats::Format::Q8_0, w.data(), 3, 32, 0,
                                     wrong, 1, t, err));
  w[5] = std::nanf("");
  EXPECT_FALSE(addQuantizationDamage(formats::Format::Q8_0, w.data(), 3, 32, 0,
                                     none, 1, t, err));
}

//===----------------------------------------------------------------------===//
// Saved results
//===----------------------------------------------------------------------===//

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/lowbit-alloc-" + std::to_string(::getpid()) +
         "-" + name;
}

TEST(SensitivityState, RoundTripAndErrors) {
  std::string path = tempPath("state.json");
  std::remove(path.c_str());
  SensitivityState state;
  bool existed = true;
  std::string err;
  ASSERT_TRUE(SensitivityState::load(path, state, existed, err)) << err;
  EXPECT_FALSE(existed);

  state.model = "0123456789abcdef";
  state.statistics = "fedcba9876543210";
  SensitivityEntry e;
  e.damage = 0.125;
  e.weighted = 0.1;
  e.bias = 0.025;
  e.plain = 3.5;
  e.norm = 100;
  e.seconds = 0.01;
  state.tensors["blk.0.attn_q.weight"]["q4_k"] = e;
  e.kld = 0.0031;
  e.kldTokens = 508;
  state.tensors["blk.0.attn_q.weight"]["q2_k"] = e;
  ASSERT_TRUE(state.save(path, err)) << err;

  SensitivityState back;
  ASSERT_TRUE(SensitivityState::load(path, back, existed, err)) << err;
  EXPECT_TRUE(existed);
  EXPECT_EQ(back.model, state.model);
  EXPECT_EQ(back.statistics, state.statistics);
  const SensitivityEntry *q4 = back.find("blk.0.attn_q.weight", "q4_k");
  const SensitivityEntry *q2 = back.find("blk.0.attn_q.weight", "q2_k");
  ASSERT_TRUE(q4 && q2);
  EXPECT_EQ(q4->damage, 0.125);
  EXPECT_LT(q4->kld, 0);
  EXPECT_EQ(q2->kld, 0.0031);
  EXPECT_EQ(q2->kldTokens, 508);
  EXPECT_EQ(back.find("blk.0.attn_q.weight", "q8_0"), nullptr);

  for (const char *bad :
       {"not json", "{\"format\": \"other\"}",
        "{\"format\": \"lowbit-sensitivity\", \"version\": 1, \"model\": "
        "\"a\", \"statistics\": \"b\", \"tensors\": {\"t\": {\"q4_k\": "
        "{\"damage\": -1, \"weighted\": 0, \"bias\": 0, \"plain\": 0}}}}"}) {
    std::ofstream(path) << bad;
    EXPECT_FALSE(SensitivityState::load(path, back, existed, err)) << bad;
    EXPECT_NE(err.find(path + ": not a valid sensitivity state file"),
              std::string::npos)
        << err;
  }
  std::remove(path.c_str());
}

} // namespace
