//===- ExecTest.cpp - Reference executor unit tests -----------------------===//
//
// A small random llama model built in memory is run by the executor and by a
// naive transcription of the forward pass written here; they must agree.
// Then the properties the executor promises: logits do not depend on the
// thread count or on how the tokens are batched (bit for bit), quantized
// weights are decoded on the fly, the observer sees every matmul input.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Exec/Executor.h"

#include "TestModels.h"

#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"
#include "lowbit/Formats/Formats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <sys/stat.h>

using namespace lowbit;
using namespace lowbit::exec;

namespace {

struct Dims {
  int64_t d = 32, heads = 4, kvHeads = 2, hd = 8, ff = 64, vocab = 40,
          layers = 2, ctx = 48;
};

std::string layerWeightName(int64_t layer, const char *what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

/// A model whose weights live in `blobs` (owned through ModelDesc::storage).
struct SyntheticModel {
  ModelDesc desc;
  Dims dims;
  RopeMode mode = RopeMode::Normal;
  int64_t ropeDims = 0;
  bool tied = false;
  // f32 copies of every weight as the executor decodes them, for the naive
  // reference.
  std::map<std::string, std::vector<float>> ref;
};

SyntheticModel makeModel(const Dims &dm, formats::Format fmt, bool tied,
                         RopeMode mode, uint32_t seed = 1,
                         int64_t ropeDims = 0) {
  SyntheticModel m;
  m.dims = dm;
  m.mode = mode;
  m.ropeDims = ropeDims > 0 ? ropeDims : dm.hd;
  m.tied = tied;
  std::map<std::string, WeightRef> weights;
  auto blobs = std::make_shared<std::vector<std::vector<uint8_t>>>();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  auto add = [&](const std::string &name, int64_t rows, int64_t cols,
                 float scale, float offset, formats::Format f) {
    std::vector<float> w(rows * cols);
    for (float &x : w)
      x = offset + scale * normal(rng);
    const formats::FormatInfo &fi = formats::info(f);
    uint64_t rb = formats::rowBytes(fi, cols);
    ASSERT_GT(rb, 0u) << name;
    std::vector<uint8_t> bytes(rb * rows);
    std::string why;
    ASSERT_TRUE(formats::quantizeRows(f, w.data(), bytes.data(), rows, cols,
                                      nullptr, 1, &why))
        << why;
    std::vector<float> decoded(rows * cols);
    formats::dequantizeRows(f, bytes.data(), decoded.data(), rows, cols, 1);
    blobs->push_back(std::move(bytes));
    WeightRef ref;
    ref.format = f;
    ref.rows = rows;
    ref.cols = cols;
    ref.rowBytes = rb;
    ref.data = blobs->back().data();
    weights[name] = ref;
    m.ref[name] = std::move(decoded);
  };
  blobs->reserve(64);
  const int64_t q = dm.heads * dm.hd, kv = dm.kvHeads * dm.hd;
  add("token_embd.weight", dm.vocab, dm.d, 1.0f, 0.0f, fmt);
  for (int64_t l = 0; l < dm.layers; ++l) {
    add(layerWeightName(l, "attn_norm"), 1, dm.d, 0.1f, 1.0f,
        formats::Format::F32);
    add(layerWeightName(l, "attn_q"), q, dm.d, 0.3f, 0.0f, fmt);
    add(layerWeightName(l, "attn_k"), kv, dm.d, 0.3f, 0.0f, fmt);
    add(layerWeightName(l, "attn_v"), kv, dm.d, 0.3f, 0.0f, fmt);
    add(layerWeightName(l, "attn_output"), dm.d, q, 0.2f, 0.0f, fmt);
    add(layerWeightName(l, "ffn_norm"), 1, dm.d, 0.1f, 1.0f,
        formats::Format::F32);
    add(layerWeightName(l, "ffn_gate"), dm.ff, dm.d, 0.3f, 0.0f, fmt);
    add(layerWeightName(l, "ffn_up"), dm.ff, dm.d, 0.3f, 0.0f, fmt);
    add(layerWeightName(l, "ffn_down"), dm.d, dm.ff, 0.2f, 0.0f, fmt);
  }
  add("output_norm.weight", 1, dm.d, 0.1f, 1.0f, formats::Format::F32);
  if (!tied)
    add("output.weight", dm.vocab, dm.d, 0.3f, 0.0f, fmt);
  lowbit::testing::DecoderShape shape;
  shape.vocab = dm.vocab;
  shape.embedding = dm.d;
  shape.layers = dm.layers;
  shape.heads = dm.heads;
  shape.kvHeads = dm.kvHeads;
  shape.feedForward = dm.ff;
  shape.context = dm.ctx;
  shape.ropeMode = mode;
  shape.ropeDims = m.ropeDims;
  std::string err;
  EXPECT_TRUE(lowbit::testing::makeDecoder(shape, weights, blobs, m.desc, err))
      << err;
  return m;
}

/// The forward pass written as plainly as possible (double accumulators).
std::vector<float> naiveForward(const SyntheticModel &m,
                                const std::vector<int32_t> &toks) {
  const Dims &dm = m.dims;
  const int64_t D = dm.d, H = dm.heads, Hkv = dm.kvHeads, hd = dm.hd,
                F = dm.ff, V = dm.vocab, T = toks.size();
  const double eps = 1e-5, base = 10000.0;
  auto W = [&](const std::string &n) -> const std::vector<float> & {
    return m.ref.at(n);
  };
  auto matvec = [&](const std::vector<float> &w, int64_t rows, int64_t cols,
                    const float *x, float *y) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c)
        s += double(w[r * cols + c]) * x[c];
      y[r] = float(s);
    }
  };
  auto norm = [&](const float *x, const std::vector<float> &w, float *y) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i)
      ss += double(x[i]) * x[i];
    double scale = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < D; ++i)
      y[i] = float(x[i] * scale * w[i]);
  };
  auto rope = [&](float *v, int64_t pos) {
    const int64_t nd = m.ropeDims; // dimensions past nd are not rotated
    for (int64_t i = 0; i < nd / 2; ++i) {
      double theta = pos * std::pow(base, -2.0 * i / nd);
      double c = std::cos(theta), s = std::sin(theta);
      int64_t a = m.mode == RopeMode::Normal ? 2 * i : i;
      int64_t b = m.mode == RopeMode::Normal ? 2 * i + 1 : i + nd / 2;
      double x0 = v[a], x1 = v[b];
      v[a] = float(x0 * c - x1 * s);
      v[b] = float(x0 * s + x1 * c);
    }
  };
  std::vector<float> x(T * D), xn(D), K(dm.layers * T * Hkv * hd),
      Vc(dm.layers * T * Hkv * hd), q(H * hd), att(H * hd), tmp(D), g(F),
      u(F), logits(T * V);
  const std::vector<float> &emb = W("token_embd.weight");
  for (int64_t t = 0; t < T; ++t)
    std::memcpy(&x[t * D], &emb[toks[t] * D], D * sizeof(float));
  for (int64_t t = 0; t < T; ++t) {
    float *xt = &x[t * D];
    for (int64_t l = 0; l < dm.layers; ++l) {
      norm(xt, W(layerWeightName(l, "attn_norm")), xn.data());
      matvec(W(layerWeightName(l, "attn_q")), H * hd, D, xn.data(), q.data());
      float *kt = &K[(l * T + t) * Hkv * hd];
      float *vt = &Vc[(l * T + t) * Hkv * hd];
      matvec(W(layerWeightName(l, "attn_k")), Hkv * hd, D, xn.data(), kt);
      matvec(W(layerWeightName(l, "attn_v")), Hkv * hd, D, xn.data(), vt);
      for (int64_t h = 0; h < H; ++h)
        rope(&q[h * hd], t);
      for (int64_t h = 0; h < Hkv; ++h)
        rope(&kt[h * hd], t);
      for (int64_t h = 0; h < H; ++h) {
        int64_t kvh = h / (H / Hkv);
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e)
            dot += double(q[h * hd + e]) *
                   K[(l * T + j) * Hkv * hd + kvh * hd + e];
          s[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double &v : s)
          sum += v = std::exp(v - mx);
        for (int64_t e = 0; e < hd; ++e) {
          double o = 0;
          for (int64_t j = 0; j <= t; ++j)
            o += s[j] / sum * Vc[(l * T + j) * Hkv * hd + kvh * hd + e];
          att[h * hd + e] = float(o);
        }
      }
      matvec(W(layerWeightName(l, "attn_output")), D, H * hd, att.data(),
             tmp.data());
      for (int64_t i = 0; i < D; ++i)
        xt[i] += tmp[i];
      norm(xt, W(layerWeightName(l, "ffn_norm")), xn.data());
      matvec(W(layerWeightName(l, "ffn_gate")), F, D, xn.data(), g.data());
      matvec(W(layerWeightName(l, "ffn_up")), F, D, xn.data(), u.data());
      for (int64_t i = 0; i < F; ++i)
        g[i] = float(g[i] / (1.0 + std::exp(-double(g[i]))) * u[i]);
      matvec(W(layerWeightName(l, "ffn_down")), D, F, g.data(), tmp.data());
      for (int64_t i = 0; i < D; ++i)
        xt[i] += tmp[i];
    }
    norm(xt, W("output_norm.weight"), xn.data());
    const std::string out =
        m.tied ? "token_embd.weight" : "output.weight";
    matvec(W(out), V, D, xn.data(), &logits[t * V]);
  }
  return logits;
}

std::vector<int32_t> someTokens(int64_t n, int64_t vocab, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t &x : t)
    x = static_cast<int32_t>(rng() % vocab);
  return t;
}

std::unique_ptr<Executor> makeExecutor(const ModelDesc &d, int threads,
                                       int64_t batch = 512) {
  ExecOptions o;
  o.threads = threads;
  o.batchSize = batch;
  std::string err;
  auto e = Executor::create(d, o, err);
  EXPECT_TRUE(e) << err;
  return e;
}

void expectClose(const std::vector<float> &a, const std::vector<float> &b,
                 float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << "at " << i;
}

struct Case {
  formats::Format format;
  bool tied;
  RopeMode mode;
  bool wide = false; // 256-wide rows, for the super-block formats
};

class ExecutorVsNaive : public ::testing::TestWithParam<Case> {};

TEST_P(ExecutorVsNaive, AllPositionsMatch) {
  Dims dm;
  const Case c = GetParam();
  if (c.wide) {
    dm.d = 256;
    dm.hd = 64;
    dm.ff = 512;
  }
  // Narrow NeoX: partial rotary embedding.
  SyntheticModel m =
      makeModel(dm, c.format, c.tied, c.mode, 1,
                c.mode == RopeMode::NeoX && !c.wide ? dm.hd / 2 : 0);
  std::string err;
  ASSERT_TRUE(m.desc.validate(err)) << err;
  auto ex = makeExecutor(m.desc, 2);
  ASSERT_TRUE(ex);
  std::vector<int32_t> toks = someTokens(20, dm.vocab);
  std::vector<float> logits;
  ASSERT_TRUE(ex->eval(toks.data(), toks.size(), 0, logits, 0, err)) << err;
  expectClose(logits, naiveForward(m, toks), 2e-4f);
}

// Narrow cases use 32-element blocks (rows of 32 or 64 weights); wide ones
// the 256-element super-blocks.
INSTANTIATE_TEST_SUITE_P(
    WeightFormats, ExecutorVsNaive,
    ::testing::Values(
        Case{formats::Format::F32, false, RopeMode::Normal},
        Case{formats::Format::F32, true, RopeMode::NeoX},
        Case{formats::Format::F16, false, RopeMode::Normal},
        Case{formats::Format::Q8_0, false, RopeMode::Normal},
        Case{formats::Format::Q4_0, true, RopeMode::Normal},
        Case{formats::Format::Q4_K, false, RopeMode::Normal, true},
        Case{formats::Format::Q6_K, true, RopeMode::NeoX, true},
        Case{formats::Format::IQ4_XS, false, RopeMode::Normal, true}),
    [](const ::testing::TestParamInfo<Case> &info) {
      std::string name = formats::info(info.param.format).name;
      name += info.param.tied ? "_tied" : "_untied";
      name += info.param.mode == RopeMode::NeoX ? "_neox" : "_normal";
      return name;
    });

TEST(Executor, ResultsIndependentOfThreadsAndBatching) {
  Dims dm;
  dm.d = 64;
  dm.heads = 8;
  dm.ff = 96;
  SyntheticModel m =
      makeModel(dm, formats::Format::Q8_0, false, RopeMode::Normal, 3);
  std::vector<int32_t> toks = someTokens(40, dm.vocab, 11);
  std::string err;
  std::vector<float> base;
  {
    auto ex = makeExecutor(m.desc, 1);
    ASSERT_TRUE(ex->eval(toks.data(), toks.size(), 0, base, 0, err)) << err;
  }
  for (int threads : {2, 3, 5}) {
    for (int64_t batch : {int64_t(1), int64_t(7), int64_t(40)}) {
      auto ex = makeExecutor(m.desc, threads, batch);
      std::vector<float> logits;
      ASSERT_TRUE(ex->eval(toks.data(), toks.size(), 0, logits, 0, err));
      ASSERT_EQ(logits.size(), base.size());
      EXPECT_EQ(0, std::memcmp(logits.data(), base.data(),
                               base.size() * sizeof(float)))
          << threads << " threads, batch " << batch;
    }
  }
  // Token by token through the KV cache gives the same bits too.
  auto ex = makeExecutor(m.desc, 2);
  std::vector<float> one;
  for (size_t i = 0; i < toks.size(); ++i) {
    ASSERT_TRUE(ex->eval(&toks[i], 1, i, one, 0, err)) << err;
    EXPECT_EQ(0, std::memcmp(one.data(), base.data() + i * dm.vocab,
                             dm.vocab * sizeof(float)))
        << "position " << i;
  }
  EXPECT_EQ(ex->cachedTokens(), 40);
}

TEST(Executor, OutputRowsAndErrors) {
  Dims dm;
  SyntheticModel m =
      makeModel(dm, formats::Format::F32, false, RopeMode::Normal);
  auto ex = makeExecutor(m.desc, 2);
  std::vector<int32_t> toks = someTokens(10, dm.vocab);
  std::string err;
  std::vector<float> all, tail;
  ASSERT_TRUE(ex->eval(toks.data(), 10, 0, all, 0, err));
  ASSERT_TRUE(ex->eval(toks.data(), 10, 0, tail, 6, err));
  ASSERT_EQ(tail.size(), size_t(4 * dm.vocab));
  EXPECT_EQ(0, std::memcmp(tail.data(), all.data() + 6 * dm.vocab,
                           tail.size() * sizeof(float)));
  // Continuing a sequence: positions must follow the cache.
  EXPECT_FALSE(ex->eval(toks.data(), 1, 12, tail, 0, err));
  EXPECT_NE(err.find("cached"), std::string::npos);
  ex->reset();
  std::vector<int32_t> bad = {0, int32_t(dm.vocab)};
  EXPECT_FALSE(ex->eval(bad.data(), 2, 0, tail, 0, err));
  EXPECT_NE(err.find("vocabulary"), std::string::npos);
  std::vector<int32_t> lots = someTokens(dm.ctx + 1, dm.vocab);
  EXPECT_FALSE(ex->eval(lots.data(), lots.size(), 0, tail, 0, err));
  EXPECT_NE(err.find("context"), std::string::npos);
}

TEST(Executor, ObserverSeesEveryMatmulInput) {
  Dims dm;
  SyntheticModel m =
      makeModel(dm, formats::Format::F32, true, RopeMode::Normal);
  auto ex = makeExecutor(m.desc, 2);
  std::map<std::string, int> calls;
  bool shapesOk = true;
  ex->setObserver(
      [&](const std::string &name, int64_t expert, int64_t experts,
          const float *x, int64_t rows, int64_t k) {
        shapesOk &= expert == 0 && experts == 1;
        ++calls[name];
        const WeightRef *w = m.desc.find(name);
        shapesOk &= w && w->cols == k && x != nullptr;
        // The output matmul only sees the rows whose logits are wanted.
        shapesOk &= rows == (name == "token_embd.weight" ? 1 : 5);
      });
  std::vector<int32_t> toks = someTokens(5, dm.vocab);
  std::vector<float> logits;
  std::string err;
  ASSERT_TRUE(ex->eval(toks.data(), 5, 0, logits, 4, err));
  EXPECT_TRUE(shapesOk);
  EXPECT_EQ(calls.size(), size_t(7 * dm.layers + 1));
  EXPECT_EQ(calls["blk.1.ffn_down.weight"], 1);
  EXPECT_EQ(calls["token_embd.weight"], 1); // tied output
}

// A run split at layer boundaries (the state saved in between, as the layer
// by layer analysis does) gives the bits of a whole run.
TEST(Executor, SplitRunEqualsFullRun) {
  Dims dm;
  dm.layers = 3;
  SyntheticModel m =
      makeModel(dm, formats::Format::Q8_0, false, RopeMode::Normal, 5);
  std::vector<int32_t> toks = someTokens(24, dm.vocab, 9);
  std::string err;
  std::vector<float> full;
  {
    auto ex = makeExecutor(m.desc, 2);
    ASSERT_TRUE(ex->eval(toks.data(), toks.size(), 0, full, 0, err)) << err;
  }
  auto ex = makeExecutor(m.desc, 2);
  ASSERT_EQ(ex->boundaryCount(), 4); // 3 layers and the head
  for (std::vector<int64_t> cuts :
       {std::vector<int64_t>{-1, 4}, {-1, 0, 4}, {-1, 1, 2, 4},
        {-1, 0, 1, 2, 3, 4}}) {
    std::vector<float> state;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      ASSERT_TRUE(ex->evalRange(toks.data(), toks.size(), 0, cuts[i],
                                cuts[i + 1], state, err))
          << err;
      if (cuts[i + 1] < 4)
        EXPECT_EQ(state.size(),
                  toks.size() * size_t(ex->boundaryWidth(cuts[i + 1])));
    }
    ASSERT_EQ(state.size(), full.size());
    EXPECT_EQ(0, std::memcmp(state.data(), full.data(),
                             full.size() * sizeof(float)))
        << cuts.size() - 1 << " parts";
  }
  std::vector<float> state;
  EXPECT_FALSE(ex->evalRange(toks.data(), toks.size(), 0, 2, 1, state, err));
  EXPECT_FALSE(ex->evalRange(toks.data(), toks.size(), 0, 1, 2, state, err));
  EXPECT_NE(err.find("state"), std::string::npos) << err;
}

// The graph is the program: changing an op changes the logits.
TEST(Executor, RunsTheGraphItIsGiven) {
  Dims dm;
  SyntheticModel m =
      makeModel(dm, formats::Format::F32, false, RopeMode::Normal);
  std::vector<int32_t> toks = someTokens(8, dm.vocab);
  std::string err;
  std::vector<float> a, b;
  ASSERT_TRUE(makeExecutor(m.desc, 2)->eval(toks.data(), 8, 0, a, 0, err));
  ModelDesc edited = m.desc;
  bool changed = false;
  for (GraphOp &op : edited.graph.ops)
    if (op.kind == OpKind::SwiGLU && !changed) {
      // silu(g) * u -> g * u in layer 0.
      op.kind = OpKind::Mul;
      changed = true;
    }
  ASSERT_TRUE(changed);
  ASSERT_TRUE(makeExecutor(edited, 2)->eval(toks.data(), 8, 0, b, 0, err));
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(Executor, ValidateRejectsBadShapes) {
  Dims dm;
  SyntheticModel m =
      makeModel(dm, formats::Format::F32, false, RopeMode::Normal);
  std::string err;
  ModelDesc d = m.desc;
  d.weights.erase("blk.1.ffn_up.weight");
  EXPECT_FALSE(d.validate(err));
  EXPECT_NE(err.find("blk.1.ffn_up.weight"), std::string::npos);
  d = m.desc;
  d.weights["blk.0.attn_k.weight"].rows = 7;
  EXPECT_FALSE(d.validate(err));
  EXPECT_NE(err.find("attn_k"), std::string::npos);
  d = m.desc;
  for (GraphOp &op : d.graph.ops)
    if (op.kind == OpKind::Attention)
      op.heads = 3; // not a multiple of the 2 KV heads
  EXPECT_FALSE(d.validate(err));
  EXPECT_NE(err.find("KV heads"), std::string::npos) << err;
  ExecOptions o;
  EXPECT_FALSE(Executor::create(d, o, err));
}

// YaRN (ggml's rope_yarn): pairs below the low correction dimension keep
// the unscaled angle, pairs above the high one take the scaled angle, and
// every cos/sin is multiplied by 1 + 0.1 ln(factor).
TEST(ExecRope, YarnBlendsExtrapolationAndInterpolation) {
  const int64_t dims = 16, pos = 37;
  exec::ops::RopeParams plain;
  plain.headDim = dims;
  plain.ropeDims = dims;
  exec::ops::RopeParams yarn = plain;
  yarn.freqScale = 0.25f;
  yarn.extFactor = 1.0f;
  yarn.originalContext = 64;
  // Correction dimensions for 16 dims, context 64, base 10^4: low = 0
  // (floor of -0.99, clamped), high = ceil(2.02) = 3.
  std::vector<float> unit(dims, 0.0f);
  for (int64_t i = 0; i < dims; i += 2)
    unit[i] = 1.0f; // x = (1, 0) in every pair: the result is (cos, sin)
  std::vector<float> y = unit;
  exec::ops::rope(yarn, y.data(), 1, 1, pos);
  const float mscale = 1.0f + 0.1f * std::log(4.0f);
  const float thetaScale = std::pow(10000.0f, -2.0f / dims);
  float theta = pos;
  for (int64_t i = 0; i < dims; i += 2, theta *= thetaScale) {
    const int64_t pair = i / 2;
    float angle;
    if (pair == 0)
      angle = theta; // ramp 1: extrapolated
    else if (pair >= 3)
      angle = 0.25f * theta; // ramp 0: interpolated
    else
      continue; // inside the ramp
    EXPECT_NEAR(y[i], std::cos(angle) * mscale, 1e-5) << "pair " << pair;
    EXPECT_NEAR(y[i + 1], std::sin(angle) * mscale, 1e-5) << "pair " << pair;
  }
  // Factor 1: YaRN changes nothing.
  yarn.freqScale = 1.0f;
  std::vector<float> a = unit, b = unit;
  exec::ops::rope(yarn, a.data(), 1, 1, pos);
  exec::ops::rope(plain, b.data(), 1, 1, pos);
  EXPECT_EQ(a, b);
}

TEST(ExecThreadPool, RunsEveryTaskOnce) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  for (int64_t n : {0, 1, 2, 100, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    std::atomic<bool> threadOk{true};
    pool.run(n, [&](int64_t i, int t) {
      hits[i]++;
      if (t < 0 || t >= 3)
        threadOk = false;
    });
    for (auto &h : hits)
      EXPECT_EQ(h.load(), 1);
    EXPECT_TRUE(threadOk);
  }
}

//===----------------------------------------------------------------------===//
// The shared GGUF models (skipped when absent).
//===----------------------------------------------------------------------===//

bool loadShared(const std::string &rel, ModelDesc &d, std::string &skip) {
  std::string path = std::string(LOWBIT_SHARED_DIR) + "/models/" + rel;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    skip = "model not found: " + path;
    return false;
  }
  std::string err;
  EXPECT_TRUE(lowbit::testing::loadModel(path, d, err)) << err;
  return true;
}

// The graph the importer builds for stories260K, as the executor sees it.
TEST(ExecGGUFModel, Stories260KGraph) {
  std::string skip;
  ModelDesc d;
  if (!loadShared("stories260K/stories260K-f32.gguf", d, skip))
    GTEST_SKIP() << skip;
  EXPECT_EQ(d.vocabSize, 512);
  EXPECT_EQ(d.contextLength, 512);
  EXPECT_EQ(d.graph.cache.layers, 5);
  EXPECT_EQ(d.graph.cache.kvHeads, 4);
  EXPECT_EQ(d.graph.cache.headDim, 8);
  EXPECT_EQ(d.graph.boundaries.size(), 6u); // 5 layers and the head
  EXPECT_EQ(d.outputWeight(), "output.weight"); // untied
  int ropes = 0, attentions = 0, swiglus = 0;
  for (const GraphOp &op : d.graph.ops) {
    if (op.kind == OpKind::Rope) {
      ++ropes;
      EXPECT_EQ(op.headDim, 8);
      EXPECT_EQ(op.ropeDims, 8);
      EXPECT_FLOAT_EQ(op.theta, 10000.0f);
      EXPECT_EQ(op.ropeMode, RopeMode::Normal);
    } else if (op.kind == OpKind::Attention) {
      EXPECT_EQ(op.heads, 8);
      EXPECT_EQ(op.cacheLayer, attentions++);
    } else if (op.kind == OpKind::SwiGLU) {
      EXPECT_EQ(d.graph.valueWidth[op.outputs[0]], 172);
      ++swiglus;
    } else if (op.kind == OpKind::RMSNorm) {
      EXPECT_FLOAT_EQ(op.epsilon, 1e-5f);
    }
  }
  EXPECT_EQ(ropes, 10);
  EXPECT_EQ(attentions, 5);
  EXPECT_EQ(swiglus, 5);
  const WeightRef *k = d.find("blk.0.attn_k.weight");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->rows, 32); // GGUF dims [64, 32] = [cols, rows]
  EXPECT_EQ(k->cols, 64);
}

TEST(ExecGGUFModel, F16MatchesF32Closely) {
  std::string skip;
  ModelDesc d32, d16;
  if (!loadShared("docs256/model-f32.gguf", d32, skip) ||
      !loadShared("docs256/model-f16.gguf", d16, skip))
    GTEST_SKIP() << skip;
  std::string err;
  EXPECT_EQ(d16.find("blk.0.attn_q.weight")->format, formats::Format::F16);
  auto e32 = makeExecutor(d32, 2), e16 = makeExecutor(d16, 2);
  std::vector<int32_t> toks = someTokens(64, d32.vocabSize, 5);
  toks[0] = 1;
  std::vector<float> a, b;
  ASSERT_TRUE(e32->eval(toks.data(), 64, 0, a, 0, err)) << err;
  ASSERT_TRUE(e16->eval(toks.data(), 64, 0, b, 0, err)) << err;
  double maxDiff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    maxDiff = std::max(maxDiff, double(std::fabs(a[i] - b[i])));
  EXPECT_LT(maxDiff, 0.05);
  EXPECT_GT(maxDiff, 0.0); // the f16 weights really are used
}

} // namespace
