//===- IQTables.h - The i-quant grids, for code that generates kernels -*- C++ -*-===//
//
// Read-only access to the lattice grids and the sign table of ggml's
// i-quants (one definition: lib/Formats/IQGrids.cpp), so the kernel
// generator embeds exactly the codec library's values.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FORMATS_IQTABLES_H
#define LOWBIT_FORMATS_IQTABLES_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>

namespace lowbit::formats {

struct LatticeGrid {
  const char *name = nullptr; // "iq2xxs", ... (IQ1_S and IQ1_M: "iq1s")
  int64_t points = 0;
  /// Entries of 8 one-byte coordinates (IQ2_*, IQ1_*: signed) or of 4
  /// (IQ3_*); the other pointer is null.
  const uint64_t *grid64 = nullptr;
  const uint32_t *grid32 = nullptr;
};

/// The grid of a lattice i-quant (IQ1_S .. IQ3_S); empty for other formats.
LatticeGrid latticeGrid(Format format);
/// ggml's ksigns_iq2xs: 128 entries, 7 stored sign bits -> 8 (even parity).
const uint8_t *latticeSignTable();

} // namespace lowbit::formats

#endif // LOWBIT_FORMATS_IQTABLES_H
