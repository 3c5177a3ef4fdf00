//===- Eval.h - Generation, perplexity and KL divergence --------*- C++ -*-===//
//
// Model quality measurements on top of the reference executor, with the
// protocol of llama.cpp's tools/perplexity so numbers are comparable:
//
//  - perplexity: the whole text is tokenized once (with BOS when the
//    vocabulary adds one), cut into floor(tokens / ctx) chunks of ctx tokens;
//    each chunk is evaluated from an empty cache with its first token
//    replaced by BOS, and only its second half is scored: positions
//    first = ctx/2 .. ctx-2 each predict the next token. PPL = exp(mean NLL),
//    reported with llama.cpp's +/- (standard error of the mean NLL times PPL).
//  - KL divergence: the log-probabilities of the scored positions of a base
//    model are saved to a file; another model is evaluated on the same tokens
//    and compared position by position (mean KLD, percentiles, top-1
//    agreement, PPL ratio, ln PPL correlation) like llama.cpp's
//    --kl-divergence report.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EVAL_EVAL_H
#define LOWBIT_EVAL_EVAL_H

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace lowbit {
class Tokenizer;
namespace exec {
class Evaluator;
} // namespace exec

namespace eval {

/// Called after each unit of work (a chunk, a token) with (done, total).
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

//===----------------------------------------------------------------------===//
// Sampling and generation
//===----------------------------------------------------------------------===//

struct SamplingOptions {
  /// <= 0: greedy (argmax, lowest id on ties). Otherwise top-k, then top-p on
  /// the untempered distribution, then temperature, then a draw (the order of
  /// llama.cpp's default sampler chain).
  float temperature = 0.0f;
  int topK = 40;      // <= 0: no limit
  float topP = 0.95f; // >= 1: no limit
  uint64_t seed = 0;
};

class Sampler {
public:
  explicit Sampler(const SamplingOptions &options);
  int32_t sample(const float *logits, int64_t vocabSize);

private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

struct GenerateOptions {
  int64_t maxTokens = 128;
  SamplingOptions sampling;
  /// Stop after an end-of-generation token (which is not emitted).
  bool stopAtEndOfGeneration = true;
};

/// Evaluates `prompt` from an empty cache and then samples up to maxTokens
/// tokens, calling `onToken` for each (returning false stops). Stops early
/// when the context is full.
bool generate(exec::Evaluator &executor, const Tokenizer &tokenizer,
              const std::vector<int32_t> &prompt,
              const GenerateOptions &options, std::vector<int32_t> &generated,
              const std::function<bool(int32_t)> &onToken, std::string &err);

//===----------------------------------------------------------------------===//
// Perplexity
//===----------------------------------------------------------------------===//

/// Encoding of saved log-probabilities.
enum class LogitsEncoding : uint32_t {
  F32 = 0, // exact f32 log-probabilities
  /// llama.cpp's compact form: per row a scale and a minimum (two floats)
  /// then one uint16 per token, log-probs below max - 16 clamped.
  U16 = 1,
};

struct PerplexityOptions {
  int64_t contextSize = 512;
  /// Evaluate at most this many chunks (<= 0: all).
  int64_t maxChunks = 0;
  /// When not empty, the scored positions' log-probabilities are written
  /// there (through a temporary file renamed at the end).
  std::string saveLogitsPath;
  LogitsEncoding encoding = LogitsEncoding::F32;
  ProgressFn progress; // per chunk
};

struct PerplexityResult {
  int64_t tokenCount = 0; // tokens of the text (with BOS)
  int64_t chunks = 0;
  int64_t contextSize = 0;
  int64_t scored = 0; // predictions scored
  double meanNll = 0;
  double ppl = 0;
  double pplError = 0; // llama.cpp's "+/-"
  /// PPL over the chunks so far, after each chunk (llama.cpp's [i]x.xxxx).
  std::vector<double> runningPpl;
  double seconds = 0;         // wall time of the evaluation
  double tokensPerSecond = 0; // evaluated tokens (chunks * ctx) per second
};

/// Runs the protocol above on `tokens` (the whole text as tokenized with
/// BOS). `bos` replaces each chunk's first token unless it is < 0.
/// Fails when the text has fewer than 2 * contextSize tokens.
bool perplexity(exec::Evaluator &executor, const std::vector<int32_t> &tokens,
                int32_t bos, const PerplexityOptions &options,
                PerplexityResult &result, std::string &err);

//===----------------------------------------------------------------------===//
// KL divergence against saved log-probabilities
//===----------------------------------------------------------------------===//

/// Header of a saved-logits file. Layout (little-endian):
///   char magic[8] = "LBLOGITS"; u32 version = 1; u32 encoding;
///   u32 vocabSize; u32 chunks; u32 contextSize; u32 reserved = 0;
///   i32 tokens[chunks * contextSize];
///   then for each chunk, for each scored position (contextSize - 1 -
///   contextSize/2 of them) one row: F32: float logprob[vocabSize];
///   U16: float scale, float minLogProb, uint16 q[vocabSize rounded up to
///   even] with logprob = scale * q + minLogProb.
///
/// llama.cpp's `llama-perplexity --kl-divergence-base` files are read too:
///   char magic[8] = "_logits_"; i32 n_ctx, n_vocab, n_chunk;
///   i32 tokens[n_chunk * n_ctx]; then the rows as U16 above.
struct LogitsFileInfo {
  LogitsEncoding encoding = LogitsEncoding::F32;
  int64_t vocabSize = 0, chunks = 0, contextSize = 0;
  std::vector<int32_t> tokens;
  uint64_t dataOffset = 0; // where the first row starts
};

/// Reads a saved-logits file's header and tokens (either format).
bool readLogitsFileInfo(const std::string &path, LogitsFileInfo &info,
                        std::string &err);

struct KLOptions {
  int64_t maxChunks = 0; // <= 0: all chunks of the file
  ProgressFn progress;
};

/// A mean with its standard error, as llama.cpp's mean_and_uncertainty.
struct Estimate {
  double value = 0, error = 0;
};

struct KLResult {
  int64_t chunks = 0, contextSize = 0, count = 0;
  Estimate ppl, basePpl;
  double lnPplCorrelation = 0; // Cor(ln PPL(Q), ln PPL(base))
  Estimate lnPplRatio;         // mean ln(PPL(Q)/PPL(base))
  Estimate pplRatio;           // PPL(Q)/PPL(base)
  Estimate pplDiff;            // PPL(Q)-PPL(base)
  Estimate kld;
  double kldMax = 0, kld999 = 0, kld99 = 0, kld95 = 0, kld90 = 0, kldMedian = 0,
         kld10 = 0, kld5 = 0, kld1 = 0, kld01 = 0, kldMin = 0;
  Estimate deltaP; // mean p(Q) - p(base) of the correct token
  double deltaPMax = 0, deltaP999 = 0, deltaP99 = 0, deltaP95 = 0, deltaP90 = 0,
         deltaP75 = 0, deltaPMedian = 0, deltaP25 = 0, deltaP10 = 0,
         deltaP5 = 0, deltaP1 = 0, deltaP01 = 0, deltaPMin = 0;
  Estimate rmsDeltaP;
  Estimate sameTop; // fraction of positions with the same argmax
  double seconds = 0, tokensPerSecond = 0;
};

/// Evaluates the executor's model on the file's tokens and compares.
bool klDivergence(exec::Evaluator &executor, const std::string &basePath,
                  int32_t bos, const KLOptions &options, KLResult &result,
                  std::string &err);

} // namespace eval
} // namespace lowbit

#endif // LOWBIT_EVAL_EVAL_H
