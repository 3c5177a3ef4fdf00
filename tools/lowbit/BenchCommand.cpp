//===- BenchCommand.cpp - lowbit bench: llama-bench style speed -----------===//
//
// pp<N>: one forward pass over N prompt tokens from an empty cache (logits
// of the last only); tg<N>: N tokens generated one at a time from an empty
// cache. Each test runs once to warm up, then -r times; t/s is the mean over
// the repetitions with the standard deviation after "±", as llama-bench
// prints them. A GGUF file runs on the reference executor, an artifact
// directory on the native runtime.
//
//===----------------------------------------------------------------------===//

#include "CommandLine.h"
#include "Commands.h"
#include "ModelLoading.h"

#include "lowbit/Formats/Formats.h"
#include "lowbit/runtime/Manifest.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>

using namespace lowbit;

namespace {

struct ModelFacts {
  std::string label;       // "llama lowbit-tiny-256 Q4_K"
  uint64_t bytes = 0;      // every weight
  uint64_t bytesPerToken = 0; // weights a generated token reads
  int64_t params = 0;
  std::string backend;
};

/// Size, parameters and the format holding most bytes (the file type label).
ModelFacts describe(const driver::ExecutableModel &model) {
  ModelFacts f;
  std::map<std::string, uint64_t> byFormat;
  uint64_t embedBytes = 0;
  // The embedding table and the output projection, from the graph.
  std::string embedding;
  for (const exec::GraphOp &op : model.desc.graph.ops)
    if (op.kind == exec::OpKind::Embedding) {
      embedding = op.weight;
      break;
    }
  const bool tied = !embedding.empty() &&
                    model.desc.outputWeight() == embedding;
  auto add = [&](const std::string &name, const std::string &format,
                 int64_t rows, int64_t cols, uint64_t bytes) {
    if (name == embedding)
      embedBytes = bytes;
    f.bytes += bytes;
    f.params += rows * cols;
    if (rows > 1)
      byFormat[format] += bytes;
    // A generated token reads every matrix whole except the embedding table
    // (one row), unless the output reuses it.
    if (rows > 1 && name != embedding)
      f.bytesPerToken += bytes;
  };
  if (!model.nativeDir.empty()) {
    std::ifstream in(model.nativeDir + "/" + runtime::kManifestFile);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    runtime::Manifest m;
    std::string err;
    if (runtime::parseManifest(text, m, err)) {
      for (const runtime::ManifestTensor &t : m.tensors) {
        add(t.name, t.format, t.rows(), t.cols(), t.size);
      }
      f.backend = "native " + m.target;
    }
  } else {
    for (const auto &[name, w] : model.desc.weights) {
      add(name, formats::info(w.format).name, w.rows, w.cols,
          w.rowBytes * w.rows);
    }
    f.backend = "reference";
  }
  if (tied)
    f.bytesPerToken += embedBytes;
  std::string top;
  uint64_t most = 0;
  for (const auto &[format, bytes] : byFormat)
    if (bytes > most) {
      most = bytes;
      top = format;
    }
  for (char &c : top)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  f.label = model.desc.architecture +
            (model.desc.name.empty() ? "" : " " + model.desc.name) + " " +
            top;
  return f;
}

std::string humanBytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t(1) << 30))
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / double(1ull << 30));
  else
    std::snprintf(buf, sizeof(buf), "%.2f MiB", b / double(1ull << 20));
  return buf;
}

std::string humanCount(int64_t n) {
  char buf[32];
  if (n >= 1000000000)
    std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  else if (n >= 1000000)
    std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  else
    std::snprintf(buf, sizeof(buf), "%.2f K", n / 1e3);
  return buf;
}

/// Seconds of one run of a test.
bool runOnce(exec::Evaluator &ev, bool prompt, int64_t n,
             const std::vector<int32_t> &tokens, double &seconds,
             std::string &err) {
  std::vector<float> logits;
  ev.reset();
  auto t0 = std::chrono::steady_clock::now();
  if (prompt) {
    if (!ev.eval(tokens.data(), n, 0, logits, n - 1, err))
      return false;
  } else {
    for (int64_t i = 0; i < n; ++i)
      if (!ev.eval(&tokens[i], 1, i, logits, 0, err))
        return false;
  }
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                .count();
  return true;
}

} // namespace

int benchCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "bench", "MODEL.gguf|ARTIFACT_DIR [-p N] [-n N] [-r N] [-t N]",
      "Measure prompt processing (pp) and token generation (tg) speed like "
      "llama-bench:\neach test runs once to warm up, then -r times; t/s is "
      "the mean and the standard\ndeviation over the repetitions. A GGUF "
      "file or lowbit IR runs on the reference\nexecutor, an artifact "
      "directory (lowbit compile --emit native) on the native\nruntime.");
  cl.option("n-prompt", "N", "Prompt tokens of the pp test; 0 skips it "
                             "(default 512).", "p");
  cl.option("n-gen", "N", "Generated tokens of the tg test; 0 skips it "
                          "(default 128).", "n");
  cl.option("repetitions", "N", "Timed runs per test (default 5).", "r");
  cl.option("threads", "N", "Threads (default: all hardware threads).", "t");
  cl.flag("json", "One JSON object per test on stdout instead of the table.");
  cl.flag("verify", driver::kVerifyHelp);
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "model"))
    return *done;
  const std::string path = cl.positional()[0];
  long long nPrompt = 512, nGen = 128, reps = 5, threads = 0;
  if (!cl.getInt("n-prompt", nPrompt, error) ||
      !cl.getInt("n-gen", nGen, error) ||
      !cl.getInt("repetitions", reps, error) ||
      !cl.getInt("threads", threads, error))
    return cli::fail(error);
  if (nPrompt < 0 || nGen < 0 || reps < 1 || threads < 0)
    return cli::fail("-p and -n must be >= 0, -r >= 1, -t >= 0");

  driver::ExecutableModel model;
  if (!driver::loadModelForExecution(path, model, error))
    return cli::fail(error);
  model.verifyArtifact = cl.has("verify");
  exec::ExecOptions opts;
  opts.threads = static_cast<int>(threads);
  opts.contextSize = std::max<int64_t>({nPrompt, nGen, 1});
  opts.batchSize = std::max<int64_t>(nPrompt, 1);
  auto ev = driver::createEvaluator(model, opts, error);
  if (!ev)
    return cli::fail(path + ": " + error);
  ModelFacts facts = describe(model);

  // Fixed pseudo-random tokens: every run and backend sees the same input.
  std::mt19937 rng(1234);
  std::vector<int32_t> tokens(std::max<int64_t>(nPrompt, nGen));
  for (int32_t &t : tokens)
    t = static_cast<int32_t>(rng() % ev->vocabSize());

  const bool json = cl.has("json");
  if (!json) {
    std::printf("| %-36s | %10s | %10s | %-20s | %7s | %8s | %20s |\n",
                "model", "size", "params", "backend", "threads", "test",
                "t/s");
    std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |\n",
                std::string(36, '-').c_str(), std::string(9, '-').c_str(),
                std::string(9, '-').c_str(), std::string(20, '-').c_str(),
                std::string(6, '-').c_str(), std::string(7, '-').c_str(),
                std::string(19, '-').c_str());
  }
  for (bool prompt : {true, false}) {
    const int64_t n = prompt ? nPrompt : nGen;
    if (n == 0)
      continue;
    double secs;
    if (!runOnce(*ev, prompt, n, tokens, secs, error)) // warm-up
      return cli::fail(path + ": " + error);
    std::vector<double> rates;
    for (long long r = 0; r < reps; ++r) {
      if (!runOnce(*ev, prompt, n, tokens, secs, error))
        return cli::fail(path + ": " + error);
      rates.push_back(n / secs);
    }
    double mean = 0, var = 0;
    for (double x : rates)
      mean += x / rates.size();
    for (double x : rates)
      var += (x - mean) * (x - mean);
    const double sd = rates.size() > 1 ? std::sqrt(var / (rates.size() - 1)) : 0;
    const std::string test = (prompt ? "pp" : "tg") + std::to_string(n);
    if (json) {
      nlohmann::json j = {{"model", facts.label},
                          {"path", path},
                          {"backend", facts.backend},
                          {"size_bytes", facts.bytes},
                          {"params", facts.params},
                          {"weight_bytes_per_token", facts.bytesPerToken},
                          {"threads", ev->threads()},
                          {"test", test},
                          {"n", n},
                          {"repetitions", reps},
                          {"tokens_per_second", mean},
                          {"stddev", sd},
                          {"samples", rates}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      char ts[64];
      std::snprintf(ts, sizeof(ts), "%.2f ± %.2f", mean, sd);
      std::printf("| %-36s | %10s | %10s | %-20s | %7d | %8s | %20s |\n",
                  facts.label.c_str(), humanBytes(facts.bytes).c_str(),
                  humanCount(facts.params).c_str(), facts.backend.c_str(),
                  ev->threads(), test.c_str(), ts);
    }
    std::fflush(stdout);
  }
  return 0;
}
