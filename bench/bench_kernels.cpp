//===- bench_kernels.cpp - Generated kernels vs memory read bandwidth -----===//
//
// Generates the native kernels of 4096x4096 weights (Q4_0, Q4_K, Q8_0 by
// default) for a target with the in-process codegen, then measures in one
// run:
//   - the machine's memory read bandwidth: a STREAM-like read loop (sum of
//     a 2 GiB buffer with 256-bit loads), on 1 and on N threads;
//   - each kernel for 1 token (decode), 1 and N threads splitting the rows,
//     as GB/s of weight bytes streamed. The weights rotate through copies
//     totalling >= 2 GiB so every call reads them from DRAM, not from L3;
//   - each kernel for 64 tokens (prompt), as integer GOP/s (2 N K t / s),
//     and as a fraction of the int8 dot-product peak: a tight loop of
//     independent 256-bit vpdpbusd (AVX2: vpmaddubsw + vpmaddwd + vpaddd)
//     on the same threads.
// --hot keeps one copy of the weights (and a 32 MiB read buffer): cache-
// resident, it measures the kernels' compute throughput instead.
// Prints a Markdown table (bench/results/kernels.md keeps one).
//
// Usage: bench-kernels [--target NAME] [--threads N] [--formats q4_0,q4_k]
//                      [--seconds S]
//
//===----------------------------------------------------------------------===//
#include "LowBit/Codegen/Codegen.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/Target/KernelABI.h"
#include "lowbit/Target/TargetTable.h"

#include "LowBit/IR/LowBit.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace lowbit;
using Clock = std::chrono::steady_clock;

namespace {

/// A fixed team of threads that run a function on [0, n) together; the
/// calling thread is member 0. Workers spin briefly for the next job (a
/// hand-off in microseconds), then sleep on a condition variable so that an
/// idle team does not take a core from the measurement.
class Team {
public:
  explicit Team(int n) : n(n) {
    for (int i = 1; i < n; ++i)
      workers.emplace_back([this, i] { loop(i); });
  }
  ~Team() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      generation.fetch_add(1);
    }
    wake.notify_all();
    for (std::thread &t : workers)
      t.join();
  }
  void run(const std::function<void(int)> &f) {
    job = &f;
    done.store(0);
    {
      std::lock_guard<std::mutex> lock(mutex);
      generation.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    f(0);
    while (done.load(std::memory_order_acquire) != n - 1)
      std::this_thread::yield();
  }
  int size() const { return n; }

private:
  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = generation.load(std::memory_order_acquire);
      for (int spin = 0; g == seen && spin < 20000; ++spin)
        g = generation.load(std::memory_order_acquire);
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return generation.load() != seen; });
        g = generation.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop)
        return;
      (*job)(id);
      done.fetch_add(1, std::memory_order_release);
    }
  }
  int n;
  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> done{0};
  const std::function<void(int)> *job = nullptr;
  bool stop = false;
};

#if defined(__x86_64__)
__attribute__((target("avx2"))) double readSum(const uint8_t *p, size_t n) {
  __m256i acc[8];
  for (__m256i &a : acc)
    a = _mm256_setzero_si256();
  for (size_t i = 0; i + 256 <= n; i += 256)
    for (int k = 0; k < 8; ++k)
      acc[k] = _mm256_add_epi64(
          acc[k],
          _mm256_load_si256(reinterpret_cast<const __m256i *>(p + i) + k));
  __m256i s = acc[0];
  for (int k = 1; k < 8; ++k)
    s = _mm256_add_epi64(s, acc[k]);
  alignas(32) int64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i *>(out), s);
  return static_cast<double>(out[0] + out[1] + out[2] + out[3]);
}
#else
double readSum(const uint8_t *p, size_t n) {
  const uint64_t *q = reinterpret_cast<const uint64_t *>(p);
  uint64_t acc[8] = {};
  for (size_t i = 0; i + 8 <= n / 8; i += 8)
    for (int k = 0; k < 8; ++k)
      acc[k] += q[i + k];
  uint64_t s = 0;
  for (uint64_t a : acc)
    s += a;
  return static_cast<double>(s);
}
#endif

/// Median and best read bandwidth (GB/s) of `team` reading slices of
/// `slice` bytes of `buf` (`bytes` in all, cycled) for `seconds`: the same
/// shape of measurement as a kernel call streaming its weights.
struct Bandwidth {
  double median = 0, best = 0;
};
Bandwidth readBandwidth(Team &team, const uint8_t *buf, size_t bytes,
                        size_t slice, double seconds) {
  std::vector<double> sink(team.size()), times;
  slice = std::min(slice, bytes) / 256 / team.size() * 256 * team.size();
  const size_t slices = bytes / slice;
  auto start = Clock::now();
  for (size_t i = 0;
       std::chrono::duration<double>(Clock::now() - start).count() < seconds ||
       times.size() < 5;
       ++i) {
    const uint8_t *p = buf + (i % slices) * slice;
    auto t0 = Clock::now();
    team.run([&](int id) {
      size_t per = slice / team.size();
      sink[id] += readSum(p + id * per, per);
    });
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  if (sink[0] == 12345.0)
    std::printf(" ");
  std::sort(times.begin(), times.end());
  return {slice / times[times.size() / 2] / 1e9, slice / times.front() / 1e9};
}

/// Chains of the peak loop: more than latency x throughput of the dot
/// product, so the loop measures throughput.
constexpr int kPeakChains = 12;
constexpr int64_t kPeakIterations = 1 << 16;

#if defined(__x86_64__)
/// kPeakIterations x kPeakChains 256-bit vpdpbusd (32 u8 x s8 products each)
/// on independent accumulators: the machine's int8 dot-product peak.
__attribute__((target("avx512f,avx512vl,avx512vnni"))) int32_t
peakLoopVnni(int32_t seed) {
  __m256i acc[kPeakChains];
  const __m256i a = _mm256_set1_epi32(seed), b = _mm256_set1_epi32(seed + 1);
  for (__m256i &x : acc)
    x = _mm256_set1_epi32(seed);
  for (int64_t i = 0; i < kPeakIterations; ++i)
    for (int c = 0; c < kPeakChains; ++c) {
      acc[c] = _mm256_dpbusd_epi32(acc[c], a, b);
      asm volatile("" : "+x"(acc[c])); // keep every step
    }
  __m256i s = acc[0];
  for (int c = 1; c < kPeakChains; ++c)
    s = _mm256_add_epi32(s, acc[c]);
  return _mm256_extract_epi32(s, 0);
}
/// The AVX2 form of the same 32 products: vpmaddubsw, vpmaddwd, vpaddd.
__attribute__((target("avx2"))) int32_t peakLoopAvx2(int32_t seed) {
  __m256i acc[kPeakChains];
  __m256i a = _mm256_set1_epi32(seed);
  const __m256i b = _mm256_set1_epi32(seed + 1), ones = _mm256_set1_epi16(1);
  for (__m256i &x : acc)
    x = _mm256_set1_epi32(seed);
  for (int64_t i = 0; i < kPeakIterations; ++i)
    for (int c = 0; c < kPeakChains; ++c) {
      // `a` may change (it does not): the products cannot be hoisted.
      asm volatile("" : "+x"(a));
      acc[c] = _mm256_add_epi32(
          acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
      asm volatile("" : "+x"(acc[c]));
    }
  __m256i s = acc[0];
  for (int c = 1; c < kPeakChains; ++c)
    s = _mm256_add_epi32(s, acc[c]);
  return _mm256_extract_epi32(s, 0);
}
#endif

/// Integer GOP/s (2 per u8 x s8 product) of `team` running the peak loop of
/// the widest dot product `isa` has; 0 where there is none.
double int8Peak(Team &team, target::ISA isa, double seconds) {
#if defined(__x86_64__)
  const bool vnni = isa == target::ISA::X86AVX512VNNI &&
                    __builtin_cpu_supports("avx512vnni");
  if (!vnni && !__builtin_cpu_supports("avx2"))
    return 0;
  std::vector<int32_t> sink(team.size());
  std::vector<double> rates;
  auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() <
             seconds ||
         rates.size() < 5) {
    auto t0 = Clock::now();
    team.run([&](int id) {
      sink[id] += vnni ? peakLoopVnni(id + 1) : peakLoopAvx2(id + 1);
    });
    const double secs =
        std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(2.0 * 32 * kPeakChains * kPeakIterations * team.size() /
                    secs / 1e9);
  }
  if (sink[0] == 12345)
    std::printf(" ");
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
#else
  (void)team;
  (void)isa;
  (void)seconds;
  return 0;
#endif
}

std::string qtype(formats::Format f, int64_t n, int64_t k, uint32_t r) {
  std::string t = "!lowbit.qtensor<" + std::to_string(n) + "x" +
                  std::to_string(k) + " : " + formats::info(f).name;
  if (r != 1)
    t += ", #lowbit.layout<rows = " + std::to_string(r) + ">";
  return t + ">";
}

struct Result {
  std::string format;
  double bytes = 0;
  double gbs[2] = {0, 0};     // decode, 1 and N threads (median call)
  double bestGbs[2] = {0, 0}; // decode, fastest call
  Bandwidth read[2];          // read bandwidth measured just before
  double gops[2] = {0, 0};    // prompt (64 tokens), 1 and N threads
  std::string kernel;
};

} // namespace

int main(int argc, char **argv) {
  std::string targetName = "host";
  int threads = 2;
  double seconds = 1.0;
  bool hot = false; // one copy of the weights: cache-resident, compute-bound
  std::vector<std::string> formatNames = {"q4_0", "q4_k", "q8_0"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench-kernels: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target")
      targetName = next();
    else if (a == "--threads")
      threads = std::max(1, std::atoi(next().c_str()));
    else if (a == "--seconds")
      seconds = std::atof(next().c_str());
    else if (a == "--hot")
      hot = true;
    else if (a == "--formats") {
      formatNames.clear();
      std::stringstream ss(next());
      for (std::string f; std::getline(ss, f, ',');)
        formatNames.push_back(f);
    } else {
      std::fprintf(stderr,
                   "usage: bench-kernels [--target NAME] [--threads N] "
                   "[--formats q4_0,q4_k,q8_0] [--seconds S] [--hot]\n");
      return 2;
    }
  }
  const target::TargetInfo *t = target::findTarget(targetName);
  if (!t || !t->hostSupports()) {
    std::fprintf(stderr,
                 "bench-kernels: target '%s' unknown or not runnable "
                 "here (known: %s)\n",
                 targetName.c_str(), target::targetNames().c_str());
    return 2;
  }
  const int64_t N = 4096, K = 4096;

  // 1. Kernels.
  std::vector<formats::Format> fmts;
  std::ostringstream ir;
  for (const std::string &name : formatNames) {
    const formats::FormatInfo *fi = formats::findByName(name);
    if (!fi || !t->find(fi->format)) {
      std::fprintf(stderr, "bench-kernels: no %s kernel on %s\n", name.c_str(),
                   t->name);
      return 2;
    }
    fmts.push_back(fi->format);
  }
  for (size_t i = 0; i < fmts.size(); ++i) {
    std::string ty = qtype(fmts[i], N, K, t->find(fmts[i])->interleaveRows);
    ir << "lowbit.global_weight @w" << i << " : " << ty
       << " = #lowbit.external<\"/nonexistent\", offset = 0, size = "
       << formats::rowBytes(formats::info(fmts[i]), K) * N << ">\n";
  }
  ir << "func.func @f(%x: tensor<?x" << K << "xf32>) {\n";
  for (size_t i = 0; i < fmts.size(); ++i) {
    std::string ty = qtype(fmts[i], N, K, t->find(fmts[i])->interleaveRows);
    ir << "  %w" << i << " = lowbit.weight @w" << i << " : " << ty << "\n"
       << "  %y" << i << " = lowbit.matmul %x, %w" << i << " : tensor<?x" << K
       << "xf32>, " << ty << " -> tensor<?x" << N << "xf32>\n";
  }
  ir << "  return\n}\n";
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::lowbit::LowBitDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(ir.str(), &ctx);
  if (!module)
    return 1;
  char soPath[] = "/tmp/lowbit-bench-XXXXXX.so";
  int fd = mkstemps(soPath, 3);
  close(fd);
  codegen::KernelManifest manifest;
  std::string err;
  auto c0 = Clock::now();
  if (!codegen::emitNativeKernels(*module, *t, soPath, manifest, err)) {
    std::fprintf(stderr, "bench-kernels: %s\n", err.c_str());
    return 1;
  }
  double compileSeconds =
      std::chrono::duration<double>(Clock::now() - c0).count();
  void *so = dlopen(soPath, RTLD_NOW);
  unlink(soPath);
  if (!so) {
    std::fprintf(stderr, "bench-kernels: %s\n", dlerror());
    return 1;
  }

  // 2. Memory read bandwidth.
  Team one(1), team(threads);
  const size_t readBytes = hot ? size_t(32) << 20 : size_t(2) << 30;
  uint8_t *buf = static_cast<uint8_t *>(std::aligned_alloc(64, readBytes));
  // Random contents (identical pages could be merged by the host).
  {
    std::mt19937_64 fill(11);
    uint64_t *words = reinterpret_cast<uint64_t *>(buf);
    for (size_t i = 0; i < readBytes / 8; ++i)
      words[i] = fill();
  }

  // 3. Kernels.
  std::mt19937_64 rng(7);
  std::normal_distribution<float> gauss(0.f, 1.f);
  std::vector<float> x(64 * K);
  for (float &v : x)
    v = gauss(rng);
  std::vector<Result> results;
  for (size_t i = 0; i < fmts.size(); ++i) {
    const codegen::KernelInfo &k = manifest.kernels[i];
    auto kernel = reinterpret_cast<lb_matmul_kernel_fn>(
        dlsym(so, k.kernelSymbol.c_str()));
    auto quant = reinterpret_cast<lb_quantize_act_fn>(
        dlsym(so, k.quantizerSymbol.c_str()));
    const formats::FormatInfo &fi = formats::info(fmts[i]);
    const size_t bytes = formats::rowBytes(fi, K) * N;
    std::vector<float> w(N * K);
    for (float &v : w)
      v = gauss(rng);
    std::vector<uint8_t> plain(bytes);
    formats::quantizeRows(fmts[i], w.data(), plain.data(), N, K, nullptr, 0);
    const size_t copies =
        hot ? 1 : std::max<size_t>(2, (size_t(2) << 30) / bytes);
    // Every copy is different (the blocks rotated by a different amount):
    // identical pages could be merged by the host (KSM) and then be served
    // from cache instead of DRAM.
    std::vector<uint8_t *> pool(copies);
    std::vector<uint8_t> rotated(bytes);
    const size_t blockBytes = fi.blockBytes, blocks = bytes / blockBytes;
    for (size_t c = 0; c < copies; ++c) {
      const size_t shift = (c * 7919 % blocks) * blockBytes;
      std::memcpy(rotated.data(), plain.data() + shift, bytes - shift);
      std::memcpy(rotated.data() + bytes - shift, plain.data(), shift);
      pool[c] = static_cast<uint8_t *>(
          std::aligned_alloc(64, (bytes + 63) / 64 * 64));
      formats::packRows(fmts[i], rotated.data(), pool[c], N, K,
                        k.interleaveRows);
    }
    const size_t actBytes = formats::rowBytes(formats::info(k.activation), K);
    std::vector<uint8_t> xq(64 * actBytes);
    std::vector<float> y(64 * N);
    Result r;
    r.format = fi.name;
    r.bytes = bytes;
    r.kernel = k.kernelSymbol;
    Team *teams[2] = {&one, &team};
    for (int ti = 0; ti < 2; ++ti) {
      Team &tm = *teams[ti];
      const int64_t unit = 16;
      auto call = [&](const uint8_t *wp, int64_t tokens) {
        tm.run([&](int id) {
          int64_t per = (N / tm.size() + unit - 1) / unit * unit;
          int64_t r0 = std::min<int64_t>(N, id * per),
                  r1 = std::min<int64_t>(N, r0 + per);
          if (r0 < r1)
            kernel(wp, x.data(), xq.data(), y.data(), tokens, K, N, r0, r1);
        });
      };
      // Per-call times; the median is reported (robust to other processes
      // taking the cores for a while), the best in the JSON-ish footer.
      auto timeCalls = [&](int64_t tokens, std::vector<double> &times) {
        size_t next = 0;
        auto start = Clock::now();
        while (std::chrono::duration<double>(Clock::now() - start).count() <
                   seconds ||
               times.size() < 5) {
          auto c0 = Clock::now();
          if (tokens > 1)
            quant(x.data(), xq.data(), tokens, K, K);
          call(pool[next], tokens);
          times.push_back(
              std::chrono::duration<double>(Clock::now() - c0).count());
          next = (next + 1) % copies;
        }
        std::sort(times.begin(), times.end());
      };
      // The read bandwidth right before, slices as large as the weights.
      r.read[ti] = readBandwidth(tm, buf, readBytes, bytes, seconds);
      // Decode: one token, weights from DRAM (rotating copies).
      quant(x.data(), xq.data(), 1, K, K);
      std::vector<double> times;
      timeCalls(1, times);
      r.gbs[ti] = bytes / times[times.size() / 2] / 1e9;
      r.bestGbs[ti] = bytes / times.front() / 1e9;
      // Prompt: 64 tokens (quantization included).
      times.clear();
      timeCalls(64, times);
      r.gops[ti] = 2.0 * N * K * 64 / times[times.size() / 2] / 1e9;
    }
    for (uint8_t *p : pool)
      std::free(p);
    results.push_back(r);
  }
  std::free(buf);
  // The int8 dot-product peak with the same teams, after the kernels.
  const double peak[2] = {int8Peak(one, t->isa, seconds),
                          int8Peak(team, t->isa, seconds)};

  std::printf("Target %s (%s); kernels generated in %.2f s.\n\n", t->name,
              t->cpu, compileSeconds);
  std::printf("Memory read bandwidth: a STREAM-like read (sum of 64-bit "
              "words, 256-bit loads) of slices as large as the weights, "
              "cycling through %zu MiB,\nmeasured just before each kernel "
              "with the same threads. Median call (fastest call in "
              "parentheses).\n\n",
              readBytes >> 20);
  std::printf("int8 dot-product peak (%d independent 256-bit %s per "
              "thread): %.0f GOP/s on 1 thread, %.0f on %d.\n\n",
              kPeakChains,
              t->isa == target::ISA::X86AVX512VNNI ? "vpdpbusd"
                                                   : "vpmaddubsw+vpmaddwd",
              peak[0], peak[1], threads);
  std::printf("| weights 4096x4096 | MiB | threads | read GB/s | decode GB/s "
              "| decode / read | prompt t=64 GOP/s | prompt / int8 peak |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Result &r : results)
    for (int ti = 0; ti < 2; ++ti)
      std::printf("| %s | %.1f | %d | %.1f (%.1f) | %.1f (%.1f) | %.0f%% "
                  "(%.0f%%) | %.0f | %.0f%% |\n",
                  r.format.c_str(), r.bytes / (1 << 20), ti ? threads : 1,
                  r.read[ti].median, r.read[ti].best, r.gbs[ti], r.bestGbs[ti],
                  100 * r.gbs[ti] / r.read[ti].median,
                  100 * r.bestGbs[ti] / r.read[ti].best, r.gops[ti],
                  peak[ti] > 0 ? 100 * r.gops[ti] / peak[ti] : 0.0);
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) > 0)
    std::printf("\nLoad average at the end: %.2f (other processes share "
                "the cores when it is above 0).",
                load[0]);
  std::printf("\n");
  return 0;
}
