//===- CalibrateCommand.cpp - lowbit calibrate ----------------------------===//
//
// Runs the lowbit-calibrate pass on a model: an importance matrix in
// llama.cpp's GGUF format and/or a calibration state (with Hessians).
//
//===----------------------------------------------------------------------===//
#include "AnalysisProgress.h"
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"

#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace lowbit;
using namespace mlir;
using namespace mlir::lowbit;

int calibrateCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "calibrate", "MODEL --calib FILE|self (-o IMATRIX.gguf | --state FILE)",
      "Run a model (GGUF or lowbit IR) over calibration text and record, for "
      "every\nweight, per input channel the sum of squared activations, the "
      "sum and the\ntoken count. Chunks like llama.cpp's imatrix tool (BOS "
      "first in every chunk),\nso -o writes an importance matrix llama.cpp's "
      "quantizer reads. --state writes\nlowbit's calibration state (the same "
      "statistics, the tokens, and with\n--hessians the Hessian X^T X of "
      "every matmul input) for lowbit compile.");
  cl.option("calib", "FILE|self",
            "Calibration text, or 'self' to sample it from the model "
            "(seeded).");
  cl.option("ctx-size", "N",
            "Tokens per chunk (default 512, or the model's context if "
            "smaller).",
            "c");
  cl.option("chunks", "N", "Use at most N chunks (default: all).");
  cl.option("output", "FILE", "The importance matrix to write (GGUF).", "o");
  cl.option("state", "FILE", "Also write the calibration state here.");
  cl.flag("hessians", "Accumulate Hessians into the state (for GPTQ).");
  cl.option("hessian-budget", "SIZE",
            "Most memory for Hessians at once, e.g. 512MiB (default 1GiB); "
            "more passes\nover the text when they do not all fit.");
  cl.option("self-tokens", "N",
            "Tokens to sample with --calib self "
            "(default 16384).");
  cl.option("seed", "N", "Seed for --calib self (default 1).");
  cl.option("threads", "N", "Threads (default: all cores).", "t");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input model"))
    return *done;
  if (!cl.has("calib"))
    return cli::fail("missing --calib FILE (or --calib self)");
  if (!cl.has("output") && !cl.has("state"))
    return cli::fail("missing -o IMATRIX.gguf (or --state FILE)");
  if (cl.has("hessians") && !cl.has("state"))
    return cli::fail("--hessians needs --state FILE");
  long long ctx = 0, chunks = 0, threads = 0, selfTokens = 16384, seed = 1;
  if (!cl.getInt("ctx-size", ctx, error) ||
      !cl.getInt("chunks", chunks, error) ||
      !cl.getInt("threads", threads, error) ||
      !cl.getInt("self-tokens", selfTokens, error) ||
      !cl.getInt("seed", seed, error))
    return cli::fail(error);
  if (cl.has("ctx-size") && ctx < 2)
    return cli::fail("--ctx-size must be at least 2");

  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;

  PassManager pm(context.get());
  LowBitCalibrateOptions options;
  options.calibText = cl.get("calib");
  options.ctx = ctx;
  options.chunks = chunks;
  options.selfTokens = selfTokens;
  options.seed = seed;
  options.imatrixOut = cl.get("output");
  options.state = cl.get("state");
  options.hessians = cl.has("hessians");
  options.hessianBudget = cl.get("hessian-budget", "1GiB");
  options.threads = static_cast<int>(threads);
  pm.addPass(createLowBitCalibrate(options));
  {
    driver::AnalysisProgress progress(cli::progressEnabled());
    if (failed(pm.run(*module)))
      return 1;
  }
  auto info = (*module)->getAttrOfType<DictionaryAttr>(kCalibrationAttrName);
  auto getInt = [&](const char *key) {
    auto a = info ? info.getAs<IntegerAttr>(key) : IntegerAttr();
    return a ? a.getInt() : 0;
  };
  auto getFloat = [&](const char *key) {
    auto a = info ? info.getAs<FloatAttr>(key) : FloatAttr();
    return a ? a.getValueAsDouble() : 0.0;
  };
  llvm::outs() << llvm::formatv(
      "calibrated on {0} chunks of {1} tokens ({2} tokens, {3} pass{4}) in "
      "{5:f1} s; PPL of the chunks' second halves {6:f4}\n",
      getInt("chunks"),
      ctx > 0 ? ctx : getInt("tokens") / std::max<int64_t>(1, getInt("chunks")),
      getInt("tokens"), getInt("passes"), getInt("passes") == 1 ? "" : "es",
      getFloat("seconds"), getFloat("ppl"));
  if (cl.has("output"))
    llvm::outs() << "importance matrix: " << cl.get("output") << "\n";
  if (cl.has("state"))
    llvm::outs() << "calibration state: " << cl.get("state")
                 << (cl.has("hessians") ? " (with Hessians)" : "") << "\n";
  return 0;
}
