//===- Layout.h - Packed (row-interleaved) weight layouts -------*- C++ -*-===//
//
// The byte layout behind `#lowbit.layout<rows = N>`, shared by the packing
// pass, the native runtime and the kernel generator. No MLIR dependency.
//
// A matrix of R rows (R a multiple of N) whose rows are B blocks each is
// stored as R / N groups of N consecutive rows. Inside a group, block b of
// the N rows comes before block b + 1 of any of them:
//
//   group g:  blk0(row gN) blk0(row gN+1) ... blk0(row gN+N-1)
//             blk1(row gN) ... blk1(row gN+N-1)  ...  blk(B-1)(row gN+N-1)
//
// Blocks are copied whole (the GGML bytes of one block are untouched), so a
// kernel walking k reads the N rows' blocks of one k-step from one
// contiguous span, and unpacking gives back the GGML bytes exactly. The
// total size is unchanged. N = 1 is the plain GGML row-major layout. For
// float formats a "block" is one element.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FORMATS_LAYOUT_H
#define LOWBIT_FORMATS_LAYOUT_H

#include "lowbit/Formats/Formats.h"

#include <cstdint>

namespace lowbit::formats {

/// Byte offset of block `block` of row `row` in a matrix of rows of `cols`
/// weights of `format`, interleaved by `interleave` rows.
uint64_t packedBlockOffset(Format format, uint64_t cols, uint32_t interleave,
                           uint64_t row, uint64_t block);

/// Interleaves `rows` GGML rows of `cols` weights from `src` into `dst`
/// (non-overlapping, both rows * rowBytes bytes). False when rows is not a
/// multiple of `interleave` or cols not a multiple of the block size.
bool packRows(Format format, const void *src, void *dst, uint64_t rows,
              uint64_t cols, uint32_t interleave);

/// The inverse of packRows.
bool unpackRows(Format format, const void *src, void *dst, uint64_t rows,
                uint64_t cols, uint32_t interleave);

} // namespace lowbit::formats

#endif // LOWBIT_FORMATS_LAYOUT_H
