//===- lowbit-test-state.cpp - Calibration state files for lit tests ------===//
//
// Writes a small calibration state (GGUF) as lowbit-calibrate would, with
// Hessians of a known structure, so lit tests of lowbit-quantize's gptq
// method and of lowbit-awq-scale need no model run:
//
//   lowbit-test-state OUT [--no-imatrix] WEIGHTS:K[:KIND]...
//
// WEIGHTS is a comma-separated list of weights sharing one input (the first
// names the stored tensor); KIND is `ar` (default: channels with AR(1)
// correlation 0.6 and uneven, partly loud scales, H = T * Cov), `loud` (the
// same with channel 2 of every 8 twenty times louder), `zero` (no
// activations: every column dead) or `nan` (a NaN in H). The importance
// matrix entries (in_sum2 = diag H, counts = T) are written too unless
// --no-imatrix.
//
//===----------------------------------------------------------------------===//
#include "lowbit/GGUF/GGUF.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace lowbit::gguf;

namespace {

constexpr uint64_t kTokens = 1000;

int fail(const std::string &message) {
  std::fprintf(stderr, "lowbit-test-state: %s\n", message.c_str());
  return 1;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = s.find(sep, start)) != std::string::npos;
       start = at + 1)
    parts.push_back(s.substr(start, at - start));
  parts.push_back(s.substr(start));
  return parts;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    return fail("usage: lowbit-test-state OUT [--no-imatrix] "
                "WEIGHTS:K[:ar|loud|zero|nan|dangling]...");
  std::string out = argv[1];
  bool imatrix = true;
  Writer w(3);
  w.set("general.type", Value::makeString("imatrix"));
  w.set("lowbit.hessian.tokens", Value::makeU64(kTokens));
  // The writer keeps pointers to tensor data until write().
  std::vector<std::unique_ptr<std::vector<float>>> keep;
  auto hold = [&](std::vector<float> v) {
    keep.push_back(std::make_unique<std::vector<float>>(std::move(v)));
    return keep.back().get();
  };
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--no-imatrix") {
      imatrix = false;
      continue;
    }
    std::vector<std::string> parts = split(arg, ':');
    if (parts.size() < 2 || parts.size() > 3)
      return fail("bad spec '" + arg + "'");
    std::vector<std::string> weights = split(parts[0], ',');
    long k = std::strtol(parts[1].c_str(), nullptr, 10);
    std::string kind = parts.size() == 3 ? parts[2] : "ar";
    if (k <= 0 ||
        (kind != "ar" && kind != "loud" && kind != "zero" && kind != "nan" &&
         kind != "dangling"))
      return fail("bad spec '" + arg + "'");
    std::vector<double> scale(k);
    for (long c = 0; c < k; ++c)
      scale[c] =
          (1.0 + (c * 7 % 5)) * (kind == "loud" ? (c % 8 == 2 ? 20.0 : 1.0)
                                                : (c % 11 == 3 ? 6.0 : 1.0));
    std::vector<float> h(k * k, 0.0f);
    if (kind != "zero")
      for (long a = 0; a < k; ++a)
        for (long b = 0; b < k; ++b)
          h[a * k + b] = static_cast<float>(kTokens * scale[a] * scale[b] *
                                            std::pow(0.6, std::labs(a - b)));
    if (kind == "nan")
      h[1] = NAN;
    std::vector<float> diag(k);
    for (long c = 0; c < k; ++c)
      diag[c] = h[c * k + c];
    const std::vector<float> *hp = hold(std::move(h));
    w.addTensor(weights[0] + ".hessian", {uint64_t(k), uint64_t(k)}, 0,
                hp->data(), hp->size() * sizeof(float));
    const std::vector<float> *dp = hold(diag);
    const std::vector<float> *cp = hold({float(kTokens)});
    for (const std::string &name : weights) {
      // dangling: the key names a tensor the file lacks.
      w.set("lowbit.hessian.of." + name,
            Value::makeString(weights[0] +
                              (kind == "dangling" ? ".missing" : ".hessian")));
      if (imatrix) {
        w.addTensor(name + ".in_sum2", {uint64_t(k)}, 0, dp->data(),
                    dp->size() * sizeof(float));
        w.addTensor(name + ".counts", {1}, 0, cp->data(), sizeof(float));
      }
    }
  }
  Error err;
  if (!w.write(out, err))
    return fail(err.message());
  return 0;
}
