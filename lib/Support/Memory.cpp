//===- Memory.cpp - How much memory the machine has -----------------------===//

#include "lowbit/Support/Memory.h"

#include <cstdio>
#include <unistd.h>

namespace lowbit {

uint64_t physicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || pageSize <= 0)
    return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize);
}

std::string formatBytes(double bytes) {
  static const char *const kUnits[] = {"bytes", "KiB", "MiB", "GiB",
                                       "TiB",   "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 6) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes,
                kUnits[unit]);
  return text;
}

bool fitsInMemory(double bytes, const std::string &what, std::string &err) {
  const uint64_t physical = physicalMemoryBytes();
  if (physical == 0 || bytes <= static_cast<double>(physical))
    return true;
  err = what + " needs " + formatBytes(bytes) + ", more than this machine's " +
        formatBytes(static_cast<double>(physical)) + " of memory";
  return false;
}

} // namespace lowbit
