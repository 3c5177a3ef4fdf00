//===- EvalCommand.cpp - lowbit eval: perplexity and KL divergence --------===//
//
// The protocol and the report follow llama.cpp's llama-perplexity so that the
// numbers can be put side by side (see lowbit/Eval/Eval.h).
//
//===----------------------------------------------------------------------===//

#include "CommandLine.h"
#include "Commands.h"
#include "ModelLoading.h"
#include "Progress.h"

#include "lowbit/Support/MappedFile.h"
#include "lowbit/Eval/Eval.h"
#include "lowbit/Exec/Executor.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace lowbit;

namespace {

/// Progress on stderr: chunks done and speed (the bar adds the time left).
class EvalProgress {
public:
  EvalProgress(const char *label, int64_t tokensPerChunk)
      : bar_(label, cli::progressEnabled()), tokensPerChunk_(tokensPerChunk),
        start_(std::chrono::steady_clock::now()) {}
  void update(int64_t done, int64_t total) {
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    // The bar adds the ETA.
    char item[96];
    std::snprintf(item, sizeof(item), "chunks, %.0f tokens/s",
                  secs > 0 ? done * tokensPerChunk_ / secs : 0.0);
    bar_.update(static_cast<size_t>(done), static_cast<size_t>(total), item);
    if (done == total)
      bar_.finish();
  }

private:
  cli::ProgressBar bar_;
  int64_t tokensPerChunk_;
  std::chrono::steady_clock::time_point start_;
};

bool readText(const std::string &path, std::string &text, std::string &err) {
  return readWholeFile(path, text, err);
}

nlohmann::json estimate(const eval::Estimate &e) {
  return {{"value", e.value}, {"error", e.error}};
}

void printKLReport(const eval::KLResult &r) {
  std::printf("====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.ppl.value,
              r.ppl.error);
  std::printf("Mean PPL(base)                : %10.6f ± %10.6f\n",
              r.basePpl.value, r.basePpl.error);
  std::printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n",
              100.0 * r.lnPplCorrelation);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n",
              r.lnPplRatio.value, r.lnPplRatio.error);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n",
              r.pplRatio.value, r.pplRatio.error);
  std::printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n",
              r.pplDiff.value, r.pplDiff.error);
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f ± %10.6f\n", r.kld.value, r.kld.error);
  std::printf("Maximum KLD: %10.6f\n", r.kldMax);
  std::printf("99.9%%   KLD: %10.6f\n", r.kld999);
  std::printf("99.0%%   KLD: %10.6f\n", r.kld99);
  std::printf("95.0%%   KLD: %10.6f\n", r.kld95);
  std::printf("90.0%%   KLD: %10.6f\n", r.kld90);
  std::printf("Median  KLD: %10.6f\n", r.kldMedian);
  std::printf("10.0%%   KLD: %10.6f\n", r.kld10);
  std::printf(" 5.0%%   KLD: %10.6f\n", r.kld5);
  std::printf(" 1.0%%   KLD: %10.6f\n", r.kld1);
  std::printf(" 0.1%%   KLD: %10.6f\n", r.kld01);
  std::printf("Minimum KLD: %10.6f\n", r.kldMin);
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * r.deltaP.value,
              100.0 * r.deltaP.error);
  std::printf("Maximum Δp: %6.3f%%\n", 100.0 * r.deltaPMax);
  std::printf("99.9%%   Δp: %6.3f%%\n", 100.0 * r.deltaP999);
  std::printf("99.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP99);
  std::printf("95.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP95);
  std::printf("90.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP90);
  std::printf("75.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP75);
  std::printf("Median  Δp: %6.3f%%\n", 100.0 * r.deltaPMedian);
  std::printf("25.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP25);
  std::printf("10.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP10);
  std::printf(" 5.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP5);
  std::printf(" 1.0%%   Δp: %6.3f%%\n", 100.0 * r.deltaP1);
  std::printf(" 0.1%%   Δp: %6.3f%%\n", 100.0 * r.deltaP01);
  std::printf("Minimum Δp: %6.3f%%\n", 100.0 * r.deltaPMin);
  std::printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * r.rmsDeltaP.value,
              100.0 * r.rmsDeltaP.error);
  std::printf("Same top p: %6.3f ± %5.3f %%\n", 100.0 * r.sameTop.value,
              100.0 * r.sameTop.error);
}

nlohmann::json klJson(const eval::KLResult &r) {
  return {
      {"chunks", r.chunks},
      {"context", r.contextSize},
      {"scored", r.count},
      {"ppl", estimate(r.ppl)},
      {"ppl_base", estimate(r.basePpl)},
      {"ln_ppl_correlation", r.lnPplCorrelation},
      {"ln_ppl_ratio", estimate(r.lnPplRatio)},
      {"ppl_ratio", estimate(r.pplRatio)},
      {"ppl_diff", estimate(r.pplDiff)},
      {"kld", estimate(r.kld)},
      {"kld_percentiles",
       {{"max", r.kldMax},
        {"99.9", r.kld999},
        {"99", r.kld99},
        {"95", r.kld95},
        {"90", r.kld90},
        {"median", r.kldMedian},
        {"10", r.kld10},
        {"5", r.kld5},
        {"1", r.kld1},
        {"0.1", r.kld01},
        {"min", r.kldMin}}},
      {"delta_p", estimate(r.deltaP)},
      {"delta_p_percentiles",
       {{"max", r.deltaPMax},
        {"99.9", r.deltaP999},
        {"99", r.deltaP99},
        {"95", r.deltaP95},
        {"90", r.deltaP90},
        {"75", r.deltaP75},
        {"median", r.deltaPMedian},
        {"25", r.deltaP25},
        {"10", r.deltaP10},
        {"5", r.deltaP5},
        {"1", r.deltaP1},
        {"0.1", r.deltaP01},
        {"min", r.deltaPMin}}},
      {"rms_delta_p", estimate(r.rmsDeltaP)},
      {"same_top", estimate(r.sameTop)},
      {"seconds", r.seconds},
      {"tokens_per_second", r.tokensPerSecond},
  };
}

} // namespace

int evalCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "eval", "MODEL.gguf|ARTIFACT_DIR -f TEXT [-c CTX] [options]",
      "Measure a model's perplexity on a text, or its KL divergence from a "
      "base model,\nwith the protocol of llama.cpp's llama-perplexity: the "
      "text is tokenized once (with\nBOS), cut into chunks of CTX tokens, "
      "each chunk is evaluated from an empty cache\nwith its first token "
      "replaced by BOS, and the second half of each chunk is scored.");
  cl.option("file", "TEXT",
            "The evaluation text (not needed with --kl-base: the tokens "
            "come from\nthe base file).",
            "f");
  cl.option("ctx-size", "N", "Chunk size in tokens (default 512).", "c");
  cl.option("threads", "N", "Threads (default: all hardware threads).", "t");
  cl.option("batch-size", "N",
            "Most tokens per forward pass (default: the chunk size).", "b");
  cl.option("chunks", "N", "Evaluate only the first N chunks (default: all).");
  cl.option("activations", "MODE", driver::kActivationsHelp);
  cl.flag("verify", driver::kVerifyHelp);
  cl.option("save-logits", "FILE",
            "Also write the log-probabilities of every scored position to "
            "FILE\n(lowbit's format, for a later --kl-base run).");
  cl.option("logits-format", "F",
            "Encoding for --save-logits: f32 (exact, 4 bytes per token and "
            "position)\nor u16 (llama.cpp's compact 2-byte form) "
            "(default f32).");
  cl.option("kl-base", "FILE",
            "Compare against the log-probabilities a base model saved with\n"
            "--save-logits, or llama.cpp's llama-perplexity saved with\n"
            "--kl-divergence-base (same tokens, same chunks), and report KL\n"
            "divergence, top-token agreement and the PPL ratio.");
  cl.flag("json", "Print the results as one JSON object on stdout.");
  cl.epilog("Progress goes to stderr: a bar on a terminal, a line every "
            "LOWBIT_PROGRESS_INTERVAL seconds (default 5) otherwise, none with "
            "LOWBIT_NO_PROGRESS set.");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "model"))
    return *done;
  const std::string path = cl.positional()[0];
  const bool kl = cl.has("kl-base");
  if (kl && cl.has("save-logits"))
    return cli::fail("--save-logits and --kl-base cannot be combined");
  if (!kl && !cl.has("file"))
    return cli::fail("missing -f TEXT (see 'lowbit eval --help')");

  long long ctx = 512, threads = 0, batch = 0, chunks = 0;
  if (!cl.getInt("ctx-size", ctx, error) ||
      !cl.getInt("threads", threads, error) ||
      !cl.getInt("batch-size", batch, error) ||
      !cl.getInt("chunks", chunks, error))
    return cli::fail(error);
  if (ctx < 4)
    return cli::fail("--ctx-size must be at least 4");
  if (threads < 0 || batch < 0 || chunks < 0)
    return cli::fail("--threads, --batch-size and --chunks must not be "
                     "negative");
  eval::LogitsEncoding encoding = eval::LogitsEncoding::F32;
  std::string fmt = cl.get("logits-format", "f32");
  if (fmt == "u16")
    encoding = eval::LogitsEncoding::U16;
  else if (fmt != "f32")
    return cli::fail("--logits-format must be f32 or u16");

  // With --kl-base the chunk size is the one the base file was saved with.
  eval::LogitsFileInfo baseInfo;
  if (kl) {
    if (!eval::readLogitsFileInfo(cl.get("kl-base"), baseInfo, error))
      return cli::fail(error);
    ctx = baseInfo.contextSize;
  }

  driver::ExecutableModel model;
  if (!driver::loadModelForExecution(path, model, error))
    return cli::fail(error);
  model.verifyArtifact = cl.has("verify");
  const Tokenizer &tok = *model.tokenizer;
  if (model.desc.contextLength > 0 && ctx > model.desc.contextLength)
    std::fprintf(stderr,
                 "warning: %s: the model was trained on %lld context tokens "
                 "(%lld specified)\n",
                 path.c_str(), static_cast<long long>(model.desc.contextLength),
                 ctx);
  exec::ExecOptions opts;
  opts.threads = static_cast<int>(threads);
  opts.contextSize = ctx;
  opts.batchSize = batch > 0 ? batch : ctx;
  if (!driver::parseActivationMode(cl.get("activations"), opts, error))
    return cli::fail(error);
  auto executor = driver::createEvaluator(model, opts, error);
  if (!executor)
    return cli::fail(path + ": " + error);
  const int32_t bos = tok.addBos() ? tok.bos() : -1;
  const bool json = cl.has("json");
  EvalProgress bar(kl ? "kl-divergence" : "perplexity", ctx);

  if (kl) {
    eval::KLOptions ko;
    ko.maxChunks = chunks;
    ko.progress = [&](int64_t d, int64_t t) { bar.update(d, t); };
    eval::KLResult r;
    if (!eval::klDivergence(*executor, cl.get("kl-base"), bos, ko, r, error))
      return cli::fail(error);
    if (json) {
      nlohmann::json j = klJson(r);
      j["model"] = path;
      j["kl_base"] = cl.get("kl-base");
      j["threads"] = executor->threads();
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("kl-divergence: %lld chunks of %lld tokens, %lld scored "
                  "positions, %.2f s (%.0f tokens/s, %d threads)\n\n",
                  static_cast<long long>(r.chunks), ctx,
                  static_cast<long long>(r.count), r.seconds, r.tokensPerSecond,
                  executor->threads());
      printKLReport(r);
    }
    return 0;
  }

  const std::string textPath = cl.get("file");
  std::string text;
  if (!readText(textPath, text, error))
    return cli::fail(error);
  std::vector<int32_t> tokens = tok.tokenize(text, /*addSpecial=*/true);

  eval::PerplexityOptions po;
  po.contextSize = ctx;
  po.maxChunks = chunks;
  po.saveLogitsPath = cl.get("save-logits");
  po.encoding = encoding;
  po.progress = [&](int64_t d, int64_t t) { bar.update(d, t); };
  eval::PerplexityResult r;
  if (!eval::perplexity(*executor, tokens, bos, po, r, error))
    return cli::fail(textPath + ": " + error);

  if (json) {
    nlohmann::json j = {
        {"model", path},
        {"file", textPath},
        {"tokens", r.tokenCount},
        {"context", r.contextSize},
        {"chunks", r.chunks},
        {"scored", r.scored},
        {"ppl", r.ppl},
        {"ppl_error", r.pplError},
        {"mean_nll", r.meanNll},
        {"running_ppl", r.runningPpl},
        {"seconds", r.seconds},
        {"tokens_per_second", r.tokensPerSecond},
        {"threads", executor->threads()},
    };
    if (!po.saveLogitsPath.empty())
      j["saved_logits"] = po.saveLogitsPath;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("perplexity: %lld tokens, %lld chunks of %lld (scoring the "
              "last %lld of each), %.2f s (%.0f tokens/s, %d threads)\n",
              static_cast<long long>(r.tokenCount),
              static_cast<long long>(r.chunks), ctx,
              static_cast<long long>(ctx - 1 - ctx / 2), r.seconds,
              r.tokensPerSecond, executor->threads());
  for (size_t i = 0; i < r.runningPpl.size(); ++i)
    std::printf("[%zu]%.4f,", i + 1, r.runningPpl[i]);
  std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.pplError);
  if (!po.saveLogitsPath.empty())
    std::printf("saved the log-probabilities to %s\n",
                po.saveLogitsPath.c_str());
  return 0;
}
