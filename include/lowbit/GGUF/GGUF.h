//===- GGUF.h - GGUF v2/v3 reader and writer --------------------*- C++ -*-===//
//
// A GGUF file is: header (magic, version, tensor count, kv count), the
// key/value metadata, the tensor infos, padding to `general.alignment`
// (default 32), then the tensor data, each tensor's offset a multiple of the
// alignment relative to the start of the data section.
//
// This library has no MLIR/LLVM dependency so that the fuzzer, the runtime and
// the unit tests link only what they test. Every size and offset read from a
// file is checked against the file size before it is used; errors carry the
// file name and the byte offset where the problem was found.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_GGUF_GGUF_H
#define LOWBIT_GGUF_GGUF_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lowbit {
class AtomicFileWriter;
}

namespace lowbit::gguf {

/// GGUF metadata value types, with the ids used in the file.
enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

/// Name as gguf-py spells it ("UINT32", "STRING", ...).
const char *valueTypeName(ValueType type);
/// Size in bytes of a scalar type; 0 for String and Array.
size_t scalarSize(ValueType type);

/// One metadata value. Scalars are held widened (integers in `u`/`i` by
/// signedness, floats in `f`, bools in `u`), strings in `str`, arrays in
/// `elements` with `elementType` kept even when the array is empty so the
/// round trip is exact. Nested arrays are arrays of Array values. Values read
/// from a file also keep a float's raw bits in `u`, so that NaN payloads
/// survive a round trip; the writer uses them only when `f` is a NaN.
struct Value {
  ValueType type = ValueType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  ValueType elementType = ValueType::U8; // Arrays only.
  std::vector<Value> elements;            // Arrays only.

  static Value makeU32(uint32_t v);
  static Value makeI32(int32_t v);
  static Value makeU64(uint64_t v);
  static Value makeF32(float v);
  static Value makeBool(bool v);
  static Value makeString(std::string v);
  static Value makeArray(ValueType elementType, std::vector<Value> elements);
  static Value makeU8(uint8_t v);
  static Value makeI8(int8_t v);
  static Value makeU16(uint16_t v);
  static Value makeI16(int16_t v);
  static Value makeI64(int64_t v);
  static Value makeF64(double v);
  /// Integer value of any integer/bool type (signed types sign-extended).
  int64_t asInt() const;
  bool isInteger() const;
  bool operator==(const Value &other) const;
  bool operator!=(const Value &other) const { return !(*this == other); }
};

struct KeyValue {
  std::string key;
  Value value;
  uint64_t fileOffset = 0; // Offset of the key in the file (reader only).
};

struct TensorInfo {
  std::string name;
  /// Dimensions in ggml order: dims[0] (ne0) is the contiguous one.
  std::vector<uint64_t> dims;
  uint32_t ggmlType = 0;
  /// Offset relative to the start of the data section, as stored.
  uint64_t offset = 0;
  /// Size in bytes, computed from dims and the type's block size.
  uint64_t byteSize = 0;
  uint64_t elementCount() const;
};

/// The error of a failed read or write: "<file>: <what> at offset <n>".
struct Error {
  std::string file;
  std::string what;
  uint64_t offset = 0;
  bool hasOffset = false;
  std::string message() const;
};

/// Size in bytes of `elements` values of ggml type `ggmlType`, or false if the
/// type is unknown or the count is not a whole number of blocks. Uses the
/// block size/bytes table of the formats library so there is one definition.
bool ggmlTensorBytes(uint32_t ggmlType, uint64_t ne0, uint64_t elements,
                     uint64_t &bytes, std::string &why);

/// Upper-case ggml name of a type id ("F32", "Q4_K", "IQ2_XXS"), or null when
/// the id is not a ggml type this library can size.
const char *ggmlTypeName(uint32_t ggmlType);
/// Block size and bytes per block of a ggml type id; false when unknown.
bool ggmlBlockLayout(uint32_t ggmlType, uint32_t &blockSize,
                     uint32_t &blockBytes);

/// Limits the reader enforces beyond the format itself, so that a hostile
/// file cannot make it allocate much more than the file's size.
constexpr unsigned kMaxArrayDepth = 8;
/// Total array elements (over all keys) held in memory for one file; each
/// costs sizeof(Value) (~100 bytes). Real tokenizers hold under a million.
constexpr uint64_t kMaxTotalArrayElements = uint64_t(1) << 23;
/// GGML_MAX_DIMS.
constexpr unsigned kMaxDims = 4;
/// GGML_MAX_NAME - 1: llama.cpp refuses longer tensor names; the writer does
/// too so it never produces a file llama.cpp cannot load.
constexpr size_t kMaxTensorNameLength = 63;

/// A GGUF file opened for reading; the tensor data is mmap'ed, not copied.
class Reader {
public:
  /// Opens and validates `path`. On failure returns null and fills `err`.
  static std::unique_ptr<Reader> open(const std::string &path, Error &err);
  /// Parses an in-memory image (used by the fuzzer and unit tests); `data`
  /// must outlive the reader. `name` is used in error messages.
  static std::unique_ptr<Reader> fromMemory(const void *data, size_t size,
                                            const std::string &name,
                                            Error &err);
  ~Reader();

  const std::string &path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  /// Absolute file offset where the tensor data section starts.
  uint64_t dataOffset() const { return dataOffset_; }
  uint64_t fileSize() const { return size_; }

  const std::vector<KeyValue> &metadata() const { return kvs_; }
  const KeyValue *find(std::string_view key) const;
  /// Convenience accessors; return the default when missing or mistyped.
  std::string getString(std::string_view key, std::string dflt = "") const;
  int64_t getInt(std::string_view key, int64_t dflt) const;
  double getFloat(std::string_view key, double dflt) const;

  const std::vector<TensorInfo> &tensors() const { return tensors_; }
  const TensorInfo *findTensor(std::string_view name) const;
  /// Pointer to a tensor's bytes inside the mapping (bounds already checked).
  const uint8_t *tensorData(const TensorInfo &t) const;
  /// Absolute file offset of a tensor's bytes.
  uint64_t tensorFileOffset(const TensorInfo &t) const {
    return dataOffset_ + t.offset;
  }
  const uint8_t *base() const { return data_; }

private:
  Reader() = default;
  bool parse(Error &err);

  std::string path_;
  const uint8_t *data_ = nullptr;
  size_t size_ = 0;
  void *mapping_ = nullptr; // Non-null when we own an mmap.
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t dataOffset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensorIndex_;
};

/// Builds a GGUF file. Key/values and tensors are written in the order they
/// were added. Tensor data is supplied by pointer (e.g. into another file's
/// mapping) or by a callback that fills the bytes at write time, so no copy of
/// a whole model is held in memory.
class Writer {
public:
  explicit Writer(uint32_t version = 3) : version_(version) {}

  /// Adds or replaces (keeping its position) a key. Setting
  /// `general.alignment` changes the alignment used for the data section.
  void set(const std::string &key, Value value);
  void remove(const std::string &key);
  const std::vector<KeyValue> &metadata() const { return kvs_; }

  using Fill = std::function<bool(uint8_t *dst, uint64_t size,
                                  std::string &why)>;
  /// dims in ggml order. `byteSize` must equal ggmlTensorBytes(...).
  void addTensor(const std::string &name, std::vector<uint64_t> dims,
                 uint32_t ggmlType, const void *data, uint64_t byteSize);
  void addTensor(const std::string &name, std::vector<uint64_t> dims,
                 uint32_t ggmlType, uint64_t byteSize, Fill fill);

  /// Writes to `path + ".tmp.<pid>"` and renames over `path` only when every
  /// byte was written; on failure nothing is left behind.
  bool write(const std::string &path, Error &err) const;

private:
  struct PendingTensor {
    TensorInfo info;
    const void *data = nullptr;
    Fill fill;
  };
  uint64_t alignment() const;
  /// Writes the whole file to `fd`; false with `why` on failure.
  bool writeTo(AtomicFileWriter &file, std::string &why) const;
  uint32_t version_;
  std::vector<KeyValue> kvs_;
  std::vector<PendingTensor> tensors_;
};

} // namespace lowbit::gguf

#endif // LOWBIT_GGUF_GGUF_H
