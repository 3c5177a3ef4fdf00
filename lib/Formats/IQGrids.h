//===- IQGrids.h - Lattice codebooks of ggml's i-quants ---------*- C++ -*-===//
//
// The grids of IQ2_XXS, IQ2_XS, IQ2_S (8 coordinates per point, levels 8, 25
// and 43) and IQ3_XXS, IQ3_S (4 coordinates per point; levels 4 ... 62 and
// 1, 3, ... 15). Byte j of an entry is coordinate j; coordinates are
// magnitudes, the signs are stored separately. IQ1_S and IQ1_M share one
// grid of 8 signed coordinates in {-1, 0, 1} (int8 bytes). Values:
// ggml-common.h.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_LIB_FORMATS_IQGRIDS_H
#define LOWBIT_LIB_FORMATS_IQGRIDS_H

#include <cstdint>

namespace lowbit::formats::detail {

extern const uint64_t kIQ2XXSGrid[256]; // ggml's iq2xxs_grid
extern const uint64_t kIQ2XSGrid[512];  // ggml's iq2xs_grid
extern const uint64_t kIQ2SGrid[1024];  // ggml's iq2s_grid
extern const uint32_t kIQ3XXSGrid[256]; // ggml's iq3xxs_grid
extern const uint32_t kIQ3SGrid[512];   // ggml's iq3s_grid
extern const uint64_t kIQ1SGrid[2048];  // ggml's iq1s_grid (IQ1_S, IQ1_M)

/// ggml's ksigns_iq2xs: 7 stored sign bits i expand to i | parity(i) << 7,
/// so a group of 8 always has an even number of minus signs. (ggml's
/// kmask_iq2xs[j] is 1 << j: bit j set = coordinate j negative.)
extern const uint8_t kIQ2Signs[128];

/// Coordinate j of a grid entry.
inline uint8_t gridCoord(uint64_t point, int j) {
  return static_cast<uint8_t>(point >> (8 * j));
}

/// Coordinate j of a signed (IQ1) grid entry: -1, 0 or 1.
inline int8_t signedGridCoord(uint64_t point, int j) {
  return static_cast<int8_t>(point >> (8 * j));
}

} // namespace lowbit::formats::detail

#endif // LOWBIT_LIB_FORMATS_IQGRIDS_H
