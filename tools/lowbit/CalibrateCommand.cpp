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

#include "LowBit/Exec/ONNXRunner.h"
#include "LowBit/IR/LowBit.h"
#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"

#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/ONNX/ONNXFile.h"

#include "mlir/Pass/PassManager.h"

#include <chrono>
#include <filesystem>
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace lowbit;
using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// The data sets of an ONNX calibration folder: the folder itself when it
/// holds input_0.pb, else its test_data_set_* (ONNX's test-data layout).
std::vector<std::string> dataSetsIn(const std::string &folder) {
  namespace fs = std::filesystem;
  std::vector<std::string> sets;
  if (fs::exists(fs::path(folder) / "input_0.pb"))
    return {folder};
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(folder, error))
    if (entry.is_directory() &&
        fs::exists(entry.path() / "input_0.pb"))
      sets.push_back(entry.path().string());
  std::sort(sets.begin(), sets.end());
  return sets;
}

/// Calibrates an ONNX model: runs the executor over every data set and sums,
/// per matmul weight and input channel, the squares and values of its inputs
/// (llama.cpp's importance matrix, keyed by the weights' names).
int calibrateONNX(const cli::CommandLine &cl, ModuleOp module) {
  std::string folder = cl.get("calib"), error;
  if (!std::filesystem::is_directory(folder))
    return cli::fail("an ONNX model calibrates on a folder of input_N.pb "
                     "files (ONNX's test_data_set layout), and '" + folder +
                     "' is not one");
  if (cl.has("state") || cl.has("hessians"))
    return cli::fail("--state and --hessians are not written for ONNX models "
                     "yet; write the importance matrix with -o");
  std::vector<std::string> sets = dataSetsIn(folder);
  if (sets.empty())
    return cli::fail(folder + ": no input_0.pb, nor test_data_set_* folders "
                              "holding one");
  long long chunks = 0;
  if (!cl.getInt("chunks", chunks, error))
    return cli::fail(error);
  if (chunks > 0 && size_t(chunks) < sets.size())
    sets.resize(size_t(chunks));
  PassManager pm(module.getContext());
  pm.addPass(createLowBitConvertONNX());
  if (failed(pm.run(module)))
    return 1;
  ::lowbit::calib::IMatrix imatrix;
  imatrix.datasets.push_back(folder);
  auto observe = [&](GlobalWeightOp weight,
                     const ::lowbit::onnxrt::Tensor &x) {
    ::lowbit::calib::IMatrixEntry &entry = imatrix.entries[ggufTensorName(weight)];
    int64_t width = x.shape.back(), rows = x.count() / width;
    if (entry.counts.empty()) {
      entry.sumSquares.assign(width, 0.0f);
      entry.sum.assign(width, 0.0f);
      entry.counts.assign(1, 0.0f);
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c) {
        double v = x.values[r * width + c];
        entry.sumSquares[c] += float(v * v);
        entry.sum[c] += float(v);
      }
    entry.counts[0] += float(rows);
  };
  auto started = std::chrono::steady_clock::now();
  for (const std::string &set : sets) {
    std::vector<::lowbit::onnxrt::Tensor> inputs;
    if (!::lowbit::onnxfile::readTensorFiles(set, "input", inputs, error))
      return cli::fail(error);
    if (failed(runONNXGraph(module, inputs, observe)))
      return cli::fail("calibration stopped at " + set);
  }
  imatrix.chunkCount = int64_t(sets.size());
  if (!imatrix.saveGGUF(cl.get("output"), error))
    return cli::fail(error);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - started)
                       .count();
  llvm::outs() << llvm::formatv(
      "calibrated on {0} data set{1} in {2:f1} s: {3} matmul weights\n"
      "importance matrix: {4}\n",
      sets.size(), sets.size() == 1 ? "" : "s", seconds,
      imatrix.entries.size(), cl.get("output"));
  return 0;
}

} // namespace

int calibrateCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "calibrate", "MODEL --calib FILE|self|FOLDER (-o IMATRIX.gguf | --state FILE)",
      "Run a model (GGUF or lowbit IR) over calibration text and record, for "
      "every\nweight, per input channel the sum of squared activations, the "
      "sum and the\ntoken count. Chunks like llama.cpp's imatrix tool (BOS "
      "first in every chunk),\nso -o writes an importance matrix llama.cpp's "
      "quantizer reads. --state writes\nlowbit's calibration state (the same "
      "statistics, the tokens, and with\n--hessians the Hessian X^T X of "
      "every matmul input) for lowbit compile. An ONNX model\ncalibrates "
      "on a folder of input_N.pb tensors (or of test_data_set_* folders\n"
      "holding them, ONNX's test-data layout), one forward pass per set.");
  cl.option("calib", "FILE|self|FOLDER",
            "Calibration text, or 'self' to sample it from the model "
            "(seeded);\nfor an ONNX model, a folder of input tensors.");
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
  if (auto source = (*module)->getAttrOfType<StringAttr>("lowbit.source");
      source && source.getValue() == "onnx")
    return calibrateONNX(cl, *module);

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
