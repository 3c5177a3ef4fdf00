//===- Sensitivity.cpp - Predicted damage of every candidate format -------===//
#include "lowbit/Analysis/Sensitivity.h"
#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Support/MappedFile.h"

#include "llvm/ADT/StringSet.h"
#include "LowBit/Exec/IRModel.h"
#include "lowbit/Analysis/SensitivityState.h"
#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/Calibration/Hessian.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/Exec/Executor.h"
#include "lowbit/Quant/GPTQ.h"
#include "lowbit/Quant/Presets.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include "mlir/IR/Builders.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITSENSITIVITY
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace analysis = ::lowbit::analysis;
namespace calib = ::lowbit::calib;
namespace exec = ::lowbit::exec;
namespace formats = ::lowbit::formats;

namespace {

/// Rows decoded to f32 at a time (bounds the scratch memory).
constexpr int64_t kRowsPerChunk = 256;

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

/// Fingerprint of the statistics a run weighs errors with (FNV-1a over the
/// values), so saved results computed from other statistics are not reused.
class StatisticsHash {
public:
  void add(const std::string &s) { bytes(s.data(), s.size()); }
  void add(const std::vector<float> &v) {
    uint64_t n = v.size();
    bytes(&n, sizeof(n));
    bytes(v.data(), v.size() * sizeof(float));
  }
  std::string hex() const {
    char text[17];
    std::snprintf(text, sizeof(text), "%016llx",
                  static_cast<unsigned long long>(h_));
    return text;
  }

private:
  void bytes(const void *data, size_t n) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < n; ++i)
      h_ = (h_ ^ p[i]) * 1099511628211ull;
  }
  uint64_t h_ = 1469598103934665603ull;
};

/// What @forward says about each weight's input, for an estimate of E[x^2]
/// when the imatrix has no entry: the RMSNorm whose output a matmul reads
/// (RMSNorm makes the mean square of its output over channels 1 before the
/// gain, so E[x_c^2] ~ gain_c^2), and which weights are embedding tables.
struct WeightInputs {
  llvm::StringMap<std::string> normOf;
  llvm::StringSet<> embeddingTables;
  /// Stacked expert weights: experts chosen per token (top_k).
  llvm::StringMap<int64_t> expertsPerToken;
};
WeightInputs weightInputs(ModuleOp module) {
  WeightInputs out;
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return out;
  forward.walk([&](Operation *op) {
    if (auto e = dyn_cast<EmbeddingOp>(op)) {
      if (auto table = e.getTable().getDefiningOp<WeightOp>())
        out.embeddingTables.insert(table.getName());
    } else if (auto m = dyn_cast<MatmulOp>(op)) {
      auto weight = m.getWeight().getDefiningOp<WeightOp>();
      auto norm = m.getInput().getDefiningOp<RMSNormOp>();
      auto gain = norm ? norm.getWeight().getDefiningOp<WeightOp>() : WeightOp();
      if (weight && gain)
        out.normOf[weight.getName()] = gain.getName().str();
    } else if (auto moe = dyn_cast<MoEFFNOp>(op)) {
      for (Value v : {moe.getGateExps(), moe.getUpExps(), moe.getDownExps()})
        if (auto weight = v.getDefiningOp<WeightOp>())
          out.expertsPerToken[weight.getName()] = moe.getTopK();
    }
  });
  return out;
}

/// KL divergence of the model with one weight swapped, against a baseline
/// computed once on the same tokens.
class KLDMeasure {
public:
  bool init(ModuleOp module, const std::vector<int32_t> &tokens,
            int64_t context, int64_t chunks, int32_t bos, int threads,
            std::string &err) {
    if (!buildModelDesc(module, desc_, err))
      return false;
    context_ = context;
    chunks_ = chunks;
    bos_ = bos;
    threads_ = threads;
    tokens_ = tokens;
    first_ = context / 2;
    rowsPerChunk_ = context - 1 - first_;
    if (rowsPerChunk_ <= 0) {
      err = "context " + std::to_string(context) + " is too small";
      return false;
    }
    std::unique_ptr<exec::Executor> ex = makeExecutor(desc_, err);
    if (!ex)
      return false;
    vocab_ = ex->vocabSize();
    baseline_.resize(static_cast<size_t>(chunks_ * rowsPerChunk_ * vocab_));
    return run(
        *ex,
        [&](int64_t row, const float *logProbs) {
          std::memcpy(baseline_.data() + row * vocab_, logProbs,
                      vocab_ * sizeof(float));
          return 0.0;
        },
        nullptr, err);
  }

  /// Mean KL(base || swapped) over the scored positions.
  bool measure(const std::string &weight, formats::Format format,
               const uint8_t *bytes, double &kld, std::string &err) {
    exec::ModelDesc swapped = desc_;
    exec::WeightRef &ref = swapped.weights.at(weight);
    ref.format = format;
    ref.rowBytes = formats::rowBytes(formats::info(format),
                                     static_cast<uint64_t>(ref.cols));
    ref.data = bytes;
    std::unique_ptr<exec::Executor> ex = makeExecutor(swapped, err);
    if (!ex)
      return false;
    double sum = 0;
    if (!run(
            *ex,
            [&](int64_t row, const float *logProbs) {
              const float *base = baseline_.data() + row * vocab_;
              double kl = 0;
              for (int64_t v = 0; v < vocab_; ++v) {
                double p = std::exp(double(base[v]));
                kl += p * (double(base[v]) - double(logProbs[v]));
              }
              return std::max(0.0, kl);
            },
            &sum, err))
      return false;
    kld = sum / double(positions());
    return true;
  }

  int64_t positions() const { return chunks_ * rowsPerChunk_; }

private:
  std::unique_ptr<exec::Executor> makeExecutor(const exec::ModelDesc &desc,
                                               std::string &err) {
    exec::ExecOptions options;
    options.threads = threads_;
    options.contextSize = context_;
    options.batchSize = context_;
    return exec::Executor::create(desc, options, err);
  }

  /// Evaluates every chunk and calls `perRow(row, logProbs)` for each scored
  /// position (in parallel); the results are summed into `*total`.
  template <typename Fn>
  bool run(exec::Executor &ex, Fn perRow, double *total, std::string &err) {
    std::vector<int32_t> chunk(static_cast<size_t>(context_));
    std::vector<float> logits;
    std::vector<double> rowValues(static_cast<size_t>(rowsPerChunk_));
    std::vector<std::vector<float>> scratch(static_cast<size_t>(ex.threads()),
                                            std::vector<float>(vocab_));
    for (int64_t c = 0; c < chunks_; ++c) {
      std::copy(tokens_.begin() + c * context_,
                tokens_.begin() + (c + 1) * context_, chunk.begin());
      if (bos_ >= 0)
        chunk[0] = bos_;
      ex.reset();
      if (!ex.eval(chunk.data(), context_, 0, logits, first_, err))
        return false;
      ex.parallelFor(rowsPerChunk_, [&](int64_t i, int thread) {
        const float *row = logits.data() + i * vocab_;
        float *lp = scratch[thread].data();
        float maxLogit = *std::max_element(row, row + vocab_);
        double sum = 0;
        for (int64_t v = 0; v < vocab_; ++v)
          sum += std::exp(double(row[v] - maxLogit));
        float logSum = static_cast<float>(std::log(sum));
        for (int64_t v = 0; v < vocab_; ++v)
          lp[v] = row[v] - maxLogit - logSum;
        rowValues[i] = perRow(c * rowsPerChunk_ + i, lp);
      });
      if (total)
        for (double v : rowValues)
          *total += v;
    }
    return true;
  }

  exec::ModelDesc desc_;
  std::vector<int32_t> tokens_;
  std::vector<float> baseline_;
  int64_t context_ = 0, chunks_ = 0, first_ = 0, rowsPerChunk_ = 0, vocab_ = 0;
  int32_t bos_ = -1;
  int threads_ = 0;
};

struct TensorWork {
  GlobalWeightOp op;
  std::string name;
  int64_t rows = 0, cols = 0;
  analysis::DamageWeights weights;
  /// A stacked 3-D expert weight: per expert, its statistics and the share
  /// of tokens routed to it (the expert's damage per routed token times
  /// how often a token is routed there is its damage per token).
  int64_t rowsPerMatrix = 0;
  std::vector<analysis::DamageWeights> expertWeights;
  std::vector<double> expertShares;
  std::vector<formats::Format> candidates;

  int64_t matrices() const {
    return rowsPerMatrix > 0 ? rows / rowsPerMatrix : 1;
  }
  const analysis::DamageWeights &weightsOf(int64_t matrix) const {
    return expertWeights.empty() ? weights : expertWeights[matrix];
  }
};

struct SensitivityPass
    : public mlir::lowbit::impl::LowBitSensitivityBase<SensitivityPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  bool expertWeights(TensorWork &t, int64_t expertsPerToken, std::string &err);
  bool loadStatistics(ModuleOp module, const std::string &fingerprint,
                      std::string &err);
  bool decodeVector(ModuleOp module, const std::string &name,
                    std::vector<float> &out);
  bool kldTokens(ModuleOp module, std::vector<int32_t> &tokens,
                 int64_t &context, int32_t &bos, std::string &err);

  std::string statisticsPath;
  bool haveStatistics = false;
  bool isState = false;
  calib::CalibrationState calibState; // imatrix in calibState.imatrix
};

bool SensitivityPass::loadStatistics(ModuleOp module,
                                     const std::string &fingerprint,
                                     std::string &err) {
  statisticsPath = statistics;
  if (statisticsPath.empty())
    if (auto info =
            module->getAttrOfType<DictionaryAttr>(kCalibrationAttrName)) {
      if (auto s = info.getAs<StringAttr>("state"))
        statisticsPath = s.getValue().str();
      else if (auto s = info.getAs<StringAttr>("imatrix"))
        statisticsPath = s.getValue().str();
    }
  if (statisticsPath.empty())
    return true;
  // A calibration state says whose it is; a plain imatrix does not.
  std::string why;
  if (calib::readCalibrationState(statisticsPath, calibState, why)) {
    isState = true;
    if (calibState.modelFingerprint != fingerprint) {
      err = statisticsPath +
            ": the calibration state was written for another model "
            "(fingerprint " +
            calibState.modelFingerprint + ", this model is " + fingerprint +
            ")";
      return false;
    }
  } else {
    calibState = calib::CalibrationState();
    if (!calib::IMatrix::load(statisticsPath, calibState.imatrix, err))
      return false;
  }
  haveStatistics = true;
  return true;
}

bool SensitivityPass::decodeVector(ModuleOp module, const std::string &name,
                                   std::vector<float> &out) {
  auto op = module.lookupSymbol<GlobalWeightOp>(name);
  if (!op)
    return false;
  QTensorType type = op.getWeightType();
  if (type.getShape().size() != 1 || type.getLayout())
    return false;
  std::string why;
  const uint8_t *bytes = getWeightBytes(op, why);
  if (!bytes)
    return false;
  out.resize(static_cast<size_t>(type.getShape()[0]));
  formats::dequantizeRows(type.getFormat().getFormat(), bytes, out.data(), 1,
                          static_cast<int64_t>(out.size()), 1);
  return true;
}

bool SensitivityPass::kldTokens(ModuleOp module, std::vector<int32_t> &tokens,
                                int64_t &context, int32_t &bos,
                                std::string &err) {
  exec::ModelDesc desc;
  if (!buildModelDesc(module, desc, err))
    return false;
  std::unique_ptr<::lowbit::Tokenizer> tokenizer =
      ::lowbit::Tokenizer::create(desc.metadata, err);
  if (!tokenizer)
    return false;
  bos = tokenizer->bos();
  if (!calibText.empty()) {
    std::string text;
    if (!::lowbit::readWholeFile(calibText, text, err, "the calibration text"))
      return false;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      err = calibText + ": the calibration text is empty";
      return false;
    }
    tokens = tokenizer->tokenize(text, true);
    context = ctx > 0
                  ? ctx
                  : std::min<int64_t>(
                        512, desc.contextLength > 0 ? desc.contextLength : 512);
    return true;
  }
  if (isState && !calibState.tokens.empty()) {
    tokens = calibState.tokens;
    context = ctx > 0 ? ctx : calibState.contextSize;
    return true;
  }
  err = "measure=" + measure +
        " needs calibration tokens: statistics=STATE from "
        "lowbit-calibrate, or calib=FILE";
  return false;
}

/// Each expert's statistics and routing share. Per-expert token counts
/// (lowbit's calibration, llama.cpp's GGUF imatrix) give the share of tokens
/// routed to the expert, relative to the tokens a 2-D weight saw; an entry
/// with one count for all experts (a legacy .dat) or none gives every
/// expert top_k / experts.
bool SensitivityPass::expertWeights(TensorWork &t, int64_t expertsPerToken,
                                    std::string &err) {
  const calib::IMatrix &im = calibState.imatrix;
  const int64_t experts = t.matrices();
  double tokens = 0;
  for (const auto &entry : im.entries)
    if (entry.second.counts.size() == 1)
      tokens = std::max<double>(tokens, entry.second.counts[0]);
  auto found = im.entries.find(t.name);
  const bool perExpertCounts =
      found != im.entries.end() &&
      static_cast<int64_t>(found->second.counts.size()) == experts &&
      tokens > 0;
  const double uniformShare =
      static_cast<double>(std::max<int64_t>(expertsPerToken, 1)) /
      static_cast<double>(experts);
  t.expertWeights.resize(static_cast<size_t>(experts));
  t.expertShares.assign(static_cast<size_t>(experts), uniformShare);
  for (int64_t m = 0; m < experts; ++m) {
    analysis::DamageWeights &w = t.expertWeights[m];
    if (found == im.entries.end()) {
      // No statistics: every column counts the same, and the quantizer
      // will have no importance either.
      w.meanSquares.assign(static_cast<size_t>(t.cols), 1.0f);
      w.importanceInEncoder = false;
      continue;
    }
    w.meanSquares = im.importance(t.name, m, t.cols);
    if (static_cast<int64_t>(w.meanSquares.size()) != t.cols) {
      err = statisticsPath + ": the statistics of '" + t.name +
            "' do not hold " + std::to_string(experts) + " matrices of " +
            std::to_string(t.cols) +
            " columns; were they computed for another model?";
      return false;
    }
    w.means = im.meanActivation(t.name, m);
    if (perExpertCounts)
      t.expertShares[m] = im.tokenCount(t.name, m) / tokens;
  }
  return true;
}

void SensitivityPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto fail = [&](const std::string &message) {
    module.emitError() << message;
    signalPassFailure();
  };
  const bool measureKLD = measure == "kld", measureGain = measure == "gain";
  if (!measureKLD && !measureGain && measure != "wmse")
    return fail("measure must be wmse, gain or kld, not '" + measure + "'");

  std::vector<formats::Format> candidates;
  if (candidateFormats.empty()) {
    // Without statistics, formats GGML encodes only with an importance
    // matrix are no candidates (lowbit-quantize would refuse them).
    for (formats::Format f : analysis::defaultCandidateFormats())
      if (!noImportance || !formats::requiresImportance(f))
        candidates.push_back(f);
  } else {
    for (const std::string &name : candidateFormats) {
      const formats::FormatInfo *f = formats::findByName(name);
      if (!f)
        return fail("unknown format '" + name + "' in formats");
      // Formats GGUF cannot hold are candidates for models that go back
      // out as ONNX (lowbit.source = "onnx").
      auto source = getOperation()->getAttrOfType<StringAttr>("lowbit.source");
      bool ggufOnly = !source || source.getValue() != "onnx";
      if ((ggufOnly && f->ggmlType < 0) || !formats::hasCodec(f->format))
        return fail("format '" + name + "' cannot be a candidate (" +
                    (ggufOnly && f->ggmlType < 0 ? "GGUF cannot hold it"
                                                 : "no codec") +
                    ")");
      if (const char *why = ::lowbit::quant::weightFormatProblem(f->format))
        return fail("format '" + name + "' cannot be a candidate: " + why);
      if (noImportance && formats::requiresImportance(f->format))
        return fail("format '" + name +
                    "' has no plain encoding in GGML: it needs the "
                    "statistics no-importance leaves out");
      candidates.push_back(f->format);
    }
  }

  std::string err;
  std::string fingerprint = modelFingerprint(module, err);
  if (fingerprint.empty())
    return fail(err);
  if (!noImportance) {
    if (!loadStatistics(module, fingerprint, err))
      return fail(err);
    if (!haveStatistics)
      return fail("no activation statistics: pass statistics=FILE (a state "
                  "or imatrix from lowbit-calibrate), run lowbit-calibrate "
                  "first, or set no-importance=true");
  }

  // What every tensor's error is weighed with.
  std::vector<TensorWork> work;
  StatisticsHash statsHash;
  statsHash.add(noImportance ? "plain" : "weighted");
  const WeightInputs inputs = weightInputs(module);
  for (GlobalWeightOp op : module.getOps<GlobalWeightOp>()) {
    QTensorType type = op.getWeightType();
    std::string name = ggufTensorName(op);
    const size_t rank = type.getShape().size();
    if (!::lowbit::quant::isQuantizable(getWeightTensorRole(op), rank) || rank < 2 || rank > 3 ||
        type.getLayout())
      continue;
    TensorWork t;
    t.op = op;
    t.name = name;
    t.rows = type.getNumRows();
    t.cols = type.getRowLength();
    if (rank == 3)
      t.rowsPerMatrix = type.getShape()[1];
    for (formats::Format f : candidates)
      if (t.cols % formats::info(f).blockSize == 0)
        t.candidates.push_back(f);
    if (t.candidates.empty())
      continue; // nothing fits; lowbit-allocate-bits leaves it as it is
    bool importanceEntry = false;
    if (!noImportance && rank == 3) {
      if (!expertWeights(t, inputs.expertsPerToken.lookup(op.getSymName()),
                         err))
        return fail(err);
    } else if (!noImportance) {
      const calib::IMatrix &im = calibState.imatrix;
      t.weights.meanSquares = im.importance(name);
      importanceEntry = !t.weights.meanSquares.empty();
      if (importanceEntry) {
        if (static_cast<int64_t>(t.weights.meanSquares.size()) != t.cols)
          return fail(statisticsPath + ": the statistics of '" + name +
                      "' have " + std::to_string(t.weights.meanSquares.size()) +
                      " columns but the weight has " + std::to_string(t.cols) +
                      "; were they computed for another model?");
        t.weights.means = im.meanActivation(name);
      } else if (inputs.embeddingTables.contains(t.op.getSymName())) {
        // Looked up, not multiplied: rows weigh as often as they occur.
        std::vector<float> &p = t.weights.rowProbabilities;
        double total = 0;
        for (float c : calibState.tokenCounts)
          total += c;
        if (static_cast<int64_t>(calibState.tokenCounts.size()) == t.rows &&
            total > 0) {
          p.resize(static_cast<size_t>(t.rows));
          for (int64_t r = 0; r < t.rows; ++r)
            p[r] = static_cast<float>(calibState.tokenCounts[r] / total);
        } else {
          p.assign(static_cast<size_t>(t.rows), 1.0f / float(t.rows));
        }
      } else {
        std::vector<float> gain;
        std::string norm = inputs.normOf.lookup(t.op.getSymName());
        if (!norm.empty() && decodeVector(module, norm, gain) &&
            static_cast<int64_t>(gain.size()) == t.cols) {
          for (float &g : gain)
            g *= g;
          t.weights.meanSquares = std::move(gain);
        } else {
          t.weights.meanSquares.assign(static_cast<size_t>(t.cols), 1.0f);
        }
        t.weights.importanceInEncoder = false;
      }
    }
    // lowbit-quantize will have no importance for this tensor (no
    // statistics, or none recorded for it, e.g. an embedding table):
    // formats GGML encodes only with one are no candidates.
    // (A dense weight has an entry exactly when meanSquares came from the
    // imatrix: the embedding and norm-gain fall-backs are not passed to
    // the encoder.)
    const bool quantizedWithImportance =
        !noImportance && (rank == 3 ? !t.expertWeights.empty()
                                    : importanceEntry);
    if (!quantizedWithImportance)
      llvm::erase_if(t.candidates, [](formats::Format f) {
        return formats::requiresImportance(f);
      });
    if (t.candidates.empty())
      continue;
    statsHash.add(name);
    statsHash.add(t.weights.meanSquares);
    statsHash.add(t.weights.means);
    statsHash.add(t.weights.rowProbabilities);
    for (int64_t m = 0; m < static_cast<int64_t>(t.expertWeights.size());
         ++m) {
      statsHash.add(t.expertWeights[m].meanSquares);
      statsHash.add(t.expertWeights[m].means);
      statsHash.add(std::vector<float>{static_cast<float>(t.expertShares[m])});
    }
    work.push_back(std::move(t));
  }

  // Saved results.
  analysis::SensitivityState saved;
  if (!state.empty()) {
    bool existed = false;
    if (!analysis::SensitivityState::load(state, saved, existed, err))
      return fail(err);
    if (existed && saved.model != fingerprint)
      return fail(state +
                  ": the sensitivity state was written for another "
                  "model (fingerprint " +
                  saved.model + ", this model is " + fingerprint + ")");
    if (existed && saved.statistics != statsHash.hex()) {
      module.emitWarning() << state
                           << ": computed from other activation statistics; "
                              "its results are recomputed";
      saved.tensors.clear();
    }
  }
  saved.model = fingerprint;
  saved.statistics = statsHash.hex();

  if (method != "gptq" && method != "rtn")
    return fail("method must be rtn or gptq, not '" + method + "'");
  // Only measure=kld: gain scales the predicted (plain-rounding) damage of
  // every format by one measurement, and a GPTQ measurement there would
  // scale an rtn-shaped prediction (measured: worse allocations).
  const bool useGPTQ = method == "gptq" && measureKLD;
  std::unique_ptr<::lowbit::calib::HessianStore> hessianStore;
  if (useGPTQ) {
    const std::string path = hessians.empty() ? statistics : hessians;
    if (path.empty())
      return fail("method=gptq needs a calibration state with Hessians "
                  "(hessians=FILE)");
    hessianStore = ::lowbit::calib::HessianStore::open(path, err);
    if (!hessianStore)
      return fail(err);
  }

  std::unique_ptr<KLDMeasure> kld;
  if (measureKLD || measureGain) {
    std::vector<int32_t> tokens;
    int64_t context = 0;
    int32_t bos = -1;
    if (!kldTokens(module, tokens, context, bos, err))
      return fail(err);
    int64_t chunks = std::min<int64_t>(
        kldChunks,
        context > 0 ? static_cast<int64_t>(tokens.size()) / context : 0);
    if (context < 4 || chunks <= 0)
      return fail("measure=" + measure + ": " + std::to_string(tokens.size()) +
                  " calibration tokens make no chunk of " +
                  std::to_string(context));
    kld = std::make_unique<KLDMeasure>();
    if (!kld->init(module, tokens, context, chunks, bos, threads, err))
      return fail("measure=" + measure + ": " + err);
  }

  MLIRContext *context = module.getContext();
  Builder b(context);
  int64_t computed = 0, reused = 0;
  double seconds = 0, kldSeconds = 0;
  size_t done = 0;
  const char *step = kld ? "kld" : "sensitivity";
  for (TensorWork &t : work) {
    reportAnalysisProgress(step, done, work.size(), t.name);
    // measure=gain measures one format per tensor: q3_k, else q4_0 (rows
    // of 32), else the smallest candidate; large enough an error to stand
    // well above the measurement's noise, small enough to stay in the
    // regime where KL divergence grows like the squared error.
    formats::Format reference = t.candidates.front();
    for (formats::Format f : {formats::Format::Q4_0, formats::Format::Q3_K})
      if (std::find(t.candidates.begin(), t.candidates.end(), f) !=
          t.candidates.end())
        reference = f;
    // The KL divergence of the method in use (see SensitivityEntry).
    auto measuredKLD = [&](const analysis::SensitivityEntry &e) {
      return useGPTQ ? e.kldGPTQ : e.kld;
    };
    auto measuredTokens = [&](const analysis::SensitivityEntry &e) {
      return useGPTQ ? e.kldGPTQTokens : e.kldTokens;
    };
    auto wantsKLD = [&](formats::Format f) {
      return measureKLD || (measureGain && f == reference);
    };
    // What is missing from the saved results.
    std::vector<formats::Format> wmseTodo, kldTodo;
    for (formats::Format f : t.candidates) {
      const analysis::SensitivityEntry *e =
          saved.find(t.name, formats::info(f).name);
      bool needWMSE = !e;
      bool needKLD = wantsKLD(f) && !(e && measuredKLD(*e) >= 0 &&
                                      measuredTokens(*e) == kld->positions());
      if (needWMSE)
        wmseTodo.push_back(f);
      if (needKLD)
        kldTodo.push_back(f);
      if (needWMSE || needKLD)
        ++computed;
      else
        ++reused;
    }

    QTensorType type = t.op.getWeightType();
    formats::Format source = type.getFormat().getFormat();
    const uint64_t sourceRowBytes =
        formats::rowBytes(formats::info(source), static_cast<uint64_t>(t.cols));
    const uint8_t *bytes = nullptr;
    if (!wmseTodo.empty() || !kldTodo.empty()) {
      bytes = getWeightBytes(t.op, err);
      if (!bytes)
        return fail("tensor '" + t.name + "': " + err);
    }
    // Rows [row, row + count) as f32 (decoded into `scratch` if needed).
    std::vector<float> scratch;
    auto rowsAsFloat = [&](int64_t row, int64_t count) -> const float * {
      if (source == formats::Format::F32)
        return reinterpret_cast<const float *>(bytes + row * sourceRowBytes);
      scratch.resize(static_cast<size_t>(count * t.cols));
      formats::dequantizeRows(source, bytes + row * sourceRowBytes,
                              scratch.data(), count, t.cols, threads);
      return scratch.data();
    };

    // Rows in chunks that stay inside one matrix (an expert of a 3-D
    // weight has its own statistics).
    const int64_t rowsPerMatrix = t.rowsPerMatrix > 0 ? t.rowsPerMatrix : t.rows;
    auto chunkRows = [&](int64_t row) {
      return std::min(kRowsPerChunk, (row / rowsPerMatrix + 1) * rowsPerMatrix -
                                         row);
    };
    if (!wmseTodo.empty()) {
      std::vector<analysis::DamageTerms> terms(wmseTodo.size());
      std::vector<double> spent(wmseTodo.size(), 0.0);
      for (int64_t row = 0, count = 0; row < t.rows; row += count) {
        count = chunkRows(row);
        const int64_t matrix = row / rowsPerMatrix;
        const float *values = rowsAsFloat(row, count);
        for (size_t i = 0; i < wmseTodo.size(); ++i) {
          auto start = std::chrono::steady_clock::now();
          analysis::DamageTerms chunk;
          if (!analysis::addQuantizationDamage(wmseTodo[i], values, count,
                                               t.cols, row, t.weightsOf(matrix),
                                               threads, chunk, err))
            return fail("tensor '" + t.name + "' as " +
                        formats::info(wmseTodo[i]).name + ": " + err +
                        " (rows from " + std::to_string(row) + ")");
          const double share =
              t.expertShares.empty() ? 1.0 : t.expertShares[matrix];
          terms[i].weighted += share * chunk.weighted;
          terms[i].bias += share * chunk.bias;
          terms[i].plain += chunk.plain;
          terms[i].norm += chunk.norm;
          spent[i] += secondsSince(start);
        }
      }
      for (size_t i = 0; i < wmseTodo.size(); ++i) {
        analysis::SensitivityEntry &e =
            saved.tensors[t.name][formats::info(wmseTodo[i]).name];
        e.weighted = terms[i].weighted;
        e.bias = terms[i].bias;
        e.plain = terms[i].plain;
        e.norm = terms[i].norm;
        e.damage = noImportance ? terms[i].plain : terms[i].damage();
        e.seconds = spent[i];
        seconds += spent[i];
      }
    }

    for (formats::Format f : kldTodo) {
      const formats::FormatInfo &fi = formats::info(f);
      reportAnalysisProgress(step, done, work.size(), t.name + " " + fi.name);
      auto start = std::chrono::steady_clock::now();
      // The whole tensor in the candidate format, for the executor.
      const uint64_t rowBytes =
          formats::rowBytes(fi, static_cast<uint64_t>(t.cols));
      std::vector<uint8_t> encoded(static_cast<size_t>(rowBytes * t.rows));
      auto importanceOf = [&](int64_t matrix) -> const float * {
        const analysis::DamageWeights &w = t.weightsOf(matrix);
        return w.importanceInEncoder && !w.meanSquares.empty()
                   ? w.meanSquares.data()
                   : nullptr;
      };
      // GPTQ with each matrix's Hessian (an expert of a 3-D weight has its
      // own; one no calibration token reached gets H = I).
      const int64_t matrices = t.matrices();
      bool gptqHere = false;
      for (int64_t m = 0;
           useGPTQ && fi.kind != formats::FormatKind::Float && m < matrices; ++m)
        gptqHere |= hessianStore->has(
            calib::hessianMatrixName(t.name, m, matrices));
      if (gptqHere) {
        ::lowbit::quant::GPTQOptions options;
        options.threads = threads;
        for (int64_t m = 0; m < matrices; ++m) {
          const std::string matrix =
              calib::hessianMatrixName(t.name, m, matrices);
          std::vector<float> h;
          int64_t k = t.cols;
          if (!hessianStore->has(matrix))
            h = calib::identityHessian(k);
          else if (!hessianStore->get(matrix, h, k, err))
            return fail("tensor '" + t.name + "': " + err);
          if (k != t.cols)
            return fail("the Hessian of '" + matrix + "' is " +
                        std::to_string(k) + " x " + std::to_string(k) +
                        " but its rows have " + std::to_string(t.cols) +
                        " columns");
          const int64_t first = m * rowsPerMatrix;
          auto load = [&](int64_t row, int64_t count, float *dst,
                          std::string &) {
            const uint8_t *src = bytes + (first + row) * sourceRowBytes;
            if (source == formats::Format::F32)
              std::memcpy(dst, src, count * t.cols * sizeof(float));
            else
              formats::dequantizeRows(source, src, dst, count, t.cols, 1);
            return true;
          };
          if (!::lowbit::quant::quantizeGPTQ(
                  f, rowsPerMatrix, t.cols, load, h.data(), options,
                  encoded.data() + first * rowBytes, err))
            return fail("tensor '" + t.name + "' as " + fi.name + ": " + err);
        }
      } else {
        for (int64_t row = 0, count = 0; row < t.rows; row += count) {
          count = chunkRows(row);
          std::string why;
          if (!formats::quantizeRows(f, rowsAsFloat(row, count),
                                     encoded.data() + row * rowBytes, count,
                                     t.cols, importanceOf(row / rowsPerMatrix),
                                     threads, &why))
            return fail("tensor '" + t.name + "': " + why);
        }
      }
      double value = 0;
      if (!kld->measure(t.op.getSymName().str(), f, encoded.data(), value, err))
        return fail("measure=" + measure + ", tensor '" + t.name + "': " + err);
      analysis::SensitivityEntry &e = saved.tensors[t.name][fi.name];
      (useGPTQ ? e.kldGPTQ : e.kld) = value;
      (useGPTQ ? e.kldGPTQTokens : e.kldTokens) = kld->positions();
      (useGPTQ ? e.kldGPTQSeconds : e.kldSeconds) = secondsSince(start);
      kldSeconds += secondsSince(start);
    }
    // After every tensor: an interruption loses at most this one.
    if ((!wmseTodo.empty() || !kldTodo.empty()) && !state.empty() &&
        !saved.save(state, err))
      return fail(err);

    // The damage the allocator sees.
    double gain = 1;
    if (measureGain) {
      const analysis::SensitivityEntry *ref =
          saved.find(t.name, formats::info(reference).name);
      gain = ref->damage > 0 ? std::max(0.0, measuredKLD(*ref)) / ref->damage
                             : 0.0;
    }
    SmallVector<NamedAttribute> damages;
    for (formats::Format f : t.candidates) {
      const analysis::SensitivityEntry *e =
          saved.find(t.name, formats::info(f).name);
      double value = measureKLD ? measuredKLD(*e) : gain * e->damage;
      damages.push_back(
          b.getNamedAttr(formats::info(f).name, b.getF64FloatAttr(value)));
    }
    t.op->setAttr(kSensitivityAttrName, b.getDictionaryAttr(damages));
    ++done;
  }
  reportAnalysisProgress(step, done, work.size(), "");
  if (!state.empty() && computed == 0 && !work.empty()) {
    // Nothing new, but record the file as this model's even when it was
    // created empty.
    if (!saved.save(state, err))
      return fail(err);
  }
  module->setAttr(
      kSensitivityReportAttrName,
      b.getDictionaryAttr({
          b.getNamedAttr("measure", b.getStringAttr(measure)),
          b.getNamedAttr("computed", b.getI64IntegerAttr(computed)),
          b.getNamedAttr("reused", b.getI64IntegerAttr(reused)),
          b.getNamedAttr("seconds", b.getF64FloatAttr(seconds)),
          b.getNamedAttr("kld_seconds", b.getF64FloatAttr(kldSeconds)),
          b.getNamedAttr("kld_positions",
                         b.getI64IntegerAttr(kld ? kld->positions() : 0)),
      }));
}

} // namespace
