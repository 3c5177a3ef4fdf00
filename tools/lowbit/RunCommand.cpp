//===- RunCommand.cpp - lowbit run: generate text -------------------------===//

#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"
#include "ModelLoading.h"

#include "LowBit/Exec/ONNXRunner.h"
#include "lowbit/ONNX/ONNXFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FormatVariadic.h"

#include "lowbit/Eval/Eval.h"
#include "lowbit/Exec/Executor.h"

#include <chrono>
#include <cstdio>
#include <random>

using namespace lowbit;
namespace onnxrt = ::lowbit::onnxrt;
namespace onnxfile = ::lowbit::onnxfile;

namespace {

/// An ONNX model: one forward pass of the executor on the input tensors of
/// --inputs; each output printed (name, type, shape, a few values) and, with
/// -o, written as output_N.pb next to ONNX's test-data layout.
int runONNX(const cli::CommandLine &cl, const std::string &path) {
  if (!cl.has("inputs"))
    return cli::fail("an ONNX model runs on input tensors: --inputs FOLDER "
                     "(input_0.pb, input_1.pb, ... as in ONNX's test data)");
  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, path);
  if (!module)
    return 1;
  std::string error;
  std::vector<onnxrt::Tensor> inputs;
  if (!onnxfile::readTensorFiles(cl.get("inputs"), "input", inputs, error))
    return cli::fail(error);
  auto results = mlir::lowbit::runONNXGraph(*module, inputs);
  if (mlir::failed(results))
    return 1;
  auto func = module->lookupSymbol<mlir::func::FuncOp>("forward");
  for (size_t i = 0; i < results->size(); ++i) {
    const onnxrt::Tensor &t = (*results)[i];
    std::string name = "output_" + std::to_string(i);
    if (auto info = func.getResultAttrOfType<mlir::DictionaryAttr>(
            unsigned(i), "onnx.value"))
      if (auto n = info.getAs<mlir::StringAttr>("name"))
        name = n.str();
    std::string shape;
    for (int64_t d : t.shape)
      shape += (shape.empty() ? "" : "x") + std::to_string(d);
    llvm::outs() << name << " " << onnxfile::dataTypeName(t.dataType) << " ["
                 << shape << "]:";
    for (size_t k = 0; k < t.values.size() && k < 8; ++k) {
      char value[32];
      std::snprintf(value, sizeof(value), " %.6g", t.values[k]);
      llvm::outs() << value;
    }
    llvm::outs() << (t.values.size() > 8 ? " ...\n" : "\n");
    if (cl.has("output") &&
        !onnxfile::writeTensorFile(cl.get("output") + "/output_" +
                                       std::to_string(i) + ".pb",
                                   name, t, error))
      return cli::fail(error);
  }
  return 0;
}

} // namespace

int runCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "run", "MODEL.gguf|ARTIFACT_DIR [-p TEXT] [-n N] [options] | MODEL.onnx --inputs FOLDER",
      "Generate text with the CPU reference executor (f32 arithmetic, weights "
      "decoded on\nthe fly from their stored format), or with the native "
      "runtime for a directory\nwritten by `lowbit compile --emit native`. "
      "The prompt is "
      "tokenized as llama.cpp does (with\nBOS when the vocabulary adds one); "
      "the continuation is printed to stdout as it is\ngenerated, followed by "
      "a newline. Speed is reported on stderr.");
  cl.option("prompt", "TEXT",
            "Text to continue (default: empty, generation starts from BOS).",
            "p");
  cl.option("n-predict", "N", "Tokens to generate (default 128).", "n");
  cl.option("temp", "T",
            "Sampling temperature; 0 = greedy, always the most likely token\n"
            "(default 0).");
  cl.option("top-k", "K",
            "With --temp > 0: sample among the K most likely tokens; 0 = all\n"
            "(default 40).");
  cl.option("top-p", "P",
            "With --temp > 0: then keep the smallest set of tokens whose\n"
            "probability reaches P; 1 = all (default 0.95).");
  cl.option("seed", "S",
            "Random seed for sampling (default: a fresh random seed).");
  cl.option("threads", "N", "Threads (default: all hardware threads).", "t");
  cl.option("ctx-size", "N",
            "Context size in tokens (default: the model's training context).",
            "c");
  cl.option("activations", "MODE", driver::kActivationsHelp);
  cl.flag("verify", driver::kVerifyHelp);
  cl.flag("ignore-eos",
          "Keep generating after an end-of-generation token instead of\n"
          "stopping there.");
  cl.option("inputs", "FOLDER",
            "ONNX models: run once on FOLDER/input_N.pb (ONNX's test-data "
            "layout) and\nprint the outputs.");
  cl.option("output", "FOLDER",
            "ONNX models, with --inputs: also write FOLDER/output_N.pb.", "o");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "model"))
    return *done;
  const std::string path = cl.positional()[0];
  if (driver::isONNX(path))
    return runONNX(cl, path);
  if (cl.has("inputs") || cl.has("output"))
    return cli::fail("--inputs and -o run ONNX models; a GGUF model or "
                     "artifact generates text from -p");

  long long nPredict = 128, topK = 40, threads = 0, ctx = 0, seed = -1;
  double temp = 0.0, topP = 0.95;
  if (!cl.getInt("n-predict", nPredict, error) ||
      !cl.getInt("top-k", topK, error) ||
      !cl.getInt("threads", threads, error) ||
      !cl.getInt("ctx-size", ctx, error) || !cl.getInt("seed", seed, error) ||
      !cl.getDouble("temp", temp, error) || !cl.getDouble("top-p", topP, error))
    return cli::fail(error);
  if (nPredict < 0)
    return cli::fail("--n-predict must not be negative");
  if (threads < 0 || ctx < 0)
    return cli::fail("--threads and --ctx-size must not be negative");
  if (temp < 0 || topP <= 0 || topP > 1)
    return cli::fail("--temp must be >= 0 and --top-p in (0, 1]");

  driver::ExecutableModel model;
  if (!driver::loadModelForExecution(path, model, error))
    return cli::fail(error);
  model.verifyArtifact = cl.has("verify");
  exec::ExecOptions opts;
  opts.threads = static_cast<int>(threads);
  opts.contextSize = ctx;
  if (!driver::parseActivationMode(cl.get("activations"), opts, error))
    return cli::fail(error);
  auto executor = driver::createEvaluator(model, opts, error);
  if (!executor)
    return cli::fail(path + ": " + error);

  const std::string prompt = cl.get("prompt");
  const Tokenizer &tok = *model.tokenizer;
  std::vector<int32_t> promptTokens = tok.tokenize(prompt);
  if (promptTokens.empty())
    promptTokens.push_back(tok.bos() >= 0 ? tok.bos() : 0);

  eval::GenerateOptions gen;
  gen.maxTokens = nPredict;
  gen.stopAtEndOfGeneration = !cl.has("ignore-eos");
  gen.sampling.temperature = static_cast<float>(temp);
  gen.sampling.topK = static_cast<int>(topK);
  gen.sampling.topP = static_cast<float>(topP);
  gen.sampling.seed =
      seed >= 0 ? static_cast<uint64_t>(seed) : std::random_device()();

  // With no prompt text, the first piece carries the space SentencePiece
  // prefixes to a text; detokenizing drops it, and so do we.
  bool stripSpace = prompt.empty() && tok.addSpacePrefix();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> generated;
  bool ok = nPredict == 0 ||
            eval::generate(
                *executor, tok, promptTokens, gen, generated,
                [&](int32_t id) {
                  std::string piece = tok.tokenToPiece(id, /*special=*/false,
                                                       stripSpace ? 1 : 0);
                  stripSpace = false;
                  std::fwrite(piece.data(), 1, piece.size(), stdout);
                  std::fflush(stdout);
                  return true;
                },
                error);
  std::printf("\n");
  std::fflush(stdout);
  if (!ok)
    return cli::fail(path + ": " + error);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  std::fprintf(stderr,
               "lowbit run: %zu prompt + %zu generated tokens in %.2f s "
               "(%.1f tokens/s, %d threads)\n",
               promptTokens.size(), generated.size(), secs,
               secs > 0 ? generated.size() / secs : 0.0, executor->threads());
  return 0;
}
