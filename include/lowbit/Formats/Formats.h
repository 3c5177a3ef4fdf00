//===- Formats.h - Weight formats: registry and row codecs ------*- C++ -*-===//
//
// The codec library: one definition of every block layout, shared by the
// compiler, the runtime and the exporters. No MLIR/LLVM dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FORMATS_FORMATS_H
#define LOWBIT_FORMATS_FORMATS_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lowbit::formats {

enum class Format : uint16_t {
#define LOWBIT_FORMAT(Id, name, ggml, bs, bb, kind) Id,
#include "lowbit/Formats/FormatTable.def"
};

enum class FormatKind : uint8_t { Float, Linear, KQuant, Codebook, Ternary };

struct FormatInfo {
  Format format;
  const char *name;  // lower case, e.g. "q4_k"
  int32_t ggmlType;  // -1 when GGUF cannot hold it
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

} // namespace lowbit::formats

#endif // LOWBIT_FORMATS_FORMATS_H
