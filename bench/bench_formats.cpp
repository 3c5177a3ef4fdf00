//===- bench_formats.cpp - Throughput of the row codecs -------------------===//
//
// Encodes and decodes a Gaussian matrix with every format that has a codec
// and prints, per format: encode MB/s on one thread and on all threads,
// decode MB/s on one thread, bits per weight, and the one-thread encode speed
// relative to Q8_0's encoder (the baseline) in the same run. MB/s counts the
// f32 side (4 bytes per weight) so formats compare on equal work.
//
//   bench-formats [--rows N] [--cols N] [--threads N] [--importance]
//                 [--min-time SECONDS] [format...]
//
//===----------------------------------------------------------------------===//
#include "lowbit/Formats/Formats.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace lowbit::formats;

namespace {

struct Options {
  int64_t rows = 256;
  int64_t cols = 4096;
  int threads = 0; // 0 = hardware concurrency.
  bool importance = false;
  double minTime = 0.3;
  std::vector<std::string> formats;
};

std::vector<float> gaussian(size_t count, uint64_t seed) {
  std::vector<float> out;
  out.reserve(count + 1);
  uint64_t state = seed;
  auto uniform = [&] {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return ((state * 0x2545F4914F6CDD1DULL >> 11) + 0.5) * 0x1.0p-53;
  };
  while (out.size() < count) {
    double r = std::sqrt(-2 * std::log(uniform()));
    double t = 6.283185307179586 * uniform();
    out.push_back(static_cast<float>(r * std::cos(t)));
    out.push_back(static_cast<float>(r * std::sin(t)));
  }
  out.resize(count);
  return out;
}

/// Seconds per call of `body`, repeated until `minTime` has passed.
template <typename Body> double timePerCall(double minTime, Body body) {
  using Clock = std::chrono::steady_clock;
  body(); // Warm caches and page in the buffers.
  int64_t calls = 0;
  auto start = Clock::now();
  double elapsed = 0;
  do {
    body();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < minTime);
  return elapsed / calls;
}

struct Result {
  const FormatInfo *format;
  double encode1, encodeAll, decode1; // MB/s of f32.
  double rmse;
};

bool parse(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    const char *v = nullptr;
    if (a == "--rows" && (v = next()))
      o.rows = std::atoll(v);
    else if (a == "--cols" && (v = next()))
      o.cols = std::atoll(v);
    else if (a == "--threads" && (v = next()))
      o.threads = std::atoi(v);
    else if (a == "--min-time" && (v = next()))
      o.minTime = std::atof(v);
    else if (a == "--importance")
      o.importance = true;
    else if (a == "-h" || a == "--help")
      return false;
    else if (a.rfind("--", 0) == 0)
      return false;
    else if (!findByName(a)) {
      std::fprintf(stderr, "unknown format '%s'\n", a.c_str());
      return false;
    } else
      o.formats.push_back(a);
  }
  return o.rows > 0 && o.cols > 0;
}

} // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::fprintf(stderr,
                 "usage: %s [--rows N] [--cols N] [--threads N] "
                 "[--importance] [--min-time S] [format...]\n",
                 argv[0]);
    return 2;
  }
  // Every block size divides 256; round the row length to it.
  opt.cols = (opt.cols + 255) / 256 * 256;
  const int64_t count = opt.rows * opt.cols;
  const double mb = count * 4.0 / 1e6;
  std::vector<float> src = gaussian(count, 12345), dst(count);
  std::vector<float> importance = gaussian(opt.cols, 777);
  for (float &w : importance)
    w = 0.1f + w * w;
  const float *imp = opt.importance ? importance.data() : nullptr;
  const unsigned hw = std::thread::hardware_concurrency();

  std::vector<const FormatInfo *> selected;
  size_t n;
  const FormatInfo *all = allFormats(n);
  for (size_t i = 0; i < n; ++i)
    if (hasCodec(all[i].format))
      selected.push_back(&all[i]);
  if (!opt.formats.empty()) {
    selected.clear();
    for (const std::string &name : opt.formats)
      selected.push_back(findByName(name));
  }
  // The baseline is always measured, first.
  const FormatInfo &baseline = info(Format::Q8_0);

  auto run = [&](const FormatInfo &f) {
    Result r{&f, 0, 0, 0, 0};
    std::vector<uint8_t> bytes(opt.rows * rowBytes(f, opt.cols));
    std::string why;
    auto encode = [&](int threads) {
      if (!quantizeRows(f.format, src.data(), bytes.data(), opt.rows, opt.cols,
                        imp, threads, &why)) {
        std::fprintf(stderr, "%s: %s\n", f.name, why.c_str());
        std::exit(1);
      }
    };
    r.encode1 = mb / timePerCall(opt.minTime, [&] { encode(1); });
    r.encodeAll = mb / timePerCall(opt.minTime, [&] { encode(opt.threads); });
    r.decode1 = mb / timePerCall(opt.minTime, [&] {
                  dequantizeRows(f.format, bytes.data(), dst.data(), opt.rows,
                                 opt.cols, 1);
                });
    double err = 0, sig = 0;
    for (int64_t i = 0; i < count; ++i) {
      double d = static_cast<double>(dst[i]) - src[i];
      err += d * d;
      sig += static_cast<double>(src[i]) * src[i];
    }
    r.rmse = std::sqrt(err / sig);
    return r;
  };

  const Result base = run(baseline);
  std::printf(
      "lowbit row codecs: %lld x %lld f32 (%.1f MB), %s, %u hardware "
      "threads%s\n",
      static_cast<long long>(opt.rows), static_cast<long long>(opt.cols), mb,
      opt.threads > 0 ? (std::to_string(opt.threads) + " threads").c_str()
                      : "all threads",
      hw, opt.importance ? ", with importance" : "");
  std::printf("MB/s of f32 weights; ratio = 1-thread encode / %s 1-thread "
              "encode (baseline)\n\n",
              baseline.name);
  std::printf("%-14s %12s %12s %12s %8s %10s %10s\n", "format", "enc MB/s 1T",
              "enc MB/s all", "dec MB/s 1T", "bpw", "vs q8_0", "rel RMSE");
  for (const FormatInfo *f : selected) {
    Result r = f == &baseline ? base : run(*f);
    std::printf("%-14s %12.1f %12.1f %12.1f %8.4f %10.3f %10.5f\n", f->name,
                r.encode1, r.encodeAll, r.decode1, f->bitsPerWeight(),
                r.encode1 / base.encode1, r.rmse);
  }
  return 0;
}
