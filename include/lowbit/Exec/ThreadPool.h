//===- ThreadPool.h - Fork-join pool for the executor's ops -----*- C++ -*-===//
//
// A fixed set of threads that run one parallel loop at a time; the calling
// thread takes part as thread 0. Tasks are handed out dynamically in short
// runs of consecutive tasks (neighbouring outputs stay on one thread, which
// avoids false sharing), so which thread runs a task varies from run to run:
// callers make every task write its own outputs with a fixed order of
// arithmetic, which keeps results independent of the thread count and of
// scheduling.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_THREADPOOL_H
#define LOWBIT_EXEC_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit::exec {

class ThreadPool {
public:
  /// `threads` <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(task, thread) for every task in [0, count), thread in
  /// [0, size()); returns when all have finished. Not reentrant. With
  /// `parallel` false everything runs on the caller (for loops too small to
  /// pay for waking the workers).
  void run(int64_t count, const std::function<void(int64_t, int)> &fn,
           bool parallel = true);

private:
  void workerLoop(int index);
  void drain(int thread);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  std::atomic<uint64_t> generation_{0}; // bumped to start a job
  std::atomic<bool> stop_{false};
  std::atomic<int> active_{0}; // workers still inside the current job
  const std::function<void(int64_t, int)> *fn_ = nullptr;
  int64_t count_ = 0;
  int64_t grain_ = 1; // consecutive tasks taken at once
  std::atomic<int64_t> next_{0};
};

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_THREADPOOL_H
