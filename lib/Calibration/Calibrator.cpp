//===- Calibrator.cpp - Activation statistics from the executor -----------===//
#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/Calibration/Hessian.h"

#include "lowbit/Eval/Eval.h"
#include "lowbit/Exec/Executor.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <unistd.h>

namespace lowbit::calib {

namespace {

constexpr uint32_t kGGMLTypeF32 = 0;
constexpr uint32_t kGGMLTypeI32 = 26;
/// Four floats as one SIMD register (SSE on x86-64, NEON on AArch64), for a
/// dot-product kernel the compiler would not vectorise on its own (it may not
/// reorder float sums).
typedef float Float4 __attribute__((vector_size(16)));

inline Float4 load4(const float *p) {
  Float4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline float sum4(Float4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/// H[i][j] += xt[i] . xt[j] for rows i in [i0, i0 + 4) and columns j in
/// [j0, j0 + 2): eight dot products over `padded` tokens, each input loaded
/// once per step. xt is the batch transposed: one row of `padded` values
/// (zeros past the batch) per input channel, `rows` rows (K rounded up to 4,
/// zero rows past K).
inline void dotBlock4x2(float *h, int64_t k, const float *xt, int64_t padded,
                        int64_t i0, int64_t j0) {
  Float4 acc[4][2] = {};
  const float *a0 = xt + i0 * padded, *b0 = xt + j0 * padded;
  for (int64_t t = 0; t < padded; t += 4) {
    Float4 b[2] = {load4(b0 + t), load4(b0 + padded + t)};
    for (int r = 0; r < 4; ++r) {
      Float4 a = load4(a0 + r * padded + t);
      acc[r][0] += a * b[0];
      acc[r][1] += a * b[1];
    }
  }
  for (int r = 0; r < 4 && i0 + r < k; ++r)
    for (int c = 0; c < 2 && j0 + c < k; ++c)
      h[(i0 + r) * k + j0 + c] += sum4(acc[r][c]);
}

/// An order-dependent checksum of an activation buffer: tells whether two
/// matmuls that read the same address also read the same values.
uint64_t checksum(const float *x, int64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, 4);
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

enum class GroupStatus { Deferred, Active, Done };

struct Group {
  HessianGroup info;
  GroupStatus status = GroupStatus::Deferred;
  std::vector<float> h; // K x K while active
  uint64_t bytes() const {
    return static_cast<uint64_t>(info.k) * static_cast<uint64_t>(info.k) *
           sizeof(float);
  }
};

/// Sums of one weight's inputs, per matrix (an expert of a stacked 3-D
/// weight sees only the tokens routed to it).
struct WeightStats {
  std::vector<double> sumSquares, sum; // experts x k
  std::vector<double> counts;          // per expert
  int64_t k = 0;
};

/// The executor's MatmulObserver for one calibration run.
class Collector {
public:
  Collector(exec::Executor &ex, const CalibrationOptions &options)
      : ex_(ex), options_(options) {}

  bool collectStats = true;
  int64_t pass = 1;
  std::string error;
  std::map<std::string, WeightStats> stats;
  std::vector<std::string> statsOrder;
  std::vector<Group> groups;
  std::map<std::string, size_t> groupOf;

  void observe(const std::string &name, int64_t expert, int64_t experts,
               const float *x, int64_t tokens, int64_t k) {
    if (!error.empty() || tokens <= 0)
      return;
    if (collectStats && !addStats(name, expert, experts, x, tokens, k))
      return;
    if (!options_.hessians)
      return;
    // Each expert's matrix has its own Hessian (named only for experts: a
    // dense weight's name is used as it is, without a copy per batch).
    std::string expertMatrix;
    if (experts != 1)
      expertMatrix = hessianMatrixName(name, expert, experts);
    const std::string &matrix = experts == 1 ? name : expertMatrix;
    size_t g = groupFor(matrix, x, tokens, k);
    Group &group = groups[g];
    // Members after the first read the same input: it was added already.
    if (group.status == GroupStatus::Active && group.info.weights[0] == matrix)
      addHessian(group, x, tokens);
  }

  /// Active groups (pass 1 admits while it discovers them).
  bool anyActive() const {
    for (const Group &g : groups)
      if (g.status == GroupStatus::Active)
        return true;
    return false;
  }
  bool anyDeferred() const {
    for (const Group &g : groups)
      if (g.status == GroupStatus::Deferred)
        return true;
    return false;
  }
  bool isActive(const std::string &weight) const {
    auto it = groupOf.find(weight);
    return it != groupOf.end() &&
           groups[it->second].status == GroupStatus::Active;
  }

  /// Admits deferred groups, in forward order, while they fit the budget.
  bool admitDeferred(std::string &err) {
    uint64_t used = 0;
    for (Group &g : groups) {
      if (g.status != GroupStatus::Deferred)
        continue;
      if (used + g.bytes() > options_.hessianBudget)
        continue;
      if (!allocate(g, err))
        return false;
      used += g.bytes();
    }
    if (!anyActive()) {
      for (const Group &g : groups)
        if (g.status == GroupStatus::Deferred) {
          err = "the Hessian of " + g.info.weights[0] + " alone needs " +
                std::to_string(g.bytes()) +
                " bytes, more than the Hessian budget of " +
                std::to_string(options_.hessianBudget) + " bytes";
          return false;
        }
    }
    return true;
  }

  /// Moves the finished Hessians of this pass to the scratch file.
  bool flushActive(FILE *scratch, uint64_t &scratchBytes, std::string &err) {
    for (Group &g : groups) {
      if (g.status != GroupStatus::Active)
        continue;
      const int64_t k = g.info.k;
      // Only tiles on and above the diagonal were accumulated.
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < i; ++j)
          g.h[i * k + j] = g.h[j * k + i];
      for (float v : g.h)
        if (!std::isfinite(v)) {
          err = "the Hessian of " + g.info.weights[0] +
                " overflowed (activations too large for f32 sums)";
          return false;
        }
      if (std::fwrite(g.h.data(), sizeof(float), g.h.size(), scratch) !=
          g.h.size()) {
        err = "cannot write " + options_.scratchPath + ": " +
              std::strerror(errno);
        return false;
      }
      g.info.scratchOffset = scratchBytes;
      g.info.pass = pass;
      scratchBytes += g.bytes();
      g.status = GroupStatus::Done;
      std::vector<float>().swap(g.h);
    }
    return true;
  }

private:
  bool allocate(Group &g, std::string &err) {
    try {
      g.h.assign(static_cast<size_t>(g.info.k * g.info.k), 0.0f);
    } catch (const std::bad_alloc &) {
      err = "out of memory allocating the Hessian of " + g.info.weights[0];
      return false;
    }
    g.status = GroupStatus::Active;
    activeBytes_ += g.bytes();
    return true;
  }

  bool addStats(const std::string &name, int64_t expert, int64_t experts,
                const float *x, int64_t tokens, int64_t k) {
    auto [it, inserted] = stats.try_emplace(name);
    WeightStats &s = it->second;
    if (inserted) {
      statsOrder.push_back(name);
      s.k = k;
      s.sumSquares.assign(static_cast<size_t>(experts * k), 0.0);
      s.sum.assign(static_cast<size_t>(experts * k), 0.0);
      s.counts.assign(static_cast<size_t>(experts), 0.0);
    } else if (s.k != k ||
               static_cast<int64_t>(s.counts.size()) != experts) {
      error = "inconsistent input size for " + name;
      return false;
    }
    if (expert < 0 || expert >= experts) {
      error = "expert " + std::to_string(expert) + " of " + name +
              " is outside its " + std::to_string(experts) + " matrices";
      return false;
    }
    double *sumSquares = s.sumSquares.data() + expert * k;
    double *sum = s.sum.data() + expert * k;
    for (int64_t t = 0; t < tokens; ++t) {
      const float *row = x + t * k;
      for (int64_t c = 0; c < k; ++c) {
        double v = row[c];
        sumSquares[c] += v * v;
        sum[c] += v;
      }
    }
    for (int64_t c = 0; c < k; ++c)
      if (!std::isfinite(sumSquares[c])) {
        error = "non-finite activation entering " + name;
        return false;
      }
    s.counts[expert] += static_cast<double>(tokens);
    return true;
  }

  /// The input group of `name`. Groups are discovered in the first batch,
  /// where every weight is new: a weight reading the same activations as the
  /// one before it (address, shape and checksum) joins that one's group.
  size_t groupFor(const std::string &name, const float *x, int64_t tokens,
                  int64_t k) {
    auto it = groupOf.find(name);
    if (it != groupOf.end()) {
      lastX_ = nullptr; // later batches discover nothing
      return it->second;
    }
    uint64_t sum = checksum(x, tokens * k);
    bool sameInput = lastX_ == x && lastTokens_ == tokens && lastK_ == k &&
                     lastChecksum_ == sum && lastGroup_ < groups.size();
    size_t g;
    if (sameInput) {
      g = lastGroup_;
      groups[g].info.weights.push_back(name);
    } else {
      g = groups.size();
      Group group;
      group.info.weights.push_back(name);
      group.info.k = k;
      groups.push_back(std::move(group));
      // The first pass admits groups as it meets them.
      if (pass == 1 &&
          activeBytes_ + groups[g].bytes() <= options_.hessianBudget) {
        std::string err;
        if (!allocate(groups[g], err))
          error = err;
      }
    }
    groupOf.emplace(name, g);
    lastX_ = x;
    lastTokens_ = tokens;
    lastK_ = k;
    lastGroup_ = g;
    lastChecksum_ = sum;
    return g;
  }

  /// H += x^T x for one batch: the batch is transposed so that every H
  /// element is a dot product over tokens, computed by 4x2 register blocks
  /// on or above the diagonal. Each element belongs to one task, so the
  /// result does not depend on the thread count.
  void addHessian(Group &g, const float *x, int64_t tokens) {
    const int64_t k = g.info.k;
    const int64_t padded = (tokens + 3) / 4 * 4, rows = (k + 3) / 4 * 4;
    transposed_.assign(static_cast<size_t>(rows * padded), 0.0f);
    float *xt = transposed_.data();
    ex_.parallelFor((k + 63) / 64, [&](int64_t task, int) {
      int64_t c0 = task * 64, c1 = std::min(k, c0 + 64);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t c = c0; c < c1; ++c)
          xt[c * padded + t] = x[t * k + c];
    });
    float *h = g.h.data();
    ex_.parallelFor(rows / 4, [&](int64_t block, int) {
      const int64_t i0 = block * 4;
      for (int64_t j0 = i0; j0 < k; j0 += 2)
        dotBlock4x2(h, k, xt, padded, i0, j0);
    });
  }

  exec::Executor &ex_;
  const CalibrationOptions &options_;
  std::vector<float> transposed_;
  uint64_t activeBytes_ = 0;
  const float *lastX_ = nullptr;
  int64_t lastTokens_ = -1, lastK_ = -1;
  size_t lastGroup_ = SIZE_MAX;
  uint64_t lastChecksum_ = 0;
};

/// -log p(next) from a row of logits (max-shifted, double sums).
double negativeLogLikelihood(const float *logits, int64_t vocab, int32_t next) {
  float maxLogit = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += std::exp(static_cast<double>(logits[v] - maxLogit));
  return -(static_cast<double>(logits[next] - maxLogit) - std::log(sum));
}

} // namespace

bool runCalibration(exec::Executor &ex, const std::vector<int32_t> &tokens,
                    int32_t bos, const CalibrationOptions &options,
                    CalibrationResult &result, std::string &err) {
  auto started = std::chrono::steady_clock::now();
  result = CalibrationResult();
  const int64_t ctx = options.contextSize;
  if (ctx < 2) {
    err = "context size must be at least 2";
    return false;
  }
  if (ctx > ex.contextSize()) {
    err = "context size " + std::to_string(ctx) + " exceeds the executor's " +
          std::to_string(ex.contextSize());
    return false;
  }
  int64_t chunks = static_cast<int64_t>(tokens.size()) / ctx;
  if (chunks == 0) {
    err = "the calibration text has " + std::to_string(tokens.size()) +
          " tokens, fewer than one chunk of " + std::to_string(ctx);
    return false;
  }
  if (options.maxChunks > 0)
    chunks = std::min(chunks, options.maxChunks);
  if (options.hessians && options.scratchPath.empty()) {
    err = "Hessians need a scratch file";
    return false;
  }
  const int64_t vocab = ex.vocabSize();
  for (int64_t i = 0; i < chunks * ctx; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      err = "token id " + std::to_string(tokens[i]) + " at " +
            std::to_string(i) + " is outside the vocabulary";
      return false;
    }

  Collector collector(ex, options);
  ex.setObserver([&](const std::string &name, int64_t expert, int64_t experts,
                     const float *x, int64_t n, int64_t k) {
    collector.observe(name, expert, experts, x, n, k);
  });
  struct ObserverReset {
    exec::Executor &ex;
    ~ObserverReset() { ex.setObserver(nullptr); }
  } resetObserver{ex};

  FILE *scratch = nullptr;
  struct ScratchCloser {
    FILE *&f;
    ~ScratchCloser() {
      if (f)
        std::fclose(f);
    }
  } closeScratch{scratch};
  if (options.hessians) {
    scratch = std::fopen(options.scratchPath.c_str(), "wb");
    if (!scratch) {
      err =
          "cannot create " + options.scratchPath + ": " + std::strerror(errno);
      return false;
    }
  }
  uint64_t scratchBytes = 0;

  result.tokenCounts.assign(static_cast<size_t>(vocab), 0.0f);
  std::vector<double> tokenCounts(static_cast<size_t>(vocab), 0.0);
  double nll = 0;
  int64_t scored = 0;
  std::vector<float> logits;
  std::vector<int32_t> chunk(static_cast<size_t>(ctx));
  int64_t plannedPasses = 1;
  for (int64_t pass = 1;; ++pass) {
    collector.pass = pass;
    collector.collectStats = pass == 1;
    if (pass > 1) {
      if (!collector.admitDeferred(err))
        return false;
      ++plannedPasses;
    }
    for (int64_t c = 0; c < chunks; ++c) {
      std::copy(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx,
                chunk.begin());
      if (bos >= 0)
        chunk[0] = bos;
      // Every position's logits in the first pass: output.weight's inputs
      // are statistics too. Later passes skip them unless its Hessian is due.
      int64_t firstOutput =
          pass == 1 || collector.isActive(ex.model().outputWeight())
              ? 0
              : ctx;
      ex.reset();
      if (!ex.eval(chunk.data(), ctx, 0, logits, firstOutput, err))
        return false;
      if (!collector.error.empty()) {
        err = collector.error;
        return false;
      }
      if (pass == 1) {
        for (int32_t t : chunk)
          tokenCounts[t] += 1;
        const int64_t first = ctx / 2;
        std::vector<double> rowNll(static_cast<size_t>(ctx - 1 - first));
        ex.parallelFor(ctx - 1 - first, [&](int64_t i, int) {
          int64_t pos = first + i;
          rowNll[i] = negativeLogLikelihood(logits.data() + pos * vocab, vocab,
                                            chunk[pos + 1]);
        });
        for (double v : rowNll)
          nll += v;
        scored += ctx - 1 - first;
      }
      if (options.progress)
        options.progress(
            pass, collector.anyDeferred() ? plannedPasses + 1 : plannedPasses,
            c + 1, chunks);
    }
    if (options.hessians && !collector.flushActive(scratch, scratchBytes, err))
      return false;
    if (!options.hessians || !collector.anyDeferred()) {
      result.passes = pass;
      break;
    }
  }
  if (scratch && std::fflush(scratch) != 0) {
    err = "cannot write " + options.scratchPath + ": " + std::strerror(errno);
    return false;
  }

  // Statistics in the imatrix data model (float sums, token counts).
  for (const std::string &name : collector.statsOrder) {
    const WeightStats &s = collector.stats.at(name);
    IMatrixEntry e;
    e.sumSquares.assign(s.sumSquares.begin(), s.sumSquares.end());
    e.sum.assign(s.sum.begin(), s.sum.end());
    e.counts.assign(s.counts.begin(), s.counts.end());
    result.imatrix.entries.emplace(name, std::move(e));
  }
  result.imatrix.chunkCount = chunks;
  result.imatrix.chunkSize = ctx;
  for (int64_t v = 0; v < vocab; ++v)
    result.tokenCounts[v] = static_cast<float>(tokenCounts[v]);
  result.tokens.assign(tokens.begin(), tokens.begin() + chunks * ctx);
  result.chunks = chunks;
  result.contextSize = ctx;
  result.ppl = scored > 0 ? std::exp(nll / static_cast<double>(scored)) : 0;
  if (options.hessians) {
    for (const Group &g : collector.groups)
      result.hessians.push_back(g.info);
    result.hessianTokens = static_cast<uint64_t>(chunks * ctx);
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  return true;
}

bool sampleCalibrationTokens(
    exec::Executor &ex, const Tokenizer &tokenizer, int64_t count,
    int64_t contextSize, uint64_t seed,
    const std::function<void(int64_t, int64_t)> &progress,
    std::vector<int32_t> &tokens, std::string &err) {
  tokens.clear();
  if (count <= 0) {
    err = "the number of tokens to sample must be positive";
    return false;
  }
  if (contextSize < 2 || contextSize > ex.contextSize()) {
    err = "bad context size " + std::to_string(contextSize) + " for sampling";
    return false;
  }
  if (tokenizer.bos() < 0) {
    err = "the vocabulary has no BOS token to start sampling from";
    return false;
  }
  for (uint64_t sequence = 0; static_cast<int64_t>(tokens.size()) < count;
       ++sequence) {
    eval::GenerateOptions options;
    options.maxTokens = contextSize - 1;
    options.stopAtEndOfGeneration = false;
    // The model's own distribution, untruncated: calibration should see
    // what the model does, not only its most likely paths.
    options.sampling.temperature = 1.0f;
    options.sampling.topK = 0;
    options.sampling.topP = 1.0f;
    options.sampling.seed = seed + sequence;
    std::vector<int32_t> generated;
    if (!eval::generate(ex, tokenizer, {tokenizer.bos()}, options, generated,
                        nullptr, err))
      return false;
    tokens.push_back(tokenizer.bos());
    tokens.insert(tokens.end(), generated.begin(), generated.end());
    if (progress)
      progress(std::min<int64_t>(count, tokens.size()), count);
  }
  tokens.resize(static_cast<size_t>(count));
  return true;
}

//===----------------------------------------------------------------------===//
// State file
//===----------------------------------------------------------------------===//

bool writeCalibrationState(const std::string &path,
                           const CalibrationResult &result,
                           const std::string &modelFingerprint,
                           const std::string &scratchPath, std::string &err) {
  gguf::Writer writer(3);
  // An importance matrix that llama.cpp reads, with the state added.
  if (!result.imatrix.addToGGUF(writer, err)) {
    err = path + ": " + err;
    return false;
  }
  writer.set(kStateVersionKey, gguf::Value::makeU32(kStateVersion));
  writer.set(kStateModelKey, gguf::Value::makeString(modelFingerprint));
  if (!result.hessians.empty()) {
    writer.set(kHessianTokensKey, gguf::Value::makeU64(result.hessianTokens));
    for (const HessianGroup &g : result.hessians)
      for (const std::string &w : g.weights)
        writer.set(kHessianOfKeyPrefix + w,
                   gguf::Value::makeString(g.weights[0] + kHessianSuffix));
  }

  writer.addTensor(kStateTokenCountsTensor, {result.tokenCounts.size()},
                   kGGMLTypeF32, result.tokenCounts.data(),
                   result.tokenCounts.size() * sizeof(float));
  writer.addTensor(kStateTokensTensor, {result.tokens.size()}, kGGMLTypeI32,
                   result.tokens.data(),
                   result.tokens.size() * sizeof(int32_t));

  int scratchFd = -1;
  if (!result.hessians.empty()) {
    scratchFd = ::open(scratchPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (scratchFd < 0) {
      err = "cannot open " + scratchPath + ": " + std::strerror(errno);
      return false;
    }
  }
  for (const HessianGroup &g : result.hessians) {
    uint64_t k = static_cast<uint64_t>(g.k);
    uint64_t offset = g.scratchOffset;
    writer.addTensor(
        g.weights[0] + kHessianSuffix, {k, k}, kGGMLTypeF32,
        k * k * sizeof(float),
        [scratchFd, offset, &scratchPath](uint8_t *dst, uint64_t size,
                                          std::string &why) {
          uint64_t done = 0;
          while (done < size) {
            ssize_t got = ::pread(scratchFd, dst + done, size - done,
                                  static_cast<off_t>(offset + done));
            if (got <= 0) {
              why = "cannot read " + scratchPath +
                    (got < 0 ? std::string(": ") + std::strerror(errno)
                             : std::string(": truncated"));
              return false;
            }
            done += static_cast<uint64_t>(got);
          }
          return true;
        });
  }
  gguf::Error gerr;
  bool ok = writer.write(path, gerr);
  if (scratchFd >= 0)
    ::close(scratchFd);
  if (!ok) {
    err = gerr.message();
    return false;
  }
  return true;
}

bool readCalibrationState(const std::string &path, CalibrationState &state,
                          std::string &err) {
  state = CalibrationState();
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader = gguf::Reader::open(path, gerr);
  if (!reader) {
    err = gerr.message();
    return false;
  }
  auto fail = [&](const std::string &what) {
    err = path + ": " + what;
    return false;
  };
  const gguf::KeyValue *version = reader->find(kStateVersionKey);
  if (!version)
    return fail(std::string("not a lowbit calibration state file (no ") +
                kStateVersionKey + "; a plain imatrix goes to --imatrix)");
  if (!version->value.isInteger() ||
      version->value.asInt() != static_cast<int64_t>(kStateVersion))
    return fail("unsupported calibration state version");
  state.modelFingerprint = reader->getString(kStateModelKey);
  if (state.modelFingerprint.empty())
    return fail(std::string("missing ") + kStateModelKey);
  state.contextSize = reader->getInt("imatrix.chunk_size", 0);
  state.hasHessians = reader->find(kHessianTokensKey) != nullptr;
  if (const gguf::TensorInfo *t = reader->findTensor(kStateTokensTensor)) {
    if (t->ggmlType != kGGMLTypeI32 || t->dims.size() != 1)
      return fail(std::string("tensor ") + kStateTokensTensor +
                  " is not a vector of I32");
    state.tokens.resize(static_cast<size_t>(t->dims[0]));
    std::memcpy(state.tokens.data(), reader->tensorData(*t),
                state.tokens.size() * sizeof(int32_t));
  }
  if (const gguf::TensorInfo *t = reader->findTensor(kStateTokenCountsTensor)) {
    if (t->ggmlType != kGGMLTypeF32 || t->dims.size() != 1)
      return fail(std::string("tensor ") + kStateTokenCountsTensor +
                  " is not a vector of F32");
    state.tokenCounts.resize(static_cast<size_t>(t->dims[0]));
    std::memcpy(state.tokenCounts.data(), reader->tensorData(*t),
                state.tokenCounts.size() * sizeof(float));
    for (float v : state.tokenCounts)
      if (!std::isfinite(v) || v < 0)
        return fail(std::string("tensor ") + kStateTokenCountsTensor +
                    " holds a negative or non-finite count");
  }
  return IMatrix::loadFromMemory(reader->base(), reader->fileSize(), path,
                                 state.imatrix, err);
}

} // namespace lowbit::calib
