//===- Calibrate.cpp - Activation statistics from calibration text --------===//
#include "LowBit/Exec/IRModel.h"
#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Analysis/BitAllocation.h"
#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/Exec/Executor.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Support/TemporaryFiles.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include "mlir/IR/Builders.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unistd.h>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITCALIBRATE
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace calib = ::lowbit::calib;
namespace exec = ::lowbit::exec;

namespace {

std::mutex progressMutex;
AnalysisProgressFn progressCallback;

/// Default chunk size: llama.cpp's imatrix default, within the model's context.
constexpr int64_t kDefaultContext = 512;

bool readTextFile(const std::string &path, std::string &text,
                  std::string &err) {
  return ::lowbit::readWholeFile(path, text, err, "the calibration text");
}

struct CalibratePass
    : public mlir::lowbit::impl::LowBitCalibrateBase<CalibratePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](const std::string &message) {
      module.emitError() << message;
      signalPassFailure();
    };
    if (calibText.empty())
      return fail("lowbit-calibrate needs calib=FILE or calib=self");
    if (imatrixOut.empty() && state.empty())
      return fail("lowbit-calibrate needs imatrix-out=FILE and/or state=FILE "
                  "(somewhere to write the statistics)");
    uint64_t budget = 0;
    std::string err;
    if (!::lowbit::analysis::parseByteSize(hessianBudget, budget, err))
      return fail("hessian-budget: " + err);
    if (hessians && state.empty())
      return fail("hessians=true needs state=FILE (Hessians are written to "
                  "the calibration state)");

    exec::ModelDesc desc;
    if (!buildModelDesc(module, desc, err))
      return fail("cannot run the model: " + err);
    std::string fingerprint = modelFingerprint(module, err);
    if (fingerprint.empty())
      return fail(err);
    std::unique_ptr<::lowbit::Tokenizer> tokenizer =
        ::lowbit::Tokenizer::create(desc.metadata, err);
    if (!tokenizer)
      return fail("cannot build the tokenizer: " + err);

    int64_t context = ctx;
    if (context <= 0)
      context = desc.contextLength > 0
                    ? std::min(kDefaultContext, desc.contextLength)
                    : kDefaultContext;
    exec::ExecOptions execOptions;
    execOptions.threads = threads;
    execOptions.contextSize = context;
    execOptions.batchSize = context;
    std::unique_ptr<exec::Executor> executor =
        exec::Executor::create(desc, execOptions, err);
    if (!executor)
      return fail(err);

    std::vector<int32_t> tokens;
    if (calibText == "self") {
      auto progress = [](int64_t done, int64_t total) {
        reportAnalysisProgress("sample", done, total);
      };
      if (!calib::sampleCalibrationTokens(*executor, *tokenizer, selfTokens,
                                          context, static_cast<uint64_t>(seed),
                                          progress, tokens, err))
        return fail("sampling calibration text: " + err);
    } else {
      std::string text;
      if (!readTextFile(calibText, text, err))
        return fail(err);
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return fail(calibText + ": the calibration text is empty");
      tokens = tokenizer->tokenize(text, /*addSpecial=*/true);
    }

    calib::CalibrationOptions options;
    options.contextSize = context;
    options.maxChunks = chunks;
    options.hessians = hessians;
    options.hessianBudget = budget;
    // The Hessian scratch file, removed at the end and on interruption.
    ::lowbit::ScopedTemporaryFile scratch;
    if (hessians) {
      options.scratchPath = ::lowbit::temporaryPathFor(state + ".hessians");
      ::lowbit::removeStaleTemporariesOf(state);
      scratch.reset(options.scratchPath);
    }
    options.progress = [](int64_t pass, int64_t passes, int64_t chunk,
                          int64_t chunkCount) {
      std::string item =
          "pass " + std::to_string(pass) + "/" + std::to_string(passes);
      reportAnalysisProgress("calibrate", static_cast<size_t>(chunk),
                             static_cast<size_t>(chunkCount), item);
    };
    calib::CalibrationResult result;
    if (!calib::runCalibration(*executor, tokens, tokenizer->bos(), options,
                               result, err))
      return fail(
          (calibText == "self" ? std::string("self-sampled text") : calibText) +
          ": " + err);
    result.imatrix.datasets = {calibText};

    if (!state.empty() &&
        !calib::writeCalibrationState(state, result, fingerprint,
                                      options.scratchPath, err))
      return fail(err);
    if (!imatrixOut.empty() && !result.imatrix.saveGGUF(imatrixOut, err))
      return fail(err);

    MLIRContext *context_ = module.getContext();
    Builder b(context_);
    SmallVector<NamedAttribute> info;
    if (!state.empty())
      info.push_back(b.getNamedAttr("state", b.getStringAttr(state)));
    if (!imatrixOut.empty())
      info.push_back(b.getNamedAttr("imatrix", b.getStringAttr(imatrixOut)));
    info.push_back(
        b.getNamedAttr("chunks", b.getI64IntegerAttr(result.chunks)));
    info.push_back(b.getNamedAttr(
        "tokens",
        b.getI64IntegerAttr(static_cast<int64_t>(result.tokens.size()))));
    info.push_back(b.getNamedAttr("ppl", b.getF64FloatAttr(result.ppl)));
    info.push_back(
        b.getNamedAttr("passes", b.getI64IntegerAttr(result.passes)));
    info.push_back(
        b.getNamedAttr("seconds", b.getF64FloatAttr(result.seconds)));
    module->setAttr(kCalibrationAttrName, b.getDictionaryAttr(info));
  }
};

} // namespace

void mlir::lowbit::setAnalysisProgressCallback(AnalysisProgressFn fn) {
  std::lock_guard<std::mutex> lock(progressMutex);
  progressCallback = std::move(fn);
}

void mlir::lowbit::reportAnalysisProgress(StringRef step, size_t done,
                                          size_t total, StringRef item) {
  std::lock_guard<std::mutex> lock(progressMutex);
  if (progressCallback)
    progressCallback(step, done, total, item);
}
