//===- QuantMethodsTest.cpp - GPTQ and AWQ unit tests ---------------------===//
//
// Synthetic layers whose inputs have a known correlation structure
// (AR(1) across channels, a few loud channels): GPTQ must lower the layer
// output error tr(E H E^T) clearly below RTN's in every block format it is
// used with, and AWQ must never be worse than RTN. AWQ's folding must leave
// a float llama model's logits unchanged (run by the reference executor).
//
//===----------------------------------------------------------------------===//
#include "lowbit/Quant/AWQ.h"
#include "lowbit/Quant/GPTQ.h"

#include "lowbit/Exec/Executor.h"
#include "lowbit/Formats/Formats.h"

#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

using namespace lowbit;
using namespace lowbit::quant;
using formats::Format;

namespace {

/// A layer W[n, k] and the Hessian of its input X[t, k]: channels follow an
/// AR(1) process (correlation rho^|i-j|) scaled per channel, with a few loud
/// channels as in real activations.
struct Layer {
  int64_t n, k;
  std::vector<float> w, h;
  std::vector<float> rms; // per-channel RMS of x
};

Layer makeLayer(int64_t n, int64_t k, int64_t tokens, double rho,
                uint32_t seed) {
  Layer l{n, k, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> scale(k);
  for (int64_t c = 0; c < k; ++c)
    scale[c] = std::exp(0.5 * normal(rng)) * (c % 37 == 5 ? 8.0 : 1.0);
  std::vector<double> x(tokens * k);
  for (int64_t t = 0; t < tokens; ++t) {
    double prev = normal(rng);
    for (int64_t c = 0; c < k; ++c) {
      double v =
          c == 0 ? prev : rho * prev + std::sqrt(1 - rho * rho) * normal(rng);
      prev = v;
      x[t * k + c] = v * scale[c];
    }
  }
  std::vector<double> h(k * k, 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    const double *xt = &x[t * k];
    for (int64_t i = 0; i < k; ++i) {
      double xi = xt[i];
      double *hi = &h[i * k];
      for (int64_t j = i; j < k; ++j)
        hi[j] += xi * xt[j];
    }
  }
  l.h.resize(k * k);
  l.rms.resize(k);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i; j < k; ++j)
      l.h[i * k + j] = l.h[j * k + i] = static_cast<float>(h[i * k + j]);
    l.rms[i] = static_cast<float>(std::sqrt(h[i * k + i] / tokens));
  }
  l.w.resize(n * k);
  for (float &v : l.w)
    v = static_cast<float>(0.02 * normal(rng));
  return l;
}

std::vector<float> decode(Format f, const std::vector<uint8_t> &bytes,
                          int64_t n, int64_t k) {
  std::vector<float> out(n * k);
  formats::dequantizeRows(f, bytes.data(), out.data(), n, k, 1);
  return out;
}

std::vector<float> diagonal(const Layer &l) {
  std::vector<float> d(l.k);
  for (int64_t i = 0; i < l.k; ++i)
    d[i] = l.h[i * l.k + i];
  return d;
}

/// RTN with the same importance GPTQ's encoder gets (diag H).
double rtnError(Format f, const Layer &l) {
  std::vector<float> imp = diagonal(l);
  std::vector<uint8_t> bytes(formats::rowBytes(formats::info(f), l.k) * l.n);
  std::string why;
  EXPECT_TRUE(formats::quantizeRows(f, l.w.data(), bytes.data(), l.n, l.k,
                                    imp.data(), 1, &why))
      << why;
  std::vector<float> q = decode(f, bytes, l.n, l.k);
  return outputError(l.w.data(), q.data(), l.n, l.k, l.h.data(), 1);
}

double gptqError(Format f, const Layer &l, const GPTQOptions &options,
                 std::vector<uint8_t> *keep = nullptr) {
  std::vector<uint8_t> bytes(formats::rowBytes(formats::info(f), l.k) * l.n);
  std::string error;
  EXPECT_TRUE(quantizeGPTQ(f, l.w.data(), l.n, l.k, l.h.data(), options,
                           bytes.data(), error))
      << error;
  std::vector<float> q = decode(f, bytes, l.n, l.k);
  for (float v : q)
    EXPECT_TRUE(std::isfinite(v));
  if (keep)
    *keep = bytes;
  return outputError(l.w.data(), q.data(), l.n, l.k, l.h.data(), 1);
}

class GPTQFormats : public ::testing::TestWithParam<Format> {};

TEST_P(GPTQFormats, BeatsRTNOnCorrelatedInputs) {
  Format f = GetParam();
  Layer l = makeLayer(/*n=*/64, /*k=*/512, /*tokens=*/2048, 0.8, 7);
  double rtn = rtnError(f, l);
  GPTQOptions options;
  options.threads = 2;
  std::vector<uint8_t> bytes;
  double gptq = gptqError(f, l, options, &bytes);
  GPTQOptions onePass = options;
  onePass.refinePasses = 0;
  double single = gptqError(f, l, onePass);
  GPTQOptions noAct = options;
  noAct.actOrder = false;
  double plain = gptqError(f, l, noAct);
  std::printf("[ %-6s ] output error vs RTN: gptq %.3f, without act-order "
              "%.3f, one encoding per block %.3f\n",
              formats::info(f).name, gptq / rtn, plain / rtn, single / rtn);
  EXPECT_LT(gptq, 0.6 * rtn);
  EXPECT_LT(plain, 0.6 * rtn);
  EXPECT_LT(single, 0.6 * rtn);
  // Valid GGML data: decodes to finite values close to the weights.
  std::vector<float> q = decode(f, bytes, l.n, l.k);
  double err = 0, norm = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    err += (q[i] - l.w[i]) * (q[i] - l.w[i]);
    norm += l.w[i] * l.w[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 0.8);
}

INSTANTIATE_TEST_SUITE_P(Formats, GPTQFormats,
                         ::testing::Values(Format::Q4_0, Format::Q4_K,
                                           Format::Q3_K, Format::Q2_K),
                         [](const auto &info) {
                           return std::string(formats::info(info.param).name);
                         });

TEST(GPTQ, BlockLevelFallbackWithoutCodeMap) {
  // TQ1_0 packs five ternary codes per byte: no per-weight bits, so GPTQ
  // keeps the encoder's values and only updates the later blocks.
  ASSERT_EQ(gptqCodeBits(Format::TQ1_0), 0);
  Layer l = makeLayer(32, 1024, 2048, 0.8, 9);
  double rtn = rtnError(Format::TQ1_0, l);
  GPTQOptions options;
  options.guardRTN = false;
  double unguarded = gptqError(Format::TQ1_0, l, options);
  options.guardRTN = true;
  double gptq = gptqError(Format::TQ1_0, l, options);
  std::printf("[ tq1_0  ] output error vs RTN: gptq %.3f (block-level), "
              "%.3f without the RTN guard\n",
              gptq / rtn, unguarded / rtn);
  // The guard keeps RTN's rows where they are better.
  EXPECT_LE(gptq, rtn * (1 + 1e-9));
}

TEST(GPTQ, IndependentOfThreadsAndChunks) {
  Layer l = makeLayer(50, 256, 1024, 0.7, 3);
  GPTQOptions a, b;
  a.threads = 1;
  a.rowsPerChunk = 64;
  b.threads = 2;
  b.rowsPerChunk = 7;
  std::vector<uint8_t> x, y;
  gptqError(Format::Q4_K, l, a, &x);
  gptqError(Format::Q4_K, l, b, &y);
  EXPECT_EQ(x, y);
}

TEST(GPTQ, DeadColumnsAndSingularHessian) {
  // Fewer tokens than columns: H is singular, so a zero damping must be
  // raised; two channels never fire (dead).
  Layer l = makeLayer(16, 256, 100, 0.5, 11);
  for (int64_t dead : {3, 200}) {
    for (int64_t j = 0; j < l.k; ++j)
      l.h[dead * l.k + j] = l.h[j * l.k + dead] = 0.0f;
  }
  GPTQOptions options;
  options.percDamp = 0;
  std::vector<uint8_t> bytes(
      formats::rowBytes(formats::info(Format::Q4_0), l.k) * l.n);
  std::string error;
  GPTQReport report;
  ASSERT_TRUE(quantizeGPTQ(Format::Q4_0, l.w.data(), l.n, l.k, l.h.data(),
                           options, bytes.data(), error, &report))
      << error;
  EXPECT_EQ(report.deadColumns, 2);
  EXPECT_GT(report.dampRaises, 0);
  EXPECT_GT(report.damp, 0);
  std::vector<float> q = decode(Format::Q4_0, bytes, l.n, l.k);
  for (float v : q)
    ASSERT_TRUE(std::isfinite(v));
}

TEST(GPTQ, Errors) {
  Layer l = makeLayer(4, 64, 200, 0.5, 5);
  std::vector<uint8_t> bytes(4 * 1024);
  std::string error;
  GPTQOptions options;
  EXPECT_FALSE(quantizeGPTQ(Format::Q4_K, l.w.data(), l.n, l.k, l.h.data(),
                            options, bytes.data(), error));
  EXPECT_NE(error.find("not a multiple of the block size 256"),
            std::string::npos)
      << error;
  l.h[5 * l.k + 7] = NAN;
  EXPECT_FALSE(quantizeGPTQ(Format::Q4_0, l.w.data(), l.n, l.k, l.h.data(),
                            options, bytes.data(), error));
  EXPECT_NE(error.find("not finite at (5, 7)"), std::string::npos) << error;
  // A NaN weight is reported by the format's checks, with its row.
  Layer m = makeLayer(4, 64, 200, 0.5, 5);
  m.w[2 * 64 + 1] = NAN;
  EXPECT_FALSE(quantizeGPTQ(Format::Q4_0, m.w.data(), m.n, m.k, m.h.data(),
                            options, bytes.data(), error));
  EXPECT_NE(error.find("NaN"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// AWQ
//===----------------------------------------------------------------------===//

TEST(AWQ, Scales) {
  std::vector<float> a = {1.0f, 4.0f, 0.25f, 0.0f};
  for (float s : awqScales(a, 0.0))
    EXPECT_EQ(s, 1.0f);
  std::vector<float> s = awqScales(a, 0.5);
  // sqrt(a), floored, normalised by sqrt(max * min).
  double lo = std::sqrt(1e-5 * 4.0), hi = 2.0, norm = std::sqrt(lo * hi);
  EXPECT_NEAR(s[0], 1.0 / norm, 1e-5);
  EXPECT_NEAR(s[1], 2.0 / norm, 1e-5);
  EXPECT_NEAR(s[3], lo / norm, 1e-6);
  std::vector<float> perColumn = {1, 2, 3, 4, 5, 6, 7, 8}; // 4 heads x 2
  std::vector<float> tied = tieToKVHeads(perColumn, 4, 2, 2);
  ASSERT_EQ(tied.size(), 4u);
  EXPECT_NEAR(tied[0], std::sqrt((1.0 + 9.0) / 2), 1e-6);   // heads 0, 1
  EXPECT_NEAR(tied[3], std::sqrt((36.0 + 64.0) / 2), 1e-5); // heads 2, 3
  std::vector<float> back = expandFromKVHeads(tied, 4, 2, 2);
  EXPECT_EQ(back[0], tied[0]);
  EXPECT_EQ(back[2], tied[0]);
  EXPECT_EQ(back[5], tied[3]);
}

class AWQFormats : public ::testing::TestWithParam<Format> {};

TEST_P(AWQFormats, NeverWorseThanRTN) {
  Format f = GetParam();
  Layer l = makeLayer(48, 256, 1024, 0.3, 21);
  Layer other = makeLayer(32, 256, 16, 0.3, 22); // a second reader
  std::vector<AWQWeight> group = {{"a", l.w.data(), l.n, f},
                                  {"b", other.w.data(), other.n, f}};
  AWQOptions options;
  options.threads = 2;
  AWQResult result;
  std::string error;
  ASSERT_TRUE(searchAWQ(group, l.k, l.rms, l.h.data(), options, result, error))
      << error;
  ASSERT_EQ(result.errors.size(), 20u);
  EXPECT_EQ(result.alphas.front(), 0.0);
  EXPECT_EQ(result.alphas.back(), 1.0);
  // alpha = 0 is RTN with the same importance.
  double rtn = 0, e;
  ASSERT_TRUE(scaledQuantError(f, l.w.data(), l.n, l.k, nullptr, l.h.data(), 0,
                               1, e, error));
  rtn += e;
  ASSERT_TRUE(scaledQuantError(f, other.w.data(), other.n, l.k, nullptr,
                               l.h.data(), 0, 1, e, error));
  rtn += e;
  EXPECT_NEAR(result.rtnError, rtn, 1e-6 * rtn);
  EXPECT_LE(result.error, result.rtnError);
  std::printf("[ %-6s ] AWQ alpha %.2f, output error vs RTN %.3f\n",
              formats::info(f).name, result.alpha,
              result.error / result.rtnError);
  // With loud channels, scaling them up helps.
  EXPECT_GT(result.alpha, 0.0);
  EXPECT_LT(result.error, result.rtnError);
}

INSTANTIATE_TEST_SUITE_P(Formats, AWQFormats,
                         ::testing::Values(Format::Q4_0, Format::Q4_K,
                                           Format::Q3_K, Format::Q2_K),
                         [](const auto &info) {
                           return std::string(formats::info(info.param).name);
                         });

std::string layerWeightName(int64_t layer, const char *what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

/// A small GQA llama in f32, weights held in `tensors`.
struct FloatModel {
  int64_t d = 64, heads = 4, kvHeads = 2, hd = 16, ff = 96, vocab = 50,
          layers = 2;
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::pair<int64_t, int64_t>> shapes;

  void add(const std::string &name, int64_t rows, int64_t cols, float scale,
           float offset, std::mt19937 &rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(rows * cols);
    for (float &x : w)
      x = offset + scale * normal(rng);
    tensors[name] = std::move(w);
    shapes[name] = {rows, cols};
  }

  FloatModel() {
    std::mt19937 rng(99);
    add("token_embd.weight", vocab, d, 1.0f, 0.0f, rng);
    for (int64_t l = 0; l < layers; ++l) {
      add(layerWeightName(l, "attn_norm"), 1, d, 0.1f, 1.0f, rng);
      add(layerWeightName(l, "attn_q"), heads * hd, d, 0.2f, 0.0f, rng);
      add(layerWeightName(l, "attn_k"), kvHeads * hd, d, 0.2f, 0.0f, rng);
      add(layerWeightName(l, "attn_v"), kvHeads * hd, d, 0.2f, 0.0f, rng);
      add(layerWeightName(l, "attn_output"), d, heads * hd, 0.2f, 0.0f,
          rng);
      add(layerWeightName(l, "ffn_norm"), 1, d, 0.1f, 1.0f, rng);
      add(layerWeightName(l, "ffn_gate"), ff, d, 0.2f, 0.0f, rng);
      add(layerWeightName(l, "ffn_up"), ff, d, 0.2f, 0.0f, rng);
      add(layerWeightName(l, "ffn_down"), d, ff, 0.2f, 0.0f, rng);
    }
    add("output_norm.weight", 1, d, 0.1f, 1.0f, rng);
    add("output.weight", vocab, d, 0.2f, 0.0f, rng);
  }

  std::vector<float> logits(const std::vector<int32_t> &tokens) {
    std::map<std::string, exec::WeightRef> weights;
    for (auto &[name, data] : tensors) {
      exec::WeightRef ref;
      ref.format = Format::F32;
      ref.rows = shapes[name].first;
      ref.cols = shapes[name].second;
      ref.rowBytes = ref.cols * sizeof(float);
      ref.data = reinterpret_cast<const uint8_t *>(data.data());
      weights[name] = ref;
    }
    lowbit::testing::DecoderShape shape;
    shape.vocab = vocab;
    shape.embedding = d;
    shape.layers = layers;
    shape.heads = heads;
    shape.kvHeads = kvHeads;
    shape.feedForward = ff;
    shape.context = 64;
    exec::ModelDesc desc;
    std::string err;
    EXPECT_TRUE(
        lowbit::testing::makeDecoder(shape, weights, nullptr, desc, err))
        << err;
    exec::ExecOptions options;
    options.threads = 1;
    auto ex = exec::Executor::create(desc, options, err);
    EXPECT_TRUE(ex) << err;
    std::vector<float> out;
    if (!ex)
      return out;
    EXPECT_TRUE(ex->eval(tokens.data(), tokens.size(), 0, out, 0, err)) << err;
    return out;
  }

  float *data(const std::string &name) { return tensors.at(name).data(); }
};

std::vector<float> randomScales(int64_t n, std::mt19937 &rng) {
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  std::vector<float> s(n);
  for (float &v : s)
    v = std::exp(u(rng));
  return s;
}

TEST(AWQ, FoldingKeepsTheFloatModel) {
  FloatModel m;
  std::vector<int32_t> tokens = {1, 7, 3, 44, 12, 9, 30, 2, 17, 5};
  std::vector<float> before = m.logits(tokens);
  std::mt19937 rng(5);
  for (int64_t l = 0; l < m.layers; ++l) {
    auto name = [&](const char *what) {
      return layerWeightName(l, what);
    };
    // q/k/v read attn_norm's output.
    std::vector<float> s = randomScales(m.d, rng);
    divideRows(m.data(name("attn_norm")), m.d, 1, s.data());
    for (const char *w : {"attn_q", "attn_k", "attn_v"})
      scaleColumns(m.data(name(w)), m.shapes[name(w)].first, m.d, s.data());
    // attn_output reads V's rows through attention, tied across the query
    // heads of each KV head.
    std::vector<float> sKV = randomScales(m.kvHeads * m.hd, rng);
    divideRows(m.data(name("attn_v")), m.kvHeads * m.hd, m.d, sKV.data());
    std::vector<float> sO = expandFromKVHeads(sKV, m.heads, m.kvHeads, m.hd);
    scaleColumns(m.data(name("attn_output")), m.d, m.heads * m.hd, sO.data());
    // gate/up read ffn_norm's output.
    s = randomScales(m.d, rng);
    divideRows(m.data(name("ffn_norm")), m.d, 1, s.data());
    for (const char *w : {"ffn_gate", "ffn_up"})
      scaleColumns(m.data(name(w)), m.ff, m.d, s.data());
    // ffn_down reads silu(gate) * up: linear in up's rows.
    s = randomScales(m.ff, rng);
    divideRows(m.data(name("ffn_up")), m.ff, m.d, s.data());
    scaleColumns(m.data(name("ffn_down")), m.d, m.ff, s.data());
  }
  std::vector<float> after = m.logits(tokens);
  ASSERT_EQ(before.size(), after.size());
  double maxDiff = 0, maxAbs = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    maxDiff = std::max(maxDiff, double(std::fabs(before[i] - after[i])));
    maxAbs = std::max(maxAbs, double(std::fabs(before[i])));
  }
  EXPECT_LT(maxDiff, 1e-4 * maxAbs) << "max |logit| " << maxAbs;
}

} // namespace

namespace {

TEST(GPTQ, CodeMapsOfTheGGMLFormats) {
  // Every block format llama.cpp presets use gets column-by-column GPTQ.
  struct Expect {
    Format format;
    int bits;
  } expected[] = {{Format::Q4_0, 4}, {Format::Q4_1, 4},   {Format::Q5_0, 5},
                  {Format::Q5_1, 5}, {Format::Q8_0, 8},   {Format::Q2_K, 2},
                  {Format::Q3_K, 3}, {Format::Q4_K, 4},   {Format::Q5_K, 5},
                  {Format::Q6_K, 6}, {Format::IQ4_NL, 4}, {Format::IQ4_XS, 4},
                  {Format::F16, 0}};
  for (const Expect &e : expected)
    EXPECT_EQ(gptqCodeBits(e.format), e.bits) << formats::info(e.format).name;
  size_t count;
  const formats::FormatInfo *all = formats::allFormats(count);
  for (size_t i = 0; i < count; ++i)
    if (formats::hasCodec(all[i].format))
      std::printf("[ %-12s ] %d code bits\n", all[i].name,
                  gptqCodeBits(all[i].format));
}

} // namespace
