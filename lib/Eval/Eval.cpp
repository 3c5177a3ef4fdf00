//===- Eval.cpp - Generation, perplexity and KL divergence ----------------===//
//
// The statistics follow llama.cpp's tools/perplexity/perplexity.cpp: the
// same scored positions, log-softmax in float with a double sum, the same
// uncertainty estimates and percentile interpolation. Sums run in a fixed
// order (llama.cpp's threads add partial sums in any order), so results are
// reproducible bit for bit.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Eval/Eval.h"

#include "lowbit/Exec/Evaluator.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

namespace lowbit::eval {

namespace {

const char kLogitsMagic[8] = {'L', 'B', 'L', 'O', 'G', 'I', 'T', 'S'};
const char kLlamaCppLogitsMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr uint32_t kLogitsVersion = 1;

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

/// max and sum of exp(l - max) of a row, as llama.cpp's log_softmax.
struct RowStats {
  float maxLogit;
  int32_t argmax;
  double sumExp;
};

RowStats rowStats(const float *logits, int64_t n) {
  RowStats s{logits[0], 0, 0.0};
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > s.maxLogit) {
      s.maxLogit = logits[i];
      s.argmax = static_cast<int32_t>(i);
    }
  for (int64_t i = 0; i < n; ++i)
    s.sumExp += std::exp(logits[i] - s.maxLogit);
  return s;
}

/// The f32 log-probabilities of a row; the same function produces the saved
/// rows and the compared rows, so a model against itself gives exactly 0.
void logProbs(const float *logits, int64_t n, const RowStats &s, float *out) {
  const float lse = static_cast<float>(std::log(s.sumExp));
  for (int64_t i = 0; i < n; ++i)
    out[i] = (logits[i] - s.maxLogit) - lse;
}

int64_t u16RowValues(int64_t vocab) { return 2 * ((vocab + 1) / 2); }
int64_t rowBytes(LogitsEncoding enc, int64_t vocab) {
  return enc == LogitsEncoding::F32 ? vocab * 4 : 8 + 2 * u16RowValues(vocab);
}

inline int nearestInt(float f) { return static_cast<int>(std::lrintf(f)); }

/// llama.cpp's uint16 row: scale, min log-prob, then quantized log-probs
/// covering [max - 16, max].
void encodeU16(const float *logits, int64_t n, const RowStats &s,
               uint8_t *out) {
  float minLogit = logits[0];
  for (int64_t i = 1; i < n; ++i)
    minLogit = std::min(minLogit, logits[i]);
  minLogit = std::max(minLogit, s.maxLogit - 16);
  const float lse = static_cast<float>(std::log(s.sumExp));
  const float minLogProb = minLogit - s.maxLogit - lse;
  const float scale = (s.maxLogit - minLogit) / 65535.f;
  std::memcpy(out, &scale, 4);
  std::memcpy(out + 4, &minLogProb, 4);
  uint16_t *q = reinterpret_cast<uint16_t *>(out + 8);
  const int64_t nv = u16RowValues(n);
  std::fill(q, q + nv, uint16_t(0));
  if (scale != 0) {
    const float inv = 1 / scale;
    for (int64_t i = 0; i < n; ++i)
      q[i] =
          logits[i] > minLogit
              ? static_cast<uint16_t>(nearestInt(inv * (logits[i] - minLogit)))
              : 0;
  }
}

struct FileCloser {
  void operator()(FILE *f) const {
    if (f)
      std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

struct Header {
  char magic[8];
  uint32_t version, encoding, vocab, chunks, ctx, reserved;
};

Estimate meanAndError(double sum, double sum2, int64_t count) {
  if (count < 1)
    return {};
  double f = sum / count;
  double df = sum2 / count - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / (count - 1)) : 0.0;
  return {f, df};
}

double covariance(double a, double b, double ab, int64_t count) {
  if (count < 10)
    return 0.0;
  double v = ab / count - (a / count) * (b / count);
  return v / (count - 1);
}

double percentile(const std::vector<float> &sorted, double fraction) {
  if (sorted.empty())
    return 0;
  if (fraction <= 0)
    return sorted.front();
  if (fraction >= 1)
    return sorted.back();
  float p = static_cast<float>(fraction * (sorted.size() - 1));
  size_t ip = static_cast<size_t>(p);
  p -= ip;
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

double median(const std::vector<float> &sorted) {
  if (sorted.empty())
    return 0;
  size_t n = sorted.size();
  return n % 2 == 0 ? 0.5f * (sorted[n / 2] + sorted[n / 2 - 1])
                    : sorted[n / 2];
}

} // namespace

//===----------------------------------------------------------------------===//
// Sampling and generation
//===----------------------------------------------------------------------===//

Sampler::Sampler(const SamplingOptions &options)
    : options_(options), rng_(options.seed) {}

int32_t Sampler::sample(const float *logits, int64_t n) {
  if (options_.temperature <= 0) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (logits[i] > logits[best])
        best = static_cast<int32_t>(i);
    return best;
  }
  candidates_.clear();
  for (int64_t i = 0; i < n; ++i)
    candidates_.push_back({logits[i], static_cast<int32_t>(i)});
  auto byLogit = [](const std::pair<float, int32_t> &a,
                    const std::pair<float, int32_t> &b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t keep = candidates_.size();
  if (options_.topK > 0 && static_cast<size_t>(options_.topK) < keep) {
    keep = options_.topK;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep,
                      candidates_.end(), byLogit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), byLogit);
  }
  candidates_.resize(keep);
  // Top-p on the untempered distribution: the smallest prefix whose mass
  // reaches p.
  if (options_.topP < 1.0f) {
    double total = 0;
    std::vector<double> p(keep);
    for (size_t i = 0; i < keep; ++i)
      total += p[i] =
          std::exp(double(candidates_[i].first) - candidates_[0].first);
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / total;
      if (cum >= options_.topP) {
        cut = i + 1;
        break;
      }
    }
    candidates_.resize(std::max<size_t>(1, cut));
  }
  std::vector<double> w(candidates_.size());
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = std::exp((double(candidates_[i].first) - candidates_[0].first) /
                    options_.temperature);
  std::discrete_distribution<size_t> dist(w.begin(), w.end());
  return candidates_[dist(rng_)].second;
}

bool generate(exec::Evaluator &ex, const Tokenizer &tok,
              const std::vector<int32_t> &prompt,
              const GenerateOptions &options, std::vector<int32_t> &generated,
              const std::function<bool(int32_t)> &onToken, std::string &err) {
  generated.clear();
  if (prompt.empty()) {
    err = "empty prompt (no BOS either)";
    return false;
  }
  if (static_cast<int64_t>(prompt.size()) > ex.contextSize()) {
    err = "prompt of " + std::to_string(prompt.size()) +
          " tokens does not fit the context of " +
          std::to_string(ex.contextSize());
    return false;
  }
  ex.reset();
  std::vector<float> logits;
  if (!ex.evalLast(prompt, 0, logits, err))
    return false;
  Sampler sampler(options.sampling);
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (int64_t i = 0; i < options.maxTokens; ++i) {
    int32_t next = sampler.sample(logits.data(), ex.vocabSize());
    if (options.stopAtEndOfGeneration && tok.isEndOfGeneration(next))
      break;
    generated.push_back(next);
    if (onToken && !onToken(next))
      break;
    if (pos >= ex.contextSize() || i + 1 == options.maxTokens)
      break;
    if (!ex.eval(&next, 1, pos, logits, 0, err))
      return false;
    ++pos;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Perplexity
//===----------------------------------------------------------------------===//

bool perplexity(exec::Evaluator &ex, const std::vector<int32_t> &tokens,
                int32_t bos, const PerplexityOptions &options,
                PerplexityResult &result, std::string &err) {
  result = PerplexityResult();
  const int64_t ctx = options.contextSize;
  const int64_t total = static_cast<int64_t>(tokens.size());
  result.tokenCount = total;
  result.contextSize = ctx;
  if (ctx < 4) {
    err = "context size must be at least 4";
    return false;
  }
  if (ctx > ex.contextSize()) {
    err = "context size " + std::to_string(ctx) + " exceeds the executor's " +
          std::to_string(ex.contextSize());
    return false;
  }
  if (total < 2 * ctx) {
    err = "the text has " + std::to_string(total) +
          " tokens; perplexity with a context of " + std::to_string(ctx) +
          " needs at least " + std::to_string(2 * ctx);
    return false;
  }
  int64_t chunks = total / ctx;
  if (options.maxChunks > 0)
    chunks = std::min(chunks, options.maxChunks);
  result.chunks = chunks;
  const int64_t first = ctx / 2;
  const int64_t V = ex.vocabSize();

  // Optional log-probabilities file.
  std::unique_ptr<AtomicFileWriter> out;
  std::vector<uint8_t> row;
  if (!options.saveLogitsPath.empty()) {
    out = std::make_unique<AtomicFileWriter>(options.saveLogitsPath);
    if (!out->open(err))
      return false;
    Header h;
    std::memcpy(h.magic, kLogitsMagic, 8);
    h.version = kLogitsVersion;
    h.encoding = static_cast<uint32_t>(options.encoding);
    h.vocab = static_cast<uint32_t>(V);
    h.chunks = static_cast<uint32_t>(chunks);
    h.ctx = static_cast<uint32_t>(ctx);
    h.reserved = 0;
    if (!out->write(&h, sizeof(h), err) ||
        !out->write(tokens.data(), chunks * ctx * sizeof(int32_t), err))
      return false;
    row.resize(rowBytes(options.encoding, V));
  }

  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> chunk(ctx);
  std::vector<float> logits;
  const int64_t scored = ctx - 1 - first;
  std::vector<double> logp(scored);
  if (out)
    row.resize(row.size() * scored);
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    std::copy(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx,
              chunk.begin());
    if (bos >= 0)
      chunk[0] = bos;
    ex.reset();
    if (!ex.eval(chunk.data(), ctx, 0, logits, first, err))
      return false;
    // Rows in parallel, sums in order: the result does not depend on the
    // thread count.
    ex.parallelFor(scored, [&](int64_t r, int) {
      const float *l = logits.data() + r * V;
      const int32_t target = tokens[c * ctx + first + r + 1];
      RowStats s = rowStats(l, V);
      logp[r] = l[target] - s.maxLogit - std::log(s.sumExp);
      if (!out)
        return;
      uint8_t *dst = row.data() + r * rowBytes(options.encoding, V);
      if (options.encoding == LogitsEncoding::F32)
        logProbs(l, V, s, reinterpret_cast<float *>(dst));
      else
        encodeU16(l, V, s, dst);
    });
    for (int64_t r = 0; r < scored; ++r) {
      nll += -logp[r];
      nll2 += logp[r] * logp[r];
      ++count;
    }
    if (out && !out->write(row.data(), row.size(), err))
      return false;
    result.runningPpl.push_back(std::exp(nll / count));
    if (options.progress)
      options.progress(c + 1, chunks);
  }
  if (out && !out->commit(err))
    return false;

  result.scored = count;
  result.meanNll = nll / count;
  result.ppl = std::exp(result.meanNll);
  double var = nll2 / count - result.meanNll * result.meanNll;
  result.pplError = var > 0 ? std::sqrt(var / (count - 1)) * result.ppl : 0;
  result.seconds = secondsSince(t0);
  result.tokensPerSecond =
      result.seconds > 0 ? chunks * ctx / result.seconds : 0;
  return true;
}

//===----------------------------------------------------------------------===//
// KL divergence
//===----------------------------------------------------------------------===//

bool readLogitsFileInfo(const std::string &path, LogitsFileInfo &info,
                        std::string &err) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    err = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  char magic[8];
  if (std::fread(magic, 8, 1, f.get()) != 1) {
    err = path + ": not a logits file (shorter than its magic)";
    return false;
  }
  uint64_t vocab, chunks, ctx;
  uint64_t headerBytes;
  if (std::memcmp(magic, kLogitsMagic, 8) == 0) {
    Header h;
    std::rewind(f.get());
    if (std::fread(&h, sizeof(h), 1, f.get()) != 1) {
      err = path + ": truncated logits file header";
      return false;
    }
    if (h.version != kLogitsVersion) {
      err = path + ": unsupported logits file version " +
            std::to_string(h.version);
      return false;
    }
    if (h.encoding > 1) {
      err = path + ": corrupt logits file header";
      return false;
    }
    info.encoding = static_cast<LogitsEncoding>(h.encoding);
    vocab = h.vocab;
    chunks = h.chunks;
    ctx = h.ctx;
    headerBytes = sizeof(Header);
  } else if (std::memcmp(magic, kLlamaCppLogitsMagic, 8) == 0) {
    // llama-perplexity --kl-divergence-base: "_logits_", int32 n_ctx,
    // n_vocab, n_chunk, then the tokens and rows as our U16 encoding.
    int32_t fields[3];
    if (std::fread(fields, 4, 3, f.get()) != 3) {
      err = path + ": truncated llama.cpp logits file header";
      return false;
    }
    if (fields[0] <= 0 || fields[1] <= 0 || fields[2] <= 0) {
      err = path + ": corrupt llama.cpp logits file header";
      return false;
    }
    info.encoding = LogitsEncoding::U16;
    ctx = static_cast<uint64_t>(fields[0]);
    vocab = static_cast<uint64_t>(fields[1]);
    chunks = static_cast<uint64_t>(fields[2]);
    headerBytes = 8 + 12;
  } else {
    err = path + ": not a logits file (neither lowbit's LBLOGITS nor "
                 "llama.cpp's _logits_ magic)";
    return false;
  }
  if (vocab == 0 || chunks == 0 || ctx < 4) {
    err = path + ": corrupt logits file header";
    return false;
  }
  info.vocabSize = static_cast<int64_t>(vocab);
  info.chunks = static_cast<int64_t>(chunks);
  info.contextSize = static_cast<int64_t>(ctx);
  // Check the size before allocating anything from the header's counts.
  if (std::fseek(f.get(), 0, SEEK_END) != 0) {
    err = path + ": cannot seek";
    return false;
  }
  const long size = std::ftell(f.get());
  const int64_t scoredPerChunk = ctx - 1 - ctx / 2;
  const long double expected = static_cast<long double>(headerBytes) +
                               static_cast<long double>(chunks) * ctx * 4 +
                               static_cast<long double>(chunks) *
                                   scoredPerChunk *
                                   rowBytes(info.encoding, vocab);
  if (static_cast<long double>(size) != expected) {
    err = path + ": truncated or corrupt logits file (" + std::to_string(size) +
          " bytes, header implies " +
          std::to_string(static_cast<uint64_t>(expected)) + ")";
    return false;
  }
  std::fseek(f.get(), static_cast<long>(headerBytes), SEEK_SET);
  info.tokens.resize(static_cast<size_t>(chunks * ctx));
  if (std::fread(info.tokens.data(), 4, info.tokens.size(), f.get()) !=
      info.tokens.size()) {
    err = path + ": cannot read the tokens";
    return false;
  }
  info.dataOffset = headerBytes + info.tokens.size() * 4;
  return true;
}

bool klDivergence(exec::Evaluator &ex, const std::string &basePath, int32_t bos,
                  const KLOptions &options, KLResult &result,
                  std::string &err) {
  result = KLResult();
  LogitsFileInfo info;
  if (!readLogitsFileInfo(basePath, info, err))
    return false;
  const int64_t V = ex.vocabSize(), ctx = info.contextSize;
  if (info.vocabSize != V) {
    err = basePath + ": saved with a vocabulary of " +
          std::to_string(info.vocabSize) + " tokens, the model has " +
          std::to_string(V);
    return false;
  }
  if (ctx > ex.contextSize()) {
    err = basePath + ": saved with context " + std::to_string(ctx) +
          ", larger than the executor's " + std::to_string(ex.contextSize());
    return false;
  }
  for (int32_t t : info.tokens)
    if (t < 0 || t >= V) {
      err = basePath + ": token id " + std::to_string(t) +
            " outside the vocabulary";
      return false;
    }
  File f(std::fopen(basePath.c_str(), "rb"));
  if (!f) {
    err = basePath + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::fseek(f.get(), static_cast<long>(info.dataOffset), SEEK_SET);

  int64_t chunks = info.chunks;
  if (options.maxChunks > 0)
    chunks = std::min(chunks, options.maxChunks);
  result.chunks = chunks;
  result.contextSize = ctx;
  const int64_t first = ctx / 2, scored = ctx - 1 - first;
  const int64_t rb = rowBytes(info.encoding, V);
  std::vector<uint8_t> base(static_cast<size_t>(scored) * rb);
  std::vector<float> logits;
  std::vector<float> klds, pdiffs;
  klds.reserve(chunks * scored);
  pdiffs.reserve(chunks * scored);
  double sumNll = 0, sumNll2 = 0, sumBase = 0, sumBase2 = 0, sumCross = 0,
         sumKld = 0, sumKld2 = 0, sumP = 0, sumP2 = 0, sumP4 = 0;
  int64_t sameTop = 0, count = 0;

  // Per-position results, computed in parallel and summed in order.
  struct Position {
    double kld, nll, nllBase;
    bool sameTop;
  };
  std::vector<Position> pos(scored);
  std::vector<std::vector<float>> curRows(ex.threads(), std::vector<float>(V));

  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> chunk(ctx);
  for (int64_t c = 0; c < chunks; ++c) {
    if (std::fread(base.data(), 1, base.size(), f.get()) != base.size()) {
      err = basePath + ": cannot read the log-probabilities of chunk " +
            std::to_string(c + 1);
      return false;
    }
    std::copy(info.tokens.begin() + c * ctx,
              info.tokens.begin() + (c + 1) * ctx, chunk.begin());
    if (bos >= 0)
      chunk[0] = bos;
    ex.reset();
    if (!ex.eval(chunk.data(), ctx, 0, logits, first, err))
      return false;
    ex.parallelFor(scored, [&](int64_t r, int thread) {
      const float *l = logits.data() + r * V;
      const uint8_t *b = base.data() + r * rb;
      const int32_t target = info.tokens[c * ctx + first + r + 1];
      RowStats s = rowStats(l, V);
      double kld = 0, nll, nllBase;
      int32_t baseTop = 0;
      if (info.encoding == LogitsEncoding::F32) {
        const float *baseRow = reinterpret_cast<const float *>(b);
        float *cur = curRows[thread].data();
        logProbs(l, V, s, cur);
        for (int64_t i = 0; i < V; ++i) {
          if (baseRow[i] > baseRow[baseTop])
            baseTop = static_cast<int32_t>(i);
          kld += std::exp(double(baseRow[i])) *
                 (double(baseRow[i]) - double(cur[i]));
        }
        nll = -double(cur[target]);
        nllBase = -double(baseRow[target]);
      } else {
        // llama.cpp's arithmetic for its uint16 rows.
        float scale, minLogProb;
        std::memcpy(&scale, b, 4);
        std::memcpy(&minLogProb, b + 4, 4);
        const uint16_t *q = reinterpret_cast<const uint16_t *>(b + 8);
        const float lse = static_cast<float>(std::log(s.sumExp));
        nll = s.maxLogit + lse - l[target];
        nllBase = -(scale * q[target] + minLogProb);
        const float top = s.maxLogit + lse;
        float baseMax = 0;
        for (int64_t i = 0; i < V; ++i) {
          const float pl = scale * q[i] + minLogProb;
          if (i == 0 || pl > baseMax) {
            baseMax = pl;
            baseTop = static_cast<int32_t>(i);
          }
          if (pl > -16.f)
            kld += std::exp(pl) * (pl - l[i] + top);
        }
      }
      pos[r] = {kld, nll, nllBase, s.argmax == baseTop};
    });
    for (const Position &p : pos) {
      sumNll += p.nll;
      sumNll2 += p.nll * p.nll;
      sumBase += p.nllBase;
      sumBase2 += p.nllBase * p.nllBase;
      sumCross += p.nll * p.nllBase;
      sumKld += p.kld;
      sumKld2 += p.kld * p.kld;
      sameTop += p.sameTop;
      const double pd = std::exp(-p.nll) - std::exp(-p.nllBase);
      sumP += pd;
      sumP2 += pd * pd;
      sumP4 += pd * pd * pd * pd;
      klds.push_back(static_cast<float>(p.kld));
      pdiffs.push_back(static_cast<float>(pd));
      ++count;
    }
    if (options.progress)
      options.progress(c + 1, chunks);
  }
  result.count = count;
  result.seconds = secondsSince(t0);
  result.tokensPerSecond =
      result.seconds > 0 ? chunks * ctx / result.seconds : 0;

  Estimate lnPpl = meanAndError(sumNll, sumNll2, count);
  Estimate lnBase = meanAndError(sumBase, sumBase2, count);
  result.ppl = {std::exp(lnPpl.value), std::exp(lnPpl.value) * lnPpl.error};
  result.basePpl = {std::exp(lnBase.value),
                    std::exp(lnBase.value) * lnBase.error};
  const double cov = covariance(sumNll, sumBase, sumCross, count);
  const double denom = lnPpl.error * lnBase.error;
  result.lnPplCorrelation = denom > 0 ? cov / denom : 1.0;
  const double ratioVar =
      lnPpl.error * lnPpl.error + lnBase.error * lnBase.error - 2.0 * cov;
  result.lnPplRatio = {lnPpl.value - lnBase.value,
                       std::sqrt(std::max(0.0, ratioVar))};
  result.pplRatio = {std::exp(result.lnPplRatio.value),
                     std::exp(result.lnPplRatio.value) *
                         result.lnPplRatio.error};
  const double pplCov = result.ppl.value * result.basePpl.value * cov;
  const double diffVar = result.ppl.error * result.ppl.error +
                         result.basePpl.error * result.basePpl.error -
                         2.0 * pplCov;
  result.pplDiff = {result.ppl.value - result.basePpl.value,
                    std::sqrt(std::max(0.0, diffVar))};

  result.kld = meanAndError(sumKld, sumKld2, count);
  std::sort(klds.begin(), klds.end());
  std::sort(pdiffs.begin(), pdiffs.end());
  if (!klds.empty()) {
    result.kldMax = klds.back();
    result.kld999 = percentile(klds, 0.999);
    result.kld99 = percentile(klds, 0.99);
    result.kld95 = percentile(klds, 0.95);
    result.kld90 = percentile(klds, 0.90);
    result.kldMedian = median(klds);
    result.kld10 = percentile(klds, 0.10);
    result.kld5 = percentile(klds, 0.05);
    result.kld1 = percentile(klds, 0.01);
    result.kld01 = percentile(klds, 0.001);
    result.kldMin = klds.front();
    result.deltaPMax = pdiffs.back();
    result.deltaP999 = percentile(pdiffs, 0.999);
    result.deltaP99 = percentile(pdiffs, 0.99);
    result.deltaP95 = percentile(pdiffs, 0.95);
    result.deltaP90 = percentile(pdiffs, 0.90);
    result.deltaP75 = percentile(pdiffs, 0.75);
    result.deltaPMedian = median(pdiffs);
    result.deltaP25 = percentile(pdiffs, 0.25);
    result.deltaP10 = percentile(pdiffs, 0.10);
    result.deltaP5 = percentile(pdiffs, 0.05);
    result.deltaP1 = percentile(pdiffs, 0.01);
    result.deltaP01 = percentile(pdiffs, 0.001);
    result.deltaPMin = pdiffs.front();
  }
  result.deltaP = meanAndError(sumP, sumP2, count);
  Estimate mse = meanAndError(sumP2, sumP4, count);
  const double rms = std::sqrt(mse.value);
  result.rmsDeltaP = {rms, rms > 0 ? 0.5 / rms * mse.error : 0.0};
  const double top = count ? double(sameTop) / count : 0;
  result.sameTop = {top,
                    count > 1 ? std::sqrt(top * (1 - top) / (count - 1)) : 0.0};
  return true;
}

} // namespace lowbit::eval
