//===- Memory.h - How much memory the machine has ---------------*- C++ -*-===//
//
// For refusing, before allocating, sizes read from files or options that no
// machine of this size could hold (a context of 2^31 tokens, a hand-written
// graph with a billion-wide activation): a clear message instead of an
// allocation that fails late or lets the OOM killer end the process.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_SUPPORT_MEMORY_H
#define LOWBIT_SUPPORT_MEMORY_H

#include <cstdint>
#include <string>

namespace lowbit {

/// Physical memory of the machine in bytes (0 when it cannot be told).
uint64_t physicalMemoryBytes();

/// "1.5 GiB", "300 MiB": a size for messages.
std::string formatBytes(double bytes);

/// False with `err` ("<what> needs X, more than this machine's Y of
/// memory") when `bytes` exceed the physical memory.
bool fitsInMemory(double bytes, const std::string &what, std::string &err);

} // namespace lowbit

#endif // LOWBIT_SUPPORT_MEMORY_H
