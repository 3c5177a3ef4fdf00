//===- Parallel.h - The parallel-for of the MLIR-free libraries -*- C++ -*-===//
//
// One parallel-for for one-off work (codecs, GPTQ/AWQ, damage sums): tasks
// are handed out through an atomic counter so uneven tasks (rows of a
// triangular matrix) balance; the caller's thread works too. (The executor's
// ThreadPool keeps its threads between the many small loops of a forward
// pass instead.)
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_SUPPORT_PARALLEL_H
#define LOWBIT_SUPPORT_PARALLEL_H

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace lowbit {

inline int resolveThreads(int threads) {
  if (threads > 0)
    return threads;
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

/// Runs fn(task, worker) for task in [0, count) on up to `threads` workers
/// (worker < threads).
template <typename Fn>
void parallelFor(int64_t count, int threads, const Fn &fn) {
  int workers = static_cast<int>(
      std::min<int64_t>(resolveThreads(threads), std::max<int64_t>(count, 1)));
  std::atomic<int64_t> next{0};
  auto body = [&](int worker) {
    for (int64_t task; (task = next.fetch_add(1)) < count;)
      fn(task, worker);
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w)
    pool.emplace_back(body, w);
  body(0);
  for (std::thread &t : pool)
    t.join();
}

} // namespace lowbit

#endif // LOWBIT_SUPPORT_PARALLEL_H
