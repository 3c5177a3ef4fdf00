//===- Formats.h - Weight formats: registry and row codecs ------*- C++ -*-===//
//
// The codec library: one definition of every block layout, shared by the
// compiler, the runtime and the exporters. No MLIR/LLVM dependency.
//
// GGUF formats (F16 ... MXFP4) are bit-exact with ggml/src/ggml-common.h; a
// decoder returns the same float bits as ggml's reference dequantizer.
//
// Layouts of the formats GGUF cannot hold (all little-endian, one block after
// another, `n` the group size):
//
//   I8_SYM_Gn    f16 scale d | n x int8 q              x = q * d
//   I8_ASYM_Gn   f16 scale d | u8 zero point z | n x u8 q
//                                                     x = (q - z) * d
//   I4_SYM_Gn    f16 scale d | n/2 bytes of int4 q (two's complement)
//                                                     x = q * d
//   I4_ASYM_Gn   f16 scale d | u8 zero point z (0..15) | n/2 bytes of uint4 q
//                                                     x = (q - z) * d
//   NF4_G64      f16 scale d | 32 bytes of 4-bit indices
//                                                     x = kNF4Levels[q] * d
//
// 4-bit values are packed low nibble first: byte k holds element 2k in bits
// 0-3 and element 2k+1 in bits 4-7 (the ONNX int4 / MatMulNBits order). A zero
// point is an integer inside the value range, so 0.0 is always exact. NF4's d
// decodes like QLoRA's absmax; the encoder starts from the absmax and keeps a
// nearby scale when it has a smaller error.
//
// Encoders: without importance, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// TQ1_0 and TQ2_0 produce ggml's reference bytes (quantize_row_*_ref). Other
// paths search block scales for the smallest (importance-)weighted error;
// their bytes are one valid encoding, not ggml's. The lattice i-quants
// (IQ2_XXS ... IQ3_S, LatticeQuants.cpp) search the whole grid per group;
// IQ1_S and IQ1_M (IQ1Quants.cpp) find each group's best grid point exactly
// from its nearest pattern. Unlike ggml's, the IQ2_XXS, IQ2_XS and IQ1_S
// encoders also run without importance.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FORMATS_FORMATS_H
#define LOWBIT_FORMATS_FORMATS_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::formats {

enum class Format : uint16_t {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind) Id,
#include "lowbit/Formats/FormatTable.def"
};

enum class FormatKind : uint8_t { Float, Linear, KQuant, Codebook, Ternary };

/// The table's weights and bytes per block at compile time (for the
/// static_asserts of BlockLayouts.h).
constexpr uint32_t tableBlockSize(Format f) {
  switch (f) {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind)                            \
  case Format::Id:                                                             \
    return bs;
#include "lowbit/Formats/FormatTable.def"
  }
  return 0;
}
constexpr uint32_t tableBlockBytes(Format f) {
  switch (f) {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind)                            \
  case Format::Id:                                                             \
    return bb;
#include "lowbit/Formats/FormatTable.def"
  }
  return 0;
}

struct FormatInfo {
  Format format;
  const char *name;   // lower case, e.g. "q4_k"
  int32_t ggmlType;   // -1 when GGUF cannot hold it
  uint32_t blockSize; // weights per block
  uint32_t blockBytes;
  FormatKind kind;
  double bitsPerWeight() const { return blockBytes * 8.0 / blockSize; }
};

/// All formats, in table order.
const FormatInfo *allFormats(size_t &count);
const FormatInfo &info(Format format);
/// Case-insensitive name lookup ("Q4_K", "q4_k"); null when unknown.
const FormatInfo *findByName(std::string_view name);
/// Null when the GGML type id is unknown or unsupported.
const FormatInfo *findByGGMLType(uint32_t ggmlType);
/// Upper-case GGML spelling of a format's name ("Q4_K"), for reports.
const char *ggmlName(Format format);

/// Bytes of one row of `n` weights; 0 if `n` is not a multiple of the block.
inline uint64_t rowBytes(const FormatInfo &f, uint64_t n) {
  return n % f.blockSize ? 0 : n / f.blockSize * f.blockBytes;
}

/// The 16 NormalFloat4 levels of QLoRA (bitsandbytes' table): quantiles of
/// N(0, 1) scaled to [-1, 1] with an exact zero, ascending.
inline constexpr float kNF4Levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

//===----------------------------------------------------------------------===//
// Row codecs. A row is `n` weights, `n` a multiple of the block size; its
// encoding is rowBytes(info(f), n) bytes. Rows of a matrix are back to back.
//===----------------------------------------------------------------------===//

/// True when this build has an encoder and a decoder for `format`.
bool hasCodec(Format format);
/// True when the encoder uses a per-column importance vector (imatrix).
/// Encoders of other formats accept one and ignore it.
bool supportsImportance(Format format);
/// True for the formats GGML encodes only with an importance matrix
/// (ggml_quantize_requires_imatrix: IQ2_XXS, IQ2_XS, IQ1_S); callers that
/// follow GGML refuse them without one. Our encoders need none: quantizeRow
/// encodes every format without importance.
bool requiresImportance(Format format);

/// Decodes one row. `n` must be a multiple of the block size (asserted).
void dequantizeRow(Format format, const void *src, float *dst, int64_t n);

/// Encodes one row into rowBytes(info(format), n) bytes at `dst`.
/// `importance` is null or `n` non-negative finite weights, one per column.
/// Returns false and sets `*why` (when non-null) if `n` is not a multiple of
/// the block size, the format has no codec, `src` holds NaN/Inf or a value the
/// format cannot hold (f16 overflow), or `importance` is invalid; the message
/// names the column. `dst` is then unspecified.
bool quantizeRow(Format format, const float *src, void *dst, int64_t n,
                 const float *importance, std::string *why = nullptr);

/// Encodes `nrows` rows of `n` weights (row-major, back to back) on
/// `nthreads` threads (0 = std::thread::hardware_concurrency()). The same
/// importance vector is used for every row. The output does not depend on
/// the thread count. On failure the message names the first bad row.
bool quantizeRows(Format format, const float *src, void *dst, int64_t nrows,
                  int64_t n, const float *importance, int nthreads,
                  std::string *why = nullptr);

/// For formats whose 32-weight block decodes to d * c[i], with one f16 scale
/// d in the block's first two bytes and small integer codes c (Q4_0, Q5_0,
/// Q8_0, IQ4_NL): writes the codes of the block at `block` and returns d.
/// Integer dot products of two such blocks are what the native kernels and
/// llama.cpp's CPU backend compute. Only for formats where
/// isScaledIntegerBlock() is true.
bool isScaledIntegerBlock(Format format);
float splitScaledIntegerBlock(Format format, const void *block,
                              int32_t codes[32]);

/// Decodes `nrows` rows of `n` weights on `nthreads` threads (0 = all).
void dequantizeRows(Format format, const void *src, float *dst, int64_t nrows,
                    int64_t n, int nthreads = 0);

//===----------------------------------------------------------------------===//
// Affine integer form. The formats whose every group decodes as
//   x = (code - zero) * scale,   code an unsigned `bits`-bit integer,
// which ONNX Runtime's MatMulNBits (com.microsoft) stores as it is: Q4_0,
// Q4_1, Q8_0, Q2_K, Q4_K and the I4_*/I8_* group formats.
//===----------------------------------------------------------------------===//

struct AffineForm {
  unsigned bits;      // 2, 4 or 8
  unsigned groupSize; // weights per (scale, zero) pair
  /// Zero points are integers in [0, 2^bits) (else any float).
  bool integerZeros;
  /// Every zero point is 2^(bits - 1) (the symmetric formats).
  bool defaultZeros;
};

/// The affine form of `format`, or false.
bool affineForm(Format format, AffineForm &form);

/// Decodes one row of `n` weights into affine form: `n` codes and
/// n / groupSize scales and zeros. Reconstructing (code - zero) * scale in
/// float gives dequantizeRow's values up to float rounding (exactly for the
/// formats with integer zeros). Groups whose scale is zero but whose offset
/// is not (possible in Q4_1 and the K-quants) get codes 0, scale 1 and
/// zero -offset, which keeps their value.
void decodeAffineRow(Format format, const void *src, int64_t n,
                     uint8_t *codes, float *scales, float *zeros);

/// Bytes a [rows, cols] weight in `format` takes in an ONNX file: as
/// MatMulNBits (packed codes, an f32 scale per group, and zero points
/// unless they are the default: packed like the codes when integer, f32
/// when not), or as a float initializer for F32/F16/BF16. 0 when the format
/// has no ONNX form.
uint64_t onnxWeightBytes(Format format, int64_t rows, int64_t cols);

} // namespace lowbit::formats

#endif // LOWBIT_FORMATS_FORMATS_H
