//===- EvalTest.cpp - Generation, perplexity and KL divergence tests ------===//
//
// The acceptance checks against llama.cpp's figures on the shared models
// (skipped when absent): greedy decoding of stories260K reproduces the
// recorded 200 tokens, perplexities match llama-perplexity to 0.1%, a model
// compared with its own saved logits has KL divergence 0.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Eval/Eval.h"

#include "lowbit/Exec/Executor.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include "TestModels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace lowbit;

namespace {

std::string sharedPath(const std::string &rel) {
  return std::string(LOWBIT_SHARED_DIR) + "/models/" + rel;
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "lowbit-evaltest-" +
         std::to_string(::getpid()) + "-" + name;
}

/// A GGUF model with its tokenizer and an executor.
struct Loaded {
  exec::ModelDesc desc;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<exec::Executor> ex;
};

/// Loads a shared model; empty `skip` on success.
Loaded load(const std::string &rel, int64_t ctx, std::string &skip,
            int threads = 2) {
  Loaded l;
  std::string path = sharedPath(rel);
  if (!exists(path)) {
    skip = "model not found: " + path;
    return l;
  }
  std::string err;
  if (!lowbit::testing::loadModel(path, l.desc, err)) {
    ADD_FAILURE() << err;
    skip = err;
    return l;
  }
  l.tok = Tokenizer::create(l.desc.metadata, err);
  EXPECT_TRUE(l.tok) << err;
  exec::ExecOptions o;
  o.threads = threads;
  o.contextSize = ctx;
  l.ex = exec::Executor::create(l.desc, o, err);
  EXPECT_TRUE(l.ex) << err;
  if (!l.tok || !l.ex)
    skip = err;
  return l;
}

//===----------------------------------------------------------------------===//
// Acceptance checks on the shared models.
//===----------------------------------------------------------------------===//

TEST(EvalAcceptance, Stories260KGreedy200MatchesReference) {
  std::string skip;
  Loaded m = load("stories260K/stories260K-f32.gguf", 0, skip);
  if (!m.ex)
    GTEST_SKIP() << skip;
  std::string ref =
      readFile(sharedPath("stories260K/greedy_reference_200steps.txt"));
  ASSERT_FALSE(ref.empty());
  eval::GenerateOptions opts;
  opts.maxTokens = 200;
  std::vector<int32_t> generated;
  std::string text, err;
  ASSERT_TRUE(eval::generate(
      *m.ex, *m.tok, {m.tok->bos()}, opts, generated,
      [&](int32_t id) {
        text += m.tok->tokenToPiece(id);
        return true;
      },
      err))
      << err;
  EXPECT_EQ(generated.size(), 200u);
  // The reference drops the first piece's leading space and ends with '\n'.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text[0], ' ');
  EXPECT_EQ(text.substr(1) + "\n", ref);
  // Detokenizing without BOS drops that space the same way.
  EXPECT_EQ(m.tok->detokenize(generated) + "\n", ref);
}

TEST(EvalAcceptance, Stories260KPerplexityMatchesLlamaCpp) {
  std::string skip;
  Loaded m = load("stories260K/stories260K-f32.gguf", 128, skip);
  if (!m.ex)
    GTEST_SKIP() << skip;
  std::string text = readFile(sharedPath("stories260K/sample-eval.txt"));
  std::vector<int32_t> toks = m.tok->tokenize(text);
  ASSERT_EQ(toks[0], 1);
  eval::PerplexityOptions po;
  po.contextSize = 128;
  eval::PerplexityResult r;
  std::string err;
  ASSERT_TRUE(eval::perplexity(*m.ex, toks, m.tok->bos(), po, r, err)) << err;
  EXPECT_EQ(r.chunks, 56);
  EXPECT_EQ(r.scored, 56 * 63);
  // llama.cpp: PPL = 2.9801 +/- 0.075.
  EXPECT_NEAR(r.ppl, 2.9801, 2.9801 * 1e-3);
  EXPECT_NEAR(r.pplError, 0.075, 0.001);
  ASSERT_EQ(r.runningPpl.size(), 56u);
  EXPECT_DOUBLE_EQ(r.runningPpl.back(), r.ppl);
}

TEST(EvalAcceptance, SelfKLDivergenceIsZero) {
  std::string skip;
  Loaded m = load("stories260K/stories260K-f32.gguf", 128, skip);
  if (!m.ex)
    GTEST_SKIP() << skip;
  std::string text = readFile(sharedPath("stories260K/sample-eval.txt"));
  std::vector<int32_t> toks = m.tok->tokenize(text);
  std::string file = tempPath("self.logits");
  eval::PerplexityOptions po;
  po.contextSize = 128;
  po.saveLogitsPath = file;
  eval::PerplexityResult pr;
  std::string err;
  ASSERT_TRUE(eval::perplexity(*m.ex, toks, m.tok->bos(), po, pr, err)) << err;

  eval::LogitsFileInfo info;
  ASSERT_TRUE(eval::readLogitsFileInfo(file, info, err)) << err;
  EXPECT_EQ(info.vocabSize, 512);
  EXPECT_EQ(info.chunks, 56);
  EXPECT_EQ(info.contextSize, 128);
  EXPECT_EQ(info.tokens,
            std::vector<int32_t>(toks.begin(), toks.begin() + 56 * 128));

  eval::KLOptions ko;
  eval::KLResult kr;
  ASSERT_TRUE(eval::klDivergence(*m.ex, file, m.tok->bos(), ko, kr, err))
      << err;
  EXPECT_EQ(kr.count, 56 * 63);
  EXPECT_EQ(kr.kld.value, 0.0);
  EXPECT_EQ(kr.kldMax, 0.0);
  EXPECT_EQ(kr.kld99, 0.0);
  EXPECT_EQ(kr.sameTop.value, 1.0);
  EXPECT_EQ(kr.pplRatio.value, 1.0);
  EXPECT_EQ(kr.deltaP.value, 0.0);
  EXPECT_NEAR(kr.lnPplCorrelation, 1.0, 1e-9);
  EXPECT_NEAR(kr.ppl.value, pr.ppl, 1e-9 * pr.ppl);
  EXPECT_NEAR(kr.ppl.error, pr.pplError, 1e-6);

  // llama.cpp's compact encoding: not exact, but close to 0.
  po.encoding = eval::LogitsEncoding::U16;
  ASSERT_TRUE(eval::perplexity(*m.ex, toks, m.tok->bos(), po, pr, err)) << err;
  ko.maxChunks = 8;
  ASSERT_TRUE(eval::klDivergence(*m.ex, file, m.tok->bos(), ko, kr, err))
      << err;
  EXPECT_EQ(kr.chunks, 8);
  EXPECT_LT(kr.kld.value, 1e-5);
  EXPECT_GT(kr.sameTop.value, 0.99);
  std::remove(file.c_str());
}

TEST(EvalAcceptance, Docs256PerplexityMatchesLlamaCpp) {
  std::string skip;
  Loaded m = load("docs256/model-f32.gguf", 256, skip);
  if (!m.ex)
    GTEST_SKIP() << skip;
  std::string text = readFile(sharedPath("docs256/dev-eval.txt"));
  std::vector<int32_t> toks = m.tok->tokenize(text);
  eval::PerplexityOptions po;
  po.contextSize = 256;
  eval::PerplexityResult r;
  std::string err;
  ASSERT_TRUE(eval::perplexity(*m.ex, toks, m.tok->bos(), po, r, err)) << err;
  // llama.cpp build 4748: PPL = 43.1382 +/- 0.420.
  EXPECT_NEAR(r.ppl, 43.1382, 43.1382 * 1e-3);
  EXPECT_NEAR(r.pplError, 0.420, 0.002);
  std::printf("docs256 F32, -c 256: %lld chunks, PPL = %.4f +/- %.5f, "
              "%.0f tokens/s\n",
              static_cast<long long>(r.chunks), r.ppl, r.pplError,
              r.tokensPerSecond);
}

//===----------------------------------------------------------------------===//
// Library behaviour without models.
//===----------------------------------------------------------------------===//

TEST(EvalSampler, GreedyIsArgmaxWithLowestIdOnTies) {
  eval::Sampler s(eval::SamplingOptions{});
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(l.data(), 4), 1);
  eval::SamplingOptions topOne;
  topOne.temperature = 1.5f;
  topOne.topK = 1;
  eval::Sampler s1(topOne);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(s1.sample(l.data(), 4), 1);
}

TEST(EvalSampler, SeededAndDistributed) {
  eval::SamplingOptions o;
  o.temperature = 1.0f;
  o.topK = 0;
  o.topP = 1.0f;
  o.seed = 1234;
  // p(1) = 3/4, p(0) = 1/4.
  std::vector<float> l = {0.0f, std::log(3.0f)};
  eval::Sampler a(o), b(o);
  int ones = 0;
  for (int i = 0; i < 4000; ++i) {
    int32_t x = a.sample(l.data(), 2);
    EXPECT_EQ(x, b.sample(l.data(), 2));
    ones += x;
  }
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);
  // Top-p 0.5 keeps only the most likely token.
  o.topP = 0.5f;
  eval::Sampler c(o);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(c.sample(l.data(), 2), 1);
}

TEST(EvalLogitsFile, RejectsBadFiles) {
  eval::LogitsFileInfo info;
  std::string err;
  EXPECT_FALSE(eval::readLogitsFileInfo(tempPath("missing"), info, err));
  EXPECT_NE(err.find("cannot open"), std::string::npos);

  std::string bad = tempPath("bad.logits");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "NOTLOGITS and some more bytes to fill a header....";
  }
  EXPECT_FALSE(eval::readLogitsFileInfo(bad, info, err));
  EXPECT_NE(err.find("neither lowbit's LBLOGITS nor llama.cpp's _logits_"),
            std::string::npos)
      << err;

  // llama.cpp's header (_logits_, n_ctx, n_vocab, n_chunk) with no body.
  {
    std::ofstream out(bad, std::ios::binary);
    const int32_t fields[3] = {8, 16, 2};
    out.write("_logits_", 8);
    out.write(reinterpret_cast<const char *>(fields), sizeof(fields));
  }
  EXPECT_FALSE(eval::readLogitsFileInfo(bad, info, err));
  EXPECT_NE(err.find("truncated or corrupt logits file (20 bytes"),
            std::string::npos)
      << err;

  // A valid header whose body is missing.
  {
    std::ofstream out(bad, std::ios::binary);
    out.write("LBLOGITS", 8);
    uint32_t h[6] = {1, 0, 16, 2, 8, 0}; // version, f32, vocab, chunks, ctx
    out.write(reinterpret_cast<const char *>(h), sizeof(h));
  }
  EXPECT_FALSE(eval::readLogitsFileInfo(bad, info, err));
  EXPECT_NE(err.find("truncated"), std::string::npos);
  std::remove(bad.c_str());
}

TEST(EvalPerplexity, NeedsTwoContextsOfTokens) {
  std::string skip;
  Loaded m = load("stories260K/stories260K-f32.gguf", 128, skip);
  if (!m.ex)
    GTEST_SKIP() << skip;
  std::vector<int32_t> toks = m.tok->tokenize("Once upon a time.");
  eval::PerplexityOptions po;
  po.contextSize = 128;
  eval::PerplexityResult r;
  std::string err;
  EXPECT_FALSE(eval::perplexity(*m.ex, toks, m.tok->bos(), po, r, err));
  EXPECT_NE(err.find("at least 256"), std::string::npos);
}

} // namespace
