//===- BlockLayouts.h - GGML's block structs, defined once ------*- C++ -*-===//
//
// The byte layout of every GGML block format lowbit's kernels read, as plain
// structs (ggml/src/ggml-common.h's block_*), each checked against the one
// format table (FormatTable.def) by a static_assert. The kernel builders
// (dialects/LowBit/Conversion) take field offsets from here with offsetof,
// never from literals. `uint16_t` fields hold IEEE half floats.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FORMATS_BLOCKLAYOUTS_H
#define LOWBIT_FORMATS_BLOCKLAYOUTS_H

#include "lowbit/Formats/Formats.h"

#include <cstddef>
#include <cstdint>

namespace lowbit::formats::blocks {

struct Q4_0 {
  uint16_t d;
  uint8_t qs[16];
};
struct Q4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
struct Q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct Q5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct Q8_0 {
  uint16_t d;
  int8_t qs[32];
};
struct IQ4_NL {
  uint16_t d;
  uint8_t qs[16];
};
struct Q2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
struct Q3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
struct Q4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct Q5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct Q6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
struct IQ4_XS {
  uint16_t d;
  uint16_t scalesHigh;
  uint8_t scalesLow[4];
  uint8_t qs[128];
};
/// The lattice i-quants: grid indices, signs and 3- or 4-bit sub-block
/// scales (lib/Formats/LatticeQuants.cpp, IQ1Quants.cpp say how they decode).
struct IQ2_XXS {
  uint16_t d;
  uint8_t qs[64]; // per 32 weights: 4 grid indices | u32 signs (28) ls (4)
};
struct IQ2_XS {
  uint16_t d;
  uint8_t qs[64]; // 32 x u16: 9-bit grid index | 7-bit sign index << 9
  uint8_t scales[8];
};
struct IQ2_S {
  uint16_t d;
  uint8_t qs[32];    // grid indices, low 8 bits
  uint8_t signs[32]; // one bit per weight
  uint8_t qh[8];     // 2 high index bits per group
  uint8_t scales[8];
};
struct IQ3_XXS {
  uint16_t d;
  uint8_t qs[64];          // grid indices (4 weights each)
  uint8_t signScales[32];  // 8 x u32: four 7-bit sign indices | ls << 28
};
struct IQ3_S {
  uint16_t d;
  uint8_t qs[64]; // grid indices, low 8 bits
  uint8_t qh[8];  // the ninth index bit, one per group of 4
  uint8_t signs[32];
  uint8_t scales[4];
};
struct IQ1_S {
  uint16_t d;
  uint8_t qs[32];
  uint16_t qh[8]; // 3 high index bits x 4 | 3-bit scale << 12 | delta sign
};
struct IQ1_M {
  uint8_t qs[32];
  uint8_t qh[16];    // per group: 3 high index bits | delta sign << 3
  uint16_t scales[4]; // 3-bit scales x 4 | a nibble of the f16 d << 12
};
/// The activation blocks of the K-quant kernels.
struct Q8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

/// sizeof(block) is the table's bytes per block, and the table's block size
/// is what the struct encodes, for every struct above.
constexpr bool matchesTable(Format f, size_t bytes, unsigned weights) {
  return tableBlockBytes(f) == bytes && tableBlockSize(f) == weights;
}
static_assert(matchesTable(Format::Q4_0, sizeof(Q4_0), 32));
static_assert(matchesTable(Format::Q4_1, sizeof(Q4_1), 32));
static_assert(matchesTable(Format::Q5_0, sizeof(Q5_0), 32));
static_assert(matchesTable(Format::Q5_1, sizeof(Q5_1), 32));
static_assert(matchesTable(Format::Q8_0, sizeof(Q8_0), 32));
static_assert(matchesTable(Format::IQ4_NL, sizeof(IQ4_NL), 32));
static_assert(matchesTable(Format::Q2_K, sizeof(Q2_K), 256));
static_assert(matchesTable(Format::Q3_K, sizeof(Q3_K), 256));
static_assert(matchesTable(Format::Q4_K, sizeof(Q4_K), 256));
static_assert(matchesTable(Format::Q5_K, sizeof(Q5_K), 256));
static_assert(matchesTable(Format::Q6_K, sizeof(Q6_K), 256));
static_assert(matchesTable(Format::IQ4_XS, sizeof(IQ4_XS), 256));
static_assert(matchesTable(Format::Q8_K, sizeof(Q8_K), 256));
static_assert(matchesTable(Format::IQ2_XXS, sizeof(IQ2_XXS), 256));
static_assert(matchesTable(Format::IQ2_XS, sizeof(IQ2_XS), 256));
static_assert(matchesTable(Format::IQ2_S, sizeof(IQ2_S), 256));
static_assert(matchesTable(Format::IQ3_XXS, sizeof(IQ3_XXS), 256));
static_assert(matchesTable(Format::IQ3_S, sizeof(IQ3_S), 256));
static_assert(matchesTable(Format::IQ1_S, sizeof(IQ1_S), 256));
static_assert(matchesTable(Format::IQ1_M, sizeof(IQ1_M), 256));

} // namespace lowbit::formats::blocks

#endif // LOWBIT_FORMATS_BLOCKLAYOUTS_H
