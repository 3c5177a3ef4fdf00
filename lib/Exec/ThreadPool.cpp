//===- ThreadPool.cpp - Fork-join pool for the executor's ops -------------===//

#include "lowbit/Exec/ThreadPool.h"

namespace lowbit::exec {

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
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::drain(int thread) {
  while (true) {
    int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= count_)
      return;
    (*fn_)(task, thread);
  }
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_)
        return;
      seen = generation_;
    }
    drain(index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ == 0)
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    active_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  drain(0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return active_ == 0; });
  fn_ = nullptr;
}

} // namespace lowbit::exec
