//===- AllocationTracker.h - Largest allocation during a call ---*- C++ -*-===//
//
// The "hostile count" tests check that a reader never asks for a large block,
// so a bad count in a file cannot turn into a big allocation. This replaces
// the global operator new/delete: include it in exactly ONE source file of a
// test binary.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TEST_UNIT_COMMON_ALLOCATIONTRACKER_H
#define LOWBIT_TEST_UNIT_COMMON_ALLOCATIONTRACKER_H

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace lowbit::test {
inline std::atomic<bool> gTrackAllocations{false};
inline std::atomic<size_t> gLargestAllocation{0};

inline void *trackedAlloc(size_t n) {
  if (gTrackAllocations.load(std::memory_order_relaxed)) {
    size_t prev = gLargestAllocation.load(std::memory_order_relaxed);
    while (n > prev && !gLargestAllocation.compare_exchange_weak(prev, n)) {
    }
  }
  if (void *p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}

/// Largest single allocation made while running `f`.
template <typename F> size_t largestAllocationDuring(F f) {
  gLargestAllocation = 0;
  gTrackAllocations = true;
  f();
  gTrackAllocations = false;
  return gLargestAllocation;
}
} // namespace lowbit::test

void *operator new(size_t n) { return lowbit::test::trackedAlloc(n); }
void *operator new[](size_t n) { return lowbit::test::trackedAlloc(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
void operator delete[](void *p, size_t) noexcept { std::free(p); }

#endif // LOWBIT_TEST_UNIT_COMMON_ALLOCATIONTRACKER_H
