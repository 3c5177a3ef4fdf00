//===- lowbit-rt.cpp - Greedy generation from a native artifact -----------===//
//
// The runtime's own small runner: no compiler, no MLIR, so that it builds
// as a static aarch64 binary and runs under qemu. Prints the greedy
// continuation of a prompt like `lowbit run --temp 0` does (the first
// piece's leading space dropped when there is no prompt), then a newline.
//
//===----------------------------------------------------------------------===//

#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Tokenizer.h"
#include "lowbit/runtime.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: lowbit-rt ARTIFACT_DIR [-p PROMPT] [-n N] [-t THREADS] "
               "[-c CTX] [--report] [--verify]\n"
               "Greedy generation with the lowbit native runtime.\n");
  return 1;
}

int fail(const std::string &msg) {
  std::fprintf(stderr, "lowbit-rt: error: %s\n", msg.c_str());
  return 1;
}

bool parseInt(const char *s, long long &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtoll(s, &end, 10);
  return errno == 0 && end && *end == 0 && end != s;
}

} // namespace

extern "C" int lb_rt_main(int argc, char **argv) {
  std::string dir, prompt;
  long long n = 128, threads = 0, ctxSize = 0;
  bool showReport = false, verify = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](long long &out) {
      return i + 1 < argc && parseInt(argv[++i], out);
    };
    if (a == "-p" && i + 1 < argc)
      prompt = argv[++i];
    else if (a == "-n") {
      if (!value(n) || n < 0)
        return usage();
    } else if (a == "-t") {
      if (!value(threads) || threads < 0)
        return usage();
    } else if (a == "-c") {
      if (!value(ctxSize) || ctxSize < 0)
        return usage();
    } else if (a == "--report")
      showReport = true;
    else if (a == "--verify")
      verify = true;
    else if (!a.empty() && a[0] != '-' && dir.empty())
      dir = a;
    else
      return usage();
  }
  if (dir.empty())
    return usage();

  lb_status_t st;
  lb_model_t *model = nullptr;
  lb_model_params_t mp = lb_model_default_params();
  mp.verify = verify;
  if (lb_model_load_with_params(dir.c_str(), &mp, &model, &st) != LB_OK)
    return fail(st.message);
  if (showReport)
    std::fprintf(stderr, "%s", lb_model_kernel_report(model));

  std::string metaPath = dir + "/metadata.gguf";
  lowbit::gguf::Error gerr;
  auto reader = lowbit::gguf::Reader::open(metaPath, gerr);
  if (!reader) {
    lb_model_free(model);
    return fail(gerr.message());
  }
  std::string why;
  auto tok = lowbit::Tokenizer::create(reader->metadata(), why);
  if (!tok) {
    lb_model_free(model);
    return fail(metaPath + ": " + why);
  }

  lb_context_params_t params = lb_context_default_params();
  params.n_threads = static_cast<int32_t>(threads);
  params.n_ctx = static_cast<int32_t>(ctxSize);
  lb_context_t *ctx = nullptr;
  if (lb_context_create(model, &params, &ctx, &st) != LB_OK) {
    lb_model_free(model);
    return fail(st.message);
  }
  lb_model_info_t info;
  lb_model_get_info(model, &info);

  std::vector<int32_t> tokens = tok->tokenize(prompt);
  if (tokens.empty())
    tokens.push_back(tok->bos() >= 0 ? tok->bos() : 0);
  bool stripSpace = prompt.empty() && tok->addSpacePrefix();
  const int64_t nCtx = lb_context_n_ctx(ctx);
  if (static_cast<int64_t>(tokens.size()) > nCtx) {
    lb_context_free(ctx);
    lb_model_free(model);
    return fail("the prompt is longer than the context");
  }
  auto t0 = std::chrono::steady_clock::now();
  int rc = 0;
  int32_t pos = 0;
  int32_t count = static_cast<int32_t>(tokens.size());
  const int32_t *input = tokens.data();
  int32_t next = 0;
  long long generated = 0;
  for (; generated < n; ++generated) {
    if (lb_eval(ctx, input, count, pos, count - 1, &st) != LB_OK) {
      rc = fail(st.message);
      break;
    }
    pos += count;
    const float *logits = lb_get_logits(ctx, nullptr);
    // Greedy: the most likely token, the lowest id on ties.
    next = 0;
    for (int64_t i = 1; i < info.n_vocab; ++i)
      if (logits[i] > logits[next])
        next = static_cast<int32_t>(i);
    if (tok->isEndOfGeneration(next))
      break;
    std::string piece = tok->tokenToPiece(next, false, stripSpace ? 1 : 0);
    stripSpace = false;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    if (pos >= nCtx)
      break;
    input = &next;
    count = 1;
  }
  std::printf("\n");
  double secs = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
  std::fprintf(stderr,
               "lowbit-rt: %lld tokens in %.2f s (%.1f tokens/s, %d threads, "
               "%d kernel / %d fall-back matmul weights)\n",
               generated, secs, secs > 0 ? generated / secs : 0.0,
               lb_context_n_threads(ctx), info.n_kernel_tensors,
               info.n_fallback_tensors);
  lb_context_free(ctx);
  lb_model_free(model);
  return rc;
}
