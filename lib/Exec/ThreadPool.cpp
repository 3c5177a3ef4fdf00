//===- ThreadPool.cpp - Fork-join pool for the executor's ops -------------===//
//
// A forward pass runs tens of parallel loops per layer, each a fraction of a
// millisecond, so waking sleeping threads for every loop would cost more than
// the loops. Workers and the caller therefore spin briefly on an atomic
// before falling back to the condition variables.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/ThreadPool.h"

#include <algorithm>

namespace lowbit::exec {

namespace {
/// Spin iterations before blocking: on the order of 100 microseconds.
constexpr int kSpinIterations = 1 << 12;

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
} // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0)
    threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0)
    threads = 1;
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  start_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::drain(int thread) {
  while (true) {
    int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= count_)
      return;
    const int64_t end = std::min(count_, begin + grain_);
    for (int64_t task = begin; task < end; ++task)
      (*fn_)(task, thread);
  }
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spins = 0; gen == seen && !stop_.load(std::memory_order_relaxed);
         gen = generation_.load(std::memory_order_acquire)) {
      if (++spins < kSpinIterations) {
        cpuRelax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock,
                  [&] { return stop_.load() || generation_.load() != seen; });
      spins = 0;
    }
    if (stop_.load())
      return;
    seen = gen;
    drain(index);
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t count, const std::function<void(int64_t, int)> &fn,
                     bool parallel) {
  if (count <= 0)
    return;
  if (!parallel || workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i)
      fn(i, 0);
    return;
  }
  fn_ = &fn;
  count_ = count;
  // About four runs per thread: contiguous enough, still balanced.
  grain_ = std::max<int64_t>(1, count / (4 * size()));
  next_.store(0, std::memory_order_relaxed);
  active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the lock so that a worker about to block cannot miss it.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_.notify_all();
  drain(0);
  for (int spins = 0; active_.load(std::memory_order_acquire) != 0;) {
    if (++spins < kSpinIterations) {
      cpuRelax();
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return active_.load() == 0; });
  }
  fn_ = nullptr;
}

} // namespace lowbit::exec
