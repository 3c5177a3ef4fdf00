//===- GGUF.cpp - GGUF v2/v3 reader and writer ----------------------------===//
//
// The layout follows ggml/src/gguf.cpp of llama.cpp: the writer produces the
// same bytes as gguf_write_to_file (zero padding after the tensor infos and
// after every tensor's data, offsets assigned in order), and the reader accepts
// every file llama.cpp accepts, plus nested arrays (allowed by the GGUF spec
// and gguf-py) and tensors stored out of order.
//
// The reader never trusts a count: before anything is allocated or read, the
// count is checked against the bytes left in the file.
//
//===----------------------------------------------------------------------===//
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Support/MappedFile.h"

#include "lowbit/Formats/Formats.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lowbit::gguf {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
constexpr const char *kAlignmentKey = "general.alignment";
constexpr uint32_t kNumValueTypes = 13;
// Smallest possible encodings, used to bound counts by the bytes left:
// a key/value is a non-empty key (8 + 1), a type (4) and at least one byte;
// a tensor info is a name (8), n_dims (4), a type (4) and an offset (8).
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;
// Counts from the file only bound how much is reserved up front; a count that
// the file's size allows but its content does not must not become a large
// allocation (a KeyValue is ~10x its smallest encoding).
constexpr uint64_t kMaxReserve = 4096;
// GGUF_MAX_STRING_LENGTH of llama.cpp.
constexpr uint64_t kMaxStringLength = uint64_t(1) << 30;

// ggml types the formats table does not describe (it holds only the formats
// lowbit can produce). Values from ggml/src/ggml-common.h (block structs and
// their static_asserts) and the type_traits table of ggml/src/ggml.c.
struct LocalType {
  uint32_t id;
  const char *name;
  uint32_t blockSize;
  uint32_t blockBytes;
};
constexpr LocalType kLocalTypes[] = {
    {9, "Q8_1", 32, 36},      // 2 x half + 32 x int8
    {15, "Q8_K", 256, 292},   // float + 256 x int8 + 16 x int16
    {16, "IQ2_XXS", 256, 66}, // half + 32 x uint16
    {17, "IQ2_XS", 256, 74},  // half + 32 x uint16 + 8
    {18, "IQ3_XXS", 256, 98}, // half + 96
    {19, "IQ1_S", 256, 50},   // half + 32 + 8 x uint16
    {21, "IQ3_S", 256, 110},  // half + 64 + 8 + 32 + 4
    {22, "IQ2_S", 256, 82},   // half + 64 + 8 + 8
    {24, "I8", 1, 1},
    {25, "I16", 1, 2},
    {26, "I32", 1, 4},
    {27, "I64", 1, 8},
    {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56}, // 32 + 16 + 8, no scale field
    {40, "NVFP4", 64, 36},  // 4 x UE4M3 + 32
    {41, "Q1_0", 128, 18},  // half + 16
    {42, "Q2_0", 64, 18},   // half + 16
};

const LocalType *findLocalType(uint32_t id) {
  for (const LocalType &t : kLocalTypes)
    if (t.id == id)
      return &t;
  return nullptr;
}

bool isValidValueType(uint32_t t) { return t < kNumValueTypes; }

bool isSignedInteger(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 ||
         t == ValueType::I64;
}

bool isUnsignedInteger(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 ||
         t == ValueType::U64;
}

/// Bytes the smallest element of an array of `t` takes in the file.
uint64_t minElementBytes(ValueType t) {
  switch (t) {
  case ValueType::String:
    return 8;
  case ValueType::Array:
    return 4 + 8;
  default:
    return scalarSize(t);
  }
}

uint64_t loadLE(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= uint64_t(p[i]) << (8 * i);
  return v;
}

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}
double bitsToDouble(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}
uint64_t doubleToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

/// The little-endian bytes of a scalar value; `out` holds at least 8 bytes.
/// Returns the number of bytes.
size_t encodeScalar(const Value &v, uint8_t *out) {
  uint64_t bits = 0;
  size_t n = scalarSize(v.type);
  switch (v.type) {
  case ValueType::U8:
  case ValueType::U16:
  case ValueType::U32:
  case ValueType::U64:
    bits = v.u;
    break;
  case ValueType::I8:
  case ValueType::I16:
  case ValueType::I32:
  case ValueType::I64:
    bits = static_cast<uint64_t>(v.i);
    break;
  case ValueType::Bool:
    bits = v.u != 0;
    break;
  case ValueType::F32: {
    // Keep a NaN's payload when the raw bits still describe that NaN.
    uint32_t raw = static_cast<uint32_t>(v.u);
    bool rawIsNaN = std::isnan(bitsToFloat(raw));
    bits = std::isnan(v.f) && rawIsNaN ? raw
                                       : floatToBits(static_cast<float>(v.f));
    break;
  }
  case ValueType::F64:
    bits = std::isnan(v.f) && std::isnan(bitsToDouble(v.u)) ? v.u
                                                            : doubleToBits(v.f);
    break;
  case ValueType::String:
  case ValueType::Array:
    return 0;
  }
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<uint8_t>(bits >> (8 * i));
  return n;
}

/// A name from the file for an error message: quoted, control bytes escaped
/// and cut short, since a damaged file can hold anything there.
std::string quote(const std::string &s) {
  constexpr size_t kMaxShown = 80;
  std::string r = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      static const char kHex[] = "0123456789abcdef";
      r += "\\x";
      r += kHex[c >> 4];
      r += kHex[c & 15];
    } else {
      r += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown)
    r += "...";
  return r + "'";
}

constexpr const char *kNotAsciiKey =
    " is not printable ASCII (as GGUF keys must be)";

/// Index of the first byte of `key` outside printable ASCII, or npos.
size_t firstNonAsciiByte(const std::string &key) {
  for (size_t i = 0; i < key.size(); ++i)
    if (static_cast<unsigned char>(key[i]) < 0x20 ||
        static_cast<unsigned char>(key[i]) > 0x7e)
      return i;
  return std::string::npos;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

class Parser {
public:
  Parser(const uint8_t *data, uint64_t size, const std::string &name,
         Error &err)
      : data_(data), size_(size), name_(name), err_(err) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void seek(uint64_t p) { pos_ = p; }

  bool fail(uint64_t offset, std::string what) {
    err_ = Error{name_, std::move(what), offset, true};
    return false;
  }

  /// Reads an n-byte little-endian integer; `what` names the field.
  bool readInt(size_t n, uint64_t &v, const char *what) {
    if (left() < n)
      return fail(pos_, std::string("unexpected end of file reading ") + what);
    v = loadLE(data_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool readU32(uint32_t &v, const char *what) {
    uint64_t w;
    if (!readInt(4, w, what))
      return false;
    v = static_cast<uint32_t>(w);
    return true;
  }
  bool readU64(uint64_t &v, const char *what) { return readInt(8, v, what); }

  bool readString(std::string &out, const char *what) {
    uint64_t start = pos_;
    uint64_t len;
    if (!readU64(len, what))
      return false;
    if (len > left())
      return fail(start, std::string(what) + " length " + std::to_string(len) +
                             " exceeds the " + std::to_string(left()) +
                             " bytes left in the file");
    if (len > kMaxStringLength)
      return fail(start, std::string(what) + " length " + std::to_string(len) +
                             " exceeds the limit of " +
                             std::to_string(kMaxStringLength) + " bytes");
    out.assign(reinterpret_cast<const char *>(data_ + pos_),
               static_cast<size_t>(len));
    pos_ += len;
    return true;
  }

  bool readValueType(ValueType &t, const char *what) {
    uint64_t start = pos_;
    uint32_t raw;
    if (!readU32(raw, what))
      return false;
    if (!isValidValueType(raw))
      return fail(start,
                  std::string("invalid ") + what + " " + std::to_string(raw));
    t = static_cast<ValueType>(raw);
    return true;
  }

  bool readValue(ValueType type, Value &v, unsigned depth) {
    v.type = type;
    switch (type) {
    case ValueType::String:
      return readString(v.str, "string");
    case ValueType::Array:
      return readArray(v, depth);
    default:
      break;
    }
    size_t n = scalarSize(type);
    uint64_t bits;
    if (!readInt(n, bits, "value"))
      return false;
    switch (type) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      v.u = bits;
      break;
    case ValueType::I8:
      v.i = static_cast<int8_t>(bits);
      break;
    case ValueType::I16:
      v.i = static_cast<int16_t>(bits);
      break;
    case ValueType::I32:
      v.i = static_cast<int32_t>(bits);
      break;
    case ValueType::I64:
      v.i = static_cast<int64_t>(bits);
      break;
    case ValueType::Bool:
      // llama.cpp reads any non-zero byte as true.
      v.u = bits != 0;
      break;
    case ValueType::F32:
      v.u = bits;
      v.f = bitsToFloat(static_cast<uint32_t>(bits));
      break;
    case ValueType::F64:
      v.u = bits;
      v.f = bitsToDouble(bits);
      break;
    case ValueType::String:
    case ValueType::Array:
      break;
    }
    return true;
  }

  bool readArray(Value &v, unsigned depth) {
    uint64_t start = pos_;
    if (depth >= kMaxArrayDepth)
      return fail(start, "arrays nested deeper than " +
                             std::to_string(kMaxArrayDepth));
    if (!readValueType(v.elementType, "array element type"))
      return false;
    uint64_t countAt = pos_;
    uint64_t count;
    if (!readU64(count, "array length"))
      return false;
    uint64_t minBytes = minElementBytes(v.elementType);
    if (count > left() / minBytes)
      return fail(countAt,
                  "array of " + std::to_string(count) + " " +
                      valueTypeName(v.elementType) + " needs more than the " +
                      std::to_string(left()) + " bytes left in the file");
    if (count > kMaxTotalArrayElements - totalElements_)
      return fail(countAt, "more than " +
                               std::to_string(kMaxTotalArrayElements) +
                               " array elements in the file");
    totalElements_ += count;
    v.elements.resize(static_cast<size_t>(count));
    for (Value &e : v.elements)
      if (!readValue(v.elementType, e, depth + 1))
        return false;
    return true;
  }

private:
  const uint8_t *data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string &name_;
  Error &err_;
  uint64_t totalElements_ = 0;
};

bool isPowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

uint64_t alignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

} // namespace

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

const char *valueTypeName(ValueType type) {
  switch (type) {
  case ValueType::U8:
    return "UINT8";
  case ValueType::I8:
    return "INT8";
  case ValueType::U16:
    return "UINT16";
  case ValueType::I16:
    return "INT16";
  case ValueType::U32:
    return "UINT32";
  case ValueType::I32:
    return "INT32";
  case ValueType::F32:
    return "FLOAT32";
  case ValueType::Bool:
    return "BOOL";
  case ValueType::String:
    return "STRING";
  case ValueType::Array:
    return "ARRAY";
  case ValueType::U64:
    return "UINT64";
  case ValueType::I64:
    return "INT64";
  case ValueType::F64:
    return "FLOAT64";
  }
  return "INVALID";
}

size_t scalarSize(ValueType type) {
  switch (type) {
  case ValueType::U8:
  case ValueType::I8:
  case ValueType::Bool:
    return 1;
  case ValueType::U16:
  case ValueType::I16:
    return 2;
  case ValueType::U32:
  case ValueType::I32:
  case ValueType::F32:
    return 4;
  case ValueType::U64:
  case ValueType::I64:
  case ValueType::F64:
    return 8;
  case ValueType::String:
  case ValueType::Array:
    return 0;
  }
  return 0;
}

Value Value::makeU32(uint32_t v) {
  Value r;
  r.type = ValueType::U32;
  r.u = v;
  return r;
}
Value Value::makeI32(int32_t v) {
  Value r;
  r.type = ValueType::I32;
  r.i = v;
  return r;
}
Value Value::makeU64(uint64_t v) {
  Value r;
  r.type = ValueType::U64;
  r.u = v;
  return r;
}
Value Value::makeF32(float v) {
  Value r;
  r.type = ValueType::F32;
  r.f = v;
  r.u = floatToBits(v);
  return r;
}
Value Value::makeBool(bool v) {
  Value r;
  r.type = ValueType::Bool;
  r.u = v;
  return r;
}
Value Value::makeString(std::string v) {
  Value r;
  r.type = ValueType::String;
  r.str = std::move(v);
  return r;
}
Value Value::makeArray(ValueType elementType, std::vector<Value> elements) {
  Value r;
  r.type = ValueType::Array;
  r.elementType = elementType;
  r.elements = std::move(elements);
  return r;
}
Value Value::makeU8(uint8_t v) {
  Value r;
  r.type = ValueType::U8;
  r.u = v;
  return r;
}
Value Value::makeI8(int8_t v) {
  Value r;
  r.type = ValueType::I8;
  r.i = v;
  return r;
}
Value Value::makeU16(uint16_t v) {
  Value r;
  r.type = ValueType::U16;
  r.u = v;
  return r;
}
Value Value::makeI16(int16_t v) {
  Value r;
  r.type = ValueType::I16;
  r.i = v;
  return r;
}
Value Value::makeI64(int64_t v) {
  Value r;
  r.type = ValueType::I64;
  r.i = v;
  return r;
}
Value Value::makeF64(double v) {
  Value r;
  r.type = ValueType::F64;
  r.f = v;
  r.u = doubleToBits(v);
  return r;
}

bool Value::isInteger() const {
  return isSignedInteger(type) || isUnsignedInteger(type) ||
         type == ValueType::Bool;
}

int64_t Value::asInt() const {
  if (isSignedInteger(type))
    return i;
  if (isUnsignedInteger(type) || type == ValueType::Bool)
    return static_cast<int64_t>(u);
  return 0;
}

bool Value::operator==(const Value &other) const {
  if (type != other.type)
    return false;
  switch (type) {
  case ValueType::String:
    return str == other.str;
  case ValueType::Array:
    return elementType == other.elementType && elements == other.elements;
  default: {
    // Compare what would be written: bit patterns, so -0.0 != 0.0 and a NaN
    // equals itself.
    uint8_t a[8] = {}, b[8] = {};
    size_t n = encodeScalar(*this, a);
    encodeScalar(other, b);
    return std::memcmp(a, b, n) == 0;
  }
  }
}

uint64_t TensorInfo::elementCount() const {
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d != 0 && n > UINT64_MAX / d)
      return UINT64_MAX;
    n *= d;
  }
  return n;
}

std::string Error::message() const {
  std::string m = file + ": " + what;
  if (hasOffset)
    m += " at offset " + std::to_string(offset);
  return m;
}

//===----------------------------------------------------------------------===//
// ggml types
//===----------------------------------------------------------------------===//

bool ggmlBlockLayout(uint32_t ggmlType, uint32_t &blockSize,
                     uint32_t &blockBytes) {
  if (const formats::FormatInfo *f = formats::findByGGMLType(ggmlType)) {
    blockSize = f->blockSize;
    blockBytes = f->blockBytes;
    return true;
  }
  if (const LocalType *t = findLocalType(ggmlType)) {
    blockSize = t->blockSize;
    blockBytes = t->blockBytes;
    return true;
  }
  return false;
}

const char *ggmlTypeName(uint32_t ggmlType) {
  if (const formats::FormatInfo *f = formats::findByGGMLType(ggmlType))
    return formats::ggmlName(f->format);
  if (const LocalType *t = findLocalType(ggmlType))
    return t->name;
  return nullptr;
}

bool ggmlTensorBytes(uint32_t ggmlType, uint64_t ne0, uint64_t elements,
                     uint64_t &bytes, std::string &why) {
  uint32_t blockSize, blockBytes;
  if (!ggmlBlockLayout(ggmlType, blockSize, blockBytes)) {
    why = "unknown ggml type " + std::to_string(ggmlType);
    return false;
  }
  if (ne0 % blockSize != 0 || elements % blockSize != 0) {
    why = std::string("row of ") + std::to_string(ne0) +
          " elements is not a multiple of the block size " +
          std::to_string(blockSize) + " of " + ggmlTypeName(ggmlType);
    return false;
  }
  uint64_t blocks = elements / blockSize;
  if (blocks > UINT64_MAX / blockBytes) {
    why = "size in bytes overflows";
    return false;
  }
  bytes = blocks * blockBytes;
  return true;
}

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

Reader::~Reader() {
  if (mapping_)
    ::munmap(mapping_, size_);
}

std::unique_ptr<Reader> Reader::open(const std::string &path, Error &err) {
  auto fail = [&](std::string what) -> std::unique_ptr<Reader> {
    err = Error{path, std::move(what), 0, false};
    return nullptr;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(std::string("cannot open: ") + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(std::string("cannot open: ") + std::strerror(EISDIR));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("cannot open: not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return fail("cannot open: file is empty");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void *map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (map == MAP_FAILED)
    return fail(std::string("cannot map: ") + std::strerror(mapErrno));

  std::unique_ptr<Reader> r(new Reader());
  r->path_ = path;
  r->mapping_ = map;
  r->data_ = static_cast<const uint8_t *>(map);
  r->size_ = size;
  if (!r->parse(err))
    return nullptr;
  return r;
}

std::unique_ptr<Reader> Reader::fromMemory(const void *data, size_t size,
                                           const std::string &name,
                                           Error &err) {
  std::unique_ptr<Reader> r(new Reader());
  r->path_ = name;
  r->data_ = static_cast<const uint8_t *>(data);
  r->size_ = data ? size : 0;
  if (!r->parse(err))
    return nullptr;
  return r;
}

bool Reader::parse(Error &err) {
  Parser p(data_, size_, path_, err);

  // Header.
  if (size_ < 4)
    return p.fail(0, "unexpected end of file reading the magic");
  if (std::memcmp(data_, kMagic, 4) != 0)
    return p.fail(0, "not a GGUF file (bad magic)");
  p.seek(4);
  if (!p.readU32(version_, "version"))
    return false;
  if (version_ == 1)
    return p.fail(4, "GGUF version 1 is not supported (only versions 2 and "
                     "3)");
  if (version_ != 0 && (version_ & 0xffff) == 0)
    return p.fail(4, "GGUF version " + std::to_string(version_) +
                         " looks byte-swapped: big-endian files are not "
                         "supported");
  if (version_ != 2 && version_ != 3)
    return p.fail(4, "unsupported GGUF version " + std::to_string(version_) +
                         " (only versions 2 and 3)");
  uint64_t tensorCount, kvCount;
  if (!p.readU64(tensorCount, "tensor count") ||
      !p.readU64(kvCount, "key/value count"))
    return false;
  if (kvCount > p.left() / kMinKeyValueBytes)
    return p.fail(16, "key/value count " + std::to_string(kvCount) +
                          " is more than the " + std::to_string(p.left()) +
                          " bytes left in the file can hold");
  if (tensorCount > p.left() / kMinTensorInfoBytes)
    return p.fail(8, "tensor count " + std::to_string(tensorCount) +
                         " is more than the " + std::to_string(p.left()) +
                         " bytes left in the file can hold");

  // Key/value pairs.
  kvs_.clear();
  kvs_.reserve(static_cast<size_t>(std::min(kvCount, kMaxReserve)));
  std::unordered_set<std::string> keys;
  alignment_ = kDefaultAlignment;
  for (uint64_t i = 0; i < kvCount; ++i) {
    KeyValue kv;
    kv.fileOffset = p.pos();
    if (!p.readString(kv.key, "key"))
      return false;
    if (kv.key.empty())
      return p.fail(kv.fileOffset, "empty key");
    // The GGUF spec makes keys ASCII; a key with other bytes is damage, and
    // taking it as some unknown key would hide a missing required one.
    if (size_t bad = firstNonAsciiByte(kv.key); bad != std::string::npos)
      return p.fail(kv.fileOffset + 8 + bad,
                    "key " + quote(kv.key) + kNotAsciiKey);
    if (!keys.insert(kv.key).second)
      return p.fail(kv.fileOffset, "duplicate key " + quote(kv.key));
    uint64_t typeAt = p.pos();
    ValueType type;
    if (!p.readValueType(type, "value type"))
      return false;
    uint64_t valueAt = p.pos();
    if (!p.readValue(type, kv.value, 0))
      return false;
    if (kv.key == kAlignmentKey) {
      // As llama.cpp: the alignment must be a UINT32 power of two.
      if (type != ValueType::U32)
        return p.fail(typeAt, std::string(kAlignmentKey) +
                                  " must be UINT32, not " +
                                  valueTypeName(type));
      if (!isPowerOfTwo(kv.value.u))
        return p.fail(valueAt, std::string(kAlignmentKey) + " " +
                                   std::to_string(kv.value.u) +
                                   " is not a power of two");
      alignment_ = kv.value.u;
    }
    kvs_.push_back(std::move(kv));
  }

  // Tensor infos.
  tensors_.clear();
  tensorIndex_.clear();
  tensors_.reserve(static_cast<size_t>(std::min(tensorCount, kMaxReserve)));
  std::vector<uint64_t> offsetFieldAt;
  offsetFieldAt.reserve(
      static_cast<size_t>(std::min(tensorCount, kMaxReserve)));
  for (uint64_t i = 0; i < tensorCount; ++i) {
    TensorInfo t;
    uint64_t nameAt = p.pos();
    if (!p.readString(t.name, "tensor name"))
      return false;
    if (tensorIndex_.count(t.name))
      return p.fail(nameAt, "duplicate tensor name " + quote(t.name));
    uint64_t dimsAt = p.pos();
    uint32_t nDims;
    if (!p.readU32(nDims, "tensor dimension count"))
      return false;
    if (nDims > kMaxDims)
      return p.fail(
          dimsAt, "tensor " + quote(t.name) + " has " + std::to_string(nDims) +
                      " dimensions (at most " + std::to_string(kMaxDims) + ")");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < nDims; ++d) {
      uint64_t dimAt = p.pos();
      uint64_t ne;
      if (!p.readU64(ne, "tensor dimension"))
        return false;
      // ggml holds dimensions as int64_t and their product must fit.
      if (ne > uint64_t(INT64_MAX))
        return p.fail(dimAt, "tensor " + quote(t.name) + " dimension " +
                                 std::to_string(d) + " is negative");
      if (ne != 0 && elements > uint64_t(INT64_MAX) / ne)
        return p.fail(dimAt, "tensor " + quote(t.name) +
                                 " has too many elements (overflow)");
      elements *= ne;
      t.dims.push_back(ne);
    }
    uint64_t typeAt = p.pos();
    if (!p.readU32(t.ggmlType, "tensor type"))
      return false;
    uint64_t ne0 = t.dims.empty() ? 1 : t.dims[0];
    std::string why;
    if (!ggmlTensorBytes(t.ggmlType, ne0, elements, t.byteSize, why))
      return p.fail(typeAt, "tensor " + quote(t.name) + ": " + why);
    offsetFieldAt.push_back(p.pos());
    if (!p.readU64(t.offset, "tensor offset"))
      return false;
    tensorIndex_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment. llama.cpp
  // only requires the padding when there are tensors.
  uint64_t infosEnd = p.pos();
  uint64_t aligned = alignUp(infosEnd, alignment_);
  if (aligned > size_) {
    if (!tensors_.empty())
      return p.fail(infosEnd, "data section would start at " +
                                  std::to_string(aligned) +
                                  ", past the end of the file (" +
                                  std::to_string(size_) + " bytes)");
    aligned = infosEnd;
  }
  dataOffset_ = aligned;

  // Every tensor's bytes must lie inside the file, aligned, and not overlap.
  uint64_t dataSize = size_ - dataOffset_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const TensorInfo &t = tensors_[i];
    if (t.offset % alignment_ != 0)
      return p.fail(offsetFieldAt[i],
                    "tensor " + quote(t.name) + " offset " +
                        std::to_string(t.offset) +
                        " is not a multiple of the alignment " +
                        std::to_string(alignment_));
    if (t.offset > dataSize || t.byteSize > dataSize - t.offset)
      return p.fail(offsetFieldAt[i],
                    "tensor " + quote(t.name) + " data (" +
                        std::to_string(t.byteSize) + " bytes at data offset " +
                        std::to_string(t.offset) +
                        ") extends past the end of the file (" +
                        std::to_string(dataSize) + " data bytes)");
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].byteSize != 0)
      order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors_[a].offset != tensors_[b].offset
               ? tensors_[a].offset < tensors_[b].offset
               : a < b;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo &prev = tensors_[order[k - 1]];
    const TensorInfo &cur = tensors_[order[k]];
    if (cur.offset < prev.offset + prev.byteSize) {
      size_t later = std::max(order[k - 1], order[k]);
      return p.fail(offsetFieldAt[later], "tensor " + quote(cur.name) +
                                              " data overlaps tensor " +
                                              quote(prev.name));
    }
  }
  return true;
}

const KeyValue *Reader::find(std::string_view key) const {
  for (const KeyValue &kv : kvs_)
    if (kv.key == key)
      return &kv;
  return nullptr;
}

std::string Reader::getString(std::string_view key, std::string dflt) const {
  const KeyValue *kv = find(key);
  if (!kv || kv->value.type != ValueType::String)
    return dflt;
  return kv->value.str;
}

int64_t Reader::getInt(std::string_view key, int64_t dflt) const {
  const KeyValue *kv = find(key);
  if (!kv || !kv->value.isInteger())
    return dflt;
  return kv->value.asInt();
}

double Reader::getFloat(std::string_view key, double dflt) const {
  const KeyValue *kv = find(key);
  if (!kv)
    return dflt;
  if (kv->value.type == ValueType::F32 || kv->value.type == ValueType::F64)
    return kv->value.f;
  if (kv->value.isInteger())
    return isSignedInteger(kv->value.type) ? static_cast<double>(kv->value.i)
                                           : static_cast<double>(kv->value.u);
  return dflt;
}

const TensorInfo *Reader::findTensor(std::string_view name) const {
  auto it = tensorIndex_.find(std::string(name));
  return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t *Reader::tensorData(const TensorInfo &t) const {
  return data_ + dataOffset_ + t.offset;
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

namespace {

/// Buffered writes to a file descriptor; remembers the first error.
class Output {
public:
  explicit Output(AtomicFileWriter &file) : file_(file) {
    buf_.reserve(kBufferSize);
  }

  uint64_t written() const { return written_; }
  bool ok() const { return error_.empty(); }
  const std::string &error() const { return error_; }

  void bytes(const void *data, size_t n) {
    const uint8_t *p = static_cast<const uint8_t *>(data);
    written_ += n;
    if (n >= kBufferSize) {
      flush();
      raw(p, n);
      return;
    }
    if (buf_.size() + n > kBufferSize)
      flush();
    buf_.insert(buf_.end(), p, p + n);
  }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void string(const std::string &s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void padTo(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    while (written_ % alignment != 0) {
      uint64_t n =
          std::min<uint64_t>(alignment - written_ % alignment, sizeof zeros);
      bytes(zeros, static_cast<size_t>(n));
    }
  }
  void flush() {
    raw(buf_.data(), buf_.size());
    buf_.clear();
  }

private:
  static constexpr size_t kBufferSize = 1 << 20;

  void le(uint64_t v, size_t n) {
    uint8_t b[8];
    for (size_t i = 0; i < n; ++i)
      b[i] = static_cast<uint8_t>(v >> (8 * i));
    bytes(b, n);
  }
  void raw(const uint8_t *p, size_t n) {
    if (n && ok())
      file_.write(p, n, error_);
  }

  AtomicFileWriter &file_;
  std::vector<uint8_t> buf_;
  uint64_t written_ = 0;
  std::string error_; // the first write error, "" while all is well
};

void writeValue(Output &out, const Value &v) {
  switch (v.type) {
  case ValueType::String:
    out.string(v.str);
    return;
  case ValueType::Array:
    // An array's elements carry no type tag of their own; a nested array
    // element is (element type, count, elements), as gguf-py writes it.
    out.u32(static_cast<uint32_t>(v.elementType));
    out.u64(v.elements.size());
    for (const Value &e : v.elements)
      writeValue(out, e);
    return;
  default: {
    uint8_t b[8];
    size_t n = encodeScalar(v, b);
    out.bytes(b, n);
    return;
  }
  }
}

/// Checks that a value can be written: valid types, array elements of the
/// declared type, nesting within the reader's limit.
bool checkValue(const Value &v, unsigned depth, std::string &why) {
  if (!isValidValueType(static_cast<uint32_t>(v.type))) {
    why = "invalid value type " + std::to_string(uint32_t(v.type));
    return false;
  }
  // Scalars are held widened; one that does not fit its type would be
  // silently truncated.
  size_t n = scalarSize(v.type);
  if (n && n < 8 && v.type != ValueType::F32) {
    bool fits = isSignedInteger(v.type) ? v.i >= -(int64_t(1) << (8 * n - 1)) &&
                                              v.i < (int64_t(1) << (8 * n - 1))
                                        : v.u < (uint64_t(1) << (8 * n));
    if (!fits) {
      why = std::string("value out of range for ") + valueTypeName(v.type);
      return false;
    }
  }
  if (v.type != ValueType::Array)
    return true;
  if (depth >= kMaxArrayDepth) {
    why = "arrays nested deeper than " + std::to_string(kMaxArrayDepth);
    return false;
  }
  if (!isValidValueType(static_cast<uint32_t>(v.elementType))) {
    why =
        "invalid array element type " + std::to_string(uint32_t(v.elementType));
    return false;
  }
  for (const Value &e : v.elements) {
    if (e.type != v.elementType) {
      why = std::string("array of ") + valueTypeName(v.elementType) +
            " holds a " + valueTypeName(e.type);
      return false;
    }
    if (!checkValue(e, depth + 1, why))
      return false;
  }
  return true;
}

} // namespace

void Writer::set(const std::string &key, Value value) {
  for (KeyValue &kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  KeyValue kv;
  kv.key = key;
  kv.value = std::move(value);
  kvs_.push_back(std::move(kv));
}

void Writer::remove(const std::string &key) {
  kvs_.erase(std::remove_if(kvs_.begin(), kvs_.end(),
                            [&](const KeyValue &kv) { return kv.key == key; }),
             kvs_.end());
}

void Writer::addTensor(const std::string &name, std::vector<uint64_t> dims,
                       uint32_t ggmlType, const void *data, uint64_t byteSize) {
  PendingTensor t;
  t.info.name = name;
  t.info.dims = std::move(dims);
  t.info.ggmlType = ggmlType;
  t.info.byteSize = byteSize;
  t.data = data;
  tensors_.push_back(std::move(t));
}

void Writer::addTensor(const std::string &name, std::vector<uint64_t> dims,
                       uint32_t ggmlType, uint64_t byteSize, Fill fill) {
  PendingTensor t;
  t.info.name = name;
  t.info.dims = std::move(dims);
  t.info.ggmlType = ggmlType;
  t.info.byteSize = byteSize;
  t.fill = std::move(fill);
  tensors_.push_back(std::move(t));
}

uint64_t Writer::alignment() const {
  for (const KeyValue &kv : kvs_)
    if (kv.key == kAlignmentKey && kv.value.type == ValueType::U32 &&
        isPowerOfTwo(kv.value.u) && kv.value.u <= UINT32_MAX)
      return kv.value.u;
  return kDefaultAlignment;
}

bool Writer::write(const std::string &path, Error &err) const {
  auto fail = [&](std::string what) {
    err = Error{path, std::move(what), 0, false};
    return false;
  };

  // Validate everything first so a bad request leaves no file behind.
  if (version_ != 2 && version_ != 3)
    return fail("cannot write GGUF version " + std::to_string(version_) +
                " (only 2 and 3)");
  std::unordered_set<std::string> seen;
  for (const KeyValue &kv : kvs_) {
    if (kv.key.empty())
      return fail("empty key");
    if (firstNonAsciiByte(kv.key) != std::string::npos)
      return fail("key " + quote(kv.key) + kNotAsciiKey);
    if (!seen.insert(kv.key).second)
      return fail("duplicate key " + quote(kv.key));
    std::string why;
    if (!checkValue(kv.value, 0, why))
      return fail("key " + quote(kv.key) + ": " + why);
    if (kv.key == kAlignmentKey &&
        (kv.value.type != ValueType::U32 || !isPowerOfTwo(kv.value.u) ||
         kv.value.u > UINT32_MAX))
      return fail(std::string(kAlignmentKey) +
                  " must be a UINT32 power of two");
  }
  seen.clear();
  for (const PendingTensor &t : tensors_) {
    const TensorInfo &info = t.info;
    if (!seen.insert(info.name).second)
      return fail("duplicate tensor name " + quote(info.name));
    if (info.name.size() > kMaxTensorNameLength)
      return fail("tensor name " + quote(info.name) + " is longer than " +
                  std::to_string(kMaxTensorNameLength) + " bytes");
    if (info.dims.size() > kMaxDims)
      return fail("tensor " + quote(info.name) + " has more than " +
                  std::to_string(kMaxDims) + " dimensions");
    uint64_t elements = 1;
    for (uint64_t d : info.dims) {
      if (d > uint64_t(INT64_MAX) ||
          (d != 0 && elements > uint64_t(INT64_MAX) / d))
        return fail("tensor " + quote(info.name) +
                    " has too many elements (overflow)");
      elements *= d;
    }
    uint64_t bytes;
    std::string why;
    uint64_t ne0 = info.dims.empty() ? 1 : info.dims[0];
    if (!ggmlTensorBytes(info.ggmlType, ne0, elements, bytes, why))
      return fail("tensor " + quote(info.name) + ": " + why);
    if (bytes != info.byteSize)
      return fail("tensor " + quote(info.name) + " is " +
                  std::to_string(bytes) + " bytes, not " +
                  std::to_string(info.byteSize));
    if (!t.data && !t.fill && bytes != 0)
      return fail("tensor " + quote(info.name) + " has no data");
  }

  // The one atomic writer: a temporary file renamed over `path` at the end.
  AtomicFileWriter file(path);
  auto stripPath = [&](std::string why) {
    const std::string prefix = path + ": ";
    return why.compare(0, prefix.size(), prefix) == 0
               ? why.substr(prefix.size())
               : why;
  };
  std::string why;
  if (!file.open(why))
    return fail(stripPath(why));
  // Fill callbacks and the per-tensor buffer may throw; the temporary file
  // goes either way (the writer's destructor removes it).
  try {
    if (!writeTo(file, why))
      return fail(stripPath(why));
  } catch (const std::exception &e) {
    return fail(std::string("cannot write: ") + e.what());
  } catch (...) {
    return fail("cannot write: unknown exception");
  }
  if (!file.commit(why))
    return fail(stripPath(why));
  return true;
}

bool Writer::writeTo(AtomicFileWriter &file, std::string &why) const {
  auto fail = [&](std::string what) {
    why = std::move(what);
    return false;
  };
  uint64_t align = alignment();
  Output out(file);
  out.bytes(kMagic, 4);
  out.u32(version_);
  out.u64(tensors_.size());
  out.u64(kvs_.size());
  for (const KeyValue &kv : kvs_) {
    out.string(kv.key);
    out.u32(static_cast<uint32_t>(kv.value.type));
    writeValue(out, kv.value);
  }
  // Offsets as gguf_add_tensor assigns them: each tensor's size padded.
  uint64_t offset = 0;
  for (const PendingTensor &t : tensors_) {
    out.string(t.info.name);
    out.u32(static_cast<uint32_t>(t.info.dims.size()));
    for (uint64_t d : t.info.dims)
      out.u64(d);
    out.u32(t.info.ggmlType);
    out.u64(offset);
    offset += alignUp(t.info.byteSize, align);
  }
  out.padTo(align);
  std::vector<uint8_t> scratch;
  for (const PendingTensor &t : tensors_) {
    uint64_t n = t.info.byteSize;
    if (n != 0 && t.data) {
      out.bytes(t.data, static_cast<size_t>(n));
    } else if (n != 0) {
      // One tensor at a time: never a copy of the whole model.
      scratch.assign(static_cast<size_t>(n), 0);
      std::string fillWhy;
      if (!t.fill(scratch.data(), n, fillWhy))
        return fail("cannot produce the data of tensor " + quote(t.info.name) +
                    (fillWhy.empty() ? "" : ": " + fillWhy));
      out.bytes(scratch.data(), scratch.size());
    }
    out.padTo(align);
    if (!out.ok())
      break;
  }
  out.flush();
  if (!out.ok())
    return fail(out.error());
  return true;
}

} // namespace lowbit::gguf
