//===- bandwidth.cpp - Memory read bandwidth, STREAM-style ----------------===//
//
// Token generation streams every weight once per token, so its speed limit
// is the machine's read bandwidth. This measures it the way a matmul kernel
// reads weights: T threads each sum their own contiguous slice of a buffer
// far larger than the caches (several independent accumulators, so the
// loads, not the adds, are the bottleneck). Prints the best of R runs.
//
//   bandwidth [-t THREADS] [-m MIB] [-r RUNS] [--json]
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

/// Sum of a slice with 8 accumulators of 4 lanes (vectorised by the
/// compiler; -O3 -march=native).
uint64_t sumSlice(const uint64_t *p, size_t n) {
  uint64_t acc[32] = {};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j)
      acc[j] += p[i + j];
  for (; i < n; ++i)
    acc[0] += p[i];
  uint64_t s = 0;
  for (uint64_t a : acc)
    s += a;
  return s;
}

} // namespace

int main(int argc, char **argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  size_t mib = 1024;
  int runs = 10;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-t") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "-m") && i + 1 < argc)
      mib = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "-r") && i + 1 < argc)
      runs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--json"))
      json = true;
    else {
      std::fprintf(stderr,
                   "usage: bandwidth [-t THREADS] [-m MIB] [-r RUNS] [--json]\n");
      return 2;
    }
  }
  threads = std::max(threads, 1);
  const size_t words = mib * (1 << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(words);
  // Touch every page from the thread that will read it (first-touch NUMA
  // placement) and give the sum something to depend on.
  const size_t per = (words + threads - 1) / threads;
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (size_t i = t * per; i < std::min(words, (t + 1) * per); ++i)
          buf[i] = i * 0x9E3779B97F4A7C15ull;
      });
    for (auto &th : pool)
      th.join();
  }
  double best = 0;
  uint64_t sink = 0;
  for (int r = 0; r < runs; ++r) {
    std::atomic<uint64_t> total{0};
    std::vector<std::thread> pool;
    auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        size_t b = t * per, e = std::min(words, b + per);
        total += sumSlice(buf.data() + b, e > b ? e - b : 0);
      });
    for (auto &th : pool)
      th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             t0)
                   .count();
    sink += total.load();
    best = std::max(best, words * sizeof(uint64_t) / s / 1e9);
  }
  if (json)
    std::printf("{\"threads\": %d, \"mib\": %zu, \"runs\": %d, "
                "\"read_gb_per_s\": %.3f, \"checksum\": %llu}\n",
                threads, mib, runs, best,
                static_cast<unsigned long long>(sink & 0xffff));
  else
    std::printf("read bandwidth: %.2f GB/s (%d threads, %zu MiB, best of %d)\n",
                best, threads, mib, runs);
  return 0;
}
