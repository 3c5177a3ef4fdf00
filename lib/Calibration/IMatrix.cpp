//===- IMatrix.cpp - Importance matrices (llama.cpp-compatible) -----------===//
//
// The two file formats, as llama.cpp's imatrix tool writes them.
//
// Legacy .dat, little-endian:
//   int32 n_entries
//   n_entries x { int32 name_len; char name[name_len]; int32 ncall;
//                 int32 nval; float values[nval] }
//   int32 last_call                      (the chunk count; older files end
//   int32 dataset_len; char dataset[]     before these two fields)
// with ncall = ceil(max count / chunk size) and values = sum2 / count * ncall,
// so readers divide by ncall to get the mean of squares. The chunk size and
// the per-expert counts of MoE weights are not recorded.
//
// GGUF: general.type = "imatrix", imatrix.datasets (array of strings),
// imatrix.chunk_count and imatrix.chunk_size (UINT32); per weight, in sorted
// name order, F32 tensors "<name>.in_sum2" [n_in, n_mat], "<name>.counts"
// [1, n_mat] and (newer llama.cpp) "<name>.in_sum" [n_in, n_mat]. ggml drops
// trailing dimensions of 1, so a dense weight's tensors are [n_in] and [1].
//
//===----------------------------------------------------------------------===//

#include "lowbit/Calibration/IMatrix.h"

#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Support/MappedFile.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the imatrix reader and writer assume a little-endian host"
#endif

namespace lowbit::calib {
namespace {

constexpr uint32_t kGGMLTypeF32 = 0;
/// Every name llama.cpp collects is a ggml tensor name (GGML_MAX_NAME - 1).
constexpr size_t kMaxNameLength = gguf::kMaxTensorNameLength;
constexpr const char *kSum2Suffix = ".in_sum2";
constexpr const char *kCountsSuffix = ".counts";
constexpr const char *kSumSuffix = ".in_sum";

std::string quote(const std::string &s) { return "'" + s + "'"; }

bool endsWith(const std::string &s, const char *suffix, std::string &base) {
  size_t n = std::strlen(suffix);
  if (s.size() < n || s.compare(s.size() - n, n, suffix) != 0)
    return false;
  base = s.substr(0, s.size() - n);
  return true;
}

std::string formatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(v));
  return buf;
}

/// A bounds-checked cursor over a legacy file.
class Cursor {
public:
  Cursor(const uint8_t *data, size_t size) : data_(data), size_(size) {}
  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  bool readI32(int32_t &v) {
    if (remaining() < sizeof(v))
      return false;
    std::memcpy(&v, data_ + pos_, sizeof(v));
    pos_ += sizeof(v);
    return true;
  }
  /// Pointer to the next `n` bytes, or null when fewer remain.
  const uint8_t *take(uint64_t n) {
    if (remaining() < n)
      return nullptr;
    const uint8_t *p = data_ + pos_;
    pos_ += n;
    return p;
  }

private:
  const uint8_t *data_;
  size_t size_;
  size_t pos_ = 0;
};

//===----------------------------------------------------------------------===//
// Legacy reader
//===----------------------------------------------------------------------===//

bool parseLegacy(const uint8_t *data, size_t size, const std::string &file,
                 int64_t chunkSize, IMatrix &out, std::string &error) {
  auto fail = [&](const std::string &what, uint64_t offset) {
    error = file + ": " + what + " at offset " + std::to_string(offset);
    return false;
  };
  Cursor in(data, size);
  int32_t nEntries;
  if (!in.readI32(nEntries))
    return fail("not an imatrix file (neither GGUF nor legacy: " +
                    std::to_string(size) + " bytes)",
                0);
  if (nEntries < 1)
    return fail("bad entry count " + std::to_string(nEntries), 0);

  // llama.cpp multiplies by its guess of the chunk size; by default the
  // counts stay in chunks (scale 1), which keeps the values exact.
  const double scale = chunkSize > 0 ? static_cast<double>(chunkSize) : 1.0;
  for (int32_t i = 0; i < nEntries; ++i) {
    std::string which =
        "entry " + std::to_string(i + 1) + " of " + std::to_string(nEntries);
    uint64_t at = in.offset();
    int32_t len;
    if (!in.readI32(len))
      return fail("truncated name length of " + which, at);
    if (len < 1 || static_cast<size_t>(len) > kMaxNameLength)
      return fail("bad name length " + std::to_string(len) + " of " + which +
                      " (1 to " + std::to_string(kMaxNameLength) + " bytes)",
                  at);
    at = in.offset();
    const uint8_t *namePtr = in.take(static_cast<uint64_t>(len));
    if (!namePtr)
      return fail("truncated name of " + which, at);
    std::string name(reinterpret_cast<const char *>(namePtr),
                     static_cast<size_t>(len));
    if (name.find('\0') != std::string::npos)
      return fail("name of " + which + " contains a NUL byte", at);
    if (out.entries.count(name))
      return fail("duplicate entry " + quote(name), at);

    at = in.offset();
    int32_t ncall, nval;
    if (!in.readI32(ncall))
      return fail("truncated call count of " + quote(name), at);
    if (ncall < 0)
      return fail("negative call count " + std::to_string(ncall) + " of " +
                      quote(name),
                  at);
    at = in.offset();
    if (!in.readI32(nval))
      return fail("truncated value count of " + quote(name), at);
    if (nval < 1)
      return fail(
          "bad value count " + std::to_string(nval) + " of " + quote(name), at);
    at = in.offset();
    // Checked before allocating, so a hostile count costs nothing.
    uint64_t bytes = static_cast<uint64_t>(nval) * sizeof(float);
    const uint8_t *values = in.take(bytes);
    if (!values)
      return fail("truncated values of " + quote(name) + " (" +
                      std::to_string(nval) + " values need " +
                      std::to_string(bytes) + " bytes, " +
                      std::to_string(in.remaining()) + " remain)",
                  at);

    IMatrixEntry e;
    e.sumSquares.resize(static_cast<size_t>(nval));
    std::memcpy(e.sumSquares.data(), values, bytes);
    for (size_t k = 0; k < e.sumSquares.size(); ++k) {
      float v = e.sumSquares[k];
      uint64_t vAt = at + k * sizeof(float);
      if (!std::isfinite(v))
        return fail("non-finite value " + formatFloat(v) + " in " + quote(name),
                    vAt);
      if (v < 0)
        return fail("negative value " + formatFloat(v) + " in " + quote(name),
                    vAt);
      if (scale != 1.0) {
        e.sumSquares[k] = static_cast<float>(v * scale);
        if (!std::isfinite(e.sumSquares[k]))
          return fail("value of " + quote(name) +
                          " overflows when scaled by the chunk size",
                      vAt);
      }
    }
    // ncall 0 never comes from llama.cpp's writers; its quantizer then uses
    // the values as they are, which a count of 1 reproduces.
    e.counts.assign(1, static_cast<float>(std::max<int32_t>(ncall, 1) * scale));
    out.order.push_back(name);
    out.entries.emplace(std::move(name), std::move(e));
  }

  // The trailer: the chunk count, then the dataset name; either may be
  // absent in files from older llama.cpp builds.
  if (in.remaining() == 0)
    return true;
  uint64_t at = in.offset();
  int32_t lastCall;
  if (!in.readI32(lastCall))
    return fail("truncated chunk count", at);
  if (lastCall < 0)
    return fail("negative chunk count " + std::to_string(lastCall), at);
  out.chunkCount = lastCall;
  if (in.remaining() == 0)
    return true;
  at = in.offset();
  int32_t datasetLen;
  if (!in.readI32(datasetLen))
    return fail("truncated dataset name length", at);
  if (datasetLen < 0)
    return fail("bad dataset name length " + std::to_string(datasetLen), at);
  at = in.offset();
  const uint8_t *dataset = in.take(static_cast<uint64_t>(datasetLen));
  if (!dataset)
    return fail("truncated dataset name (" + std::to_string(datasetLen) +
                    " bytes, " + std::to_string(in.remaining()) + " remain)",
                at);
  std::string datasetName(reinterpret_cast<const char *>(dataset),
                          static_cast<size_t>(datasetLen));
  if (datasetName.find('\0') != std::string::npos)
    return fail("dataset name contains a NUL byte", at);
  if (!datasetName.empty())
    out.datasets.push_back(std::move(datasetName));
  if (in.remaining() != 0)
    return fail(std::to_string(in.remaining()) +
                    " unexpected bytes after the dataset name",
                in.offset());
  return true;
}

//===----------------------------------------------------------------------===//
// GGUF reader
//===----------------------------------------------------------------------===//

using Shape = std::array<uint64_t, gguf::kMaxDims>;

Shape shapeOf(const gguf::TensorInfo &t) {
  Shape s;
  s.fill(1);
  for (size_t d = 0; d < t.dims.size() && d < s.size(); ++d)
    s[d] = t.dims[d];
  return s;
}

std::string formatShape(const gguf::TensorInfo &t) {
  std::string s = "[";
  for (size_t d = 0; d < t.dims.size(); ++d)
    s += (d ? ", " : "") + std::to_string(t.dims[d]);
  return s + "]";
}

bool parseGGUF(const uint8_t *data, size_t size, const std::string &file,
               IMatrix &out, std::string &error) {
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader =
      gguf::Reader::fromMemory(data, size, file, gerr);
  if (!reader) {
    error = gerr.message();
    return false;
  }
  auto fail = [&](const std::string &what, uint64_t offset) {
    error = file + ": " + what + " at offset " + std::to_string(offset);
    return false;
  };

  if (const gguf::KeyValue *kv = reader->find("general.type")) {
    if (kv->value.type != gguf::ValueType::String)
      return fail("general.type is not a string", kv->fileOffset);
    if (kv->value.str != "imatrix")
      return fail("not an imatrix file (general.type is " +
                      quote(kv->value.str) + ")",
                  kv->fileOffset);
  }
  if (const gguf::KeyValue *kv = reader->find("imatrix.datasets")) {
    if (kv->value.type != gguf::ValueType::Array ||
        kv->value.elementType != gguf::ValueType::String)
      return fail("imatrix.datasets is not an array of strings",
                  kv->fileOffset);
    for (const gguf::Value &v : kv->value.elements)
      out.datasets.push_back(v.str);
  }
  auto readCount = [&](const char *key, int64_t &dst) {
    const gguf::KeyValue *kv = reader->find(key);
    if (!kv)
      return true;
    if (!kv->value.isInteger() || kv->value.type == gguf::ValueType::Bool)
      return fail(std::string(key) + " is not an integer", kv->fileOffset);
    if (kv->value.asInt() < 0)
      return fail(std::string(key) + " is negative or too large",
                  kv->fileOffset);
    dst = kv->value.asInt();
    return true;
  };
  if (!readCount("imatrix.chunk_count", out.chunkCount) ||
      !readCount("imatrix.chunk_size", out.chunkSize))
    return false;

  // Group the tensors by weight; anything else is ignored, as llama.cpp does.
  enum Part { Sum2, Counts, Sum };
  using Parts = std::array<const gguf::TensorInfo *, 3>;
  std::map<std::string, Parts> parts;
  std::vector<std::string> firstSeen;
  for (const gguf::TensorInfo &t : reader->tensors()) {
    std::string base;
    Part part;
    if (endsWith(t.name, kSum2Suffix, base))
      part = Sum2;
    else if (endsWith(t.name, kCountsSuffix, base))
      part = Counts;
    else if (endsWith(t.name, kSumSuffix, base))
      part = Sum;
    else
      continue;
    uint64_t at = reader->tensorFileOffset(t);
    if (base.empty())
      return fail("tensor " + quote(t.name) + " names no weight", at);
    if (t.ggmlType != kGGMLTypeF32) {
      const char *type = gguf::ggmlTypeName(t.ggmlType);
      return fail("tensor " + quote(t.name) + " is " +
                      (type ? type : "type " + std::to_string(t.ggmlType)) +
                      ", not F32",
                  at);
    }
    auto [it, inserted] = parts.try_emplace(base, Parts{});
    if (inserted)
      firstSeen.push_back(base);
    it->second[part] = &t;
  }
  if (parts.empty()) {
    error = file + ": no importance matrix tensors ('<weight>" + kSum2Suffix +
            "' with '<weight>" + kCountsSuffix + "')";
    return false;
  }

  // Copies a tensor's floats, rejecting NaN/Inf (and negative values where
  // they cannot occur). Sizes were bounded by the file size by the reader.
  auto readFloats = [&](const gguf::TensorInfo &t, bool nonNegative,
                        std::vector<float> &dst) {
    uint64_t n = t.elementCount();
    dst.resize(static_cast<size_t>(n));
    std::memcpy(dst.data(), reader->tensorData(t), n * sizeof(float));
    for (size_t k = 0; k < dst.size(); ++k) {
      uint64_t at = reader->tensorFileOffset(t) + k * sizeof(float);
      if (!std::isfinite(dst[k]))
        return fail("non-finite value " + formatFloat(dst[k]) + " in tensor " +
                        quote(t.name),
                    at);
      if (nonNegative && dst[k] < 0)
        return fail("negative value " + formatFloat(dst[k]) + " in tensor " +
                        quote(t.name),
                    at);
    }
    return true;
  };

  for (const std::string &base : firstSeen) {
    const Parts &found = parts[base];
    const gguf::TensorInfo *sum2 = found[Sum2], *counts = found[Counts],
                           *sum = found[Sum];
    if (!sum2) {
      const gguf::TensorInfo *other = counts ? counts : sum;
      return fail("tensor " + quote(other->name) + " has no matching " +
                      quote(base + kSum2Suffix),
                  reader->tensorFileOffset(*other));
    }
    uint64_t at = reader->tensorFileOffset(*sum2);
    if (!counts)
      return fail("tensor " + quote(sum2->name) + " has no matching " +
                      quote(base + kCountsSuffix),
                  at);
    Shape s = shapeOf(*sum2), c = shapeOf(*counts);
    if (s[0] == 0 || s[1] == 0 || s[2] != 1 || s[3] != 1)
      return fail("tensor " + quote(sum2->name) + " has shape " +
                      formatShape(*sum2) + ", expected [n_in, n_mat]",
                  at);
    if (c[0] != 1 || c[1] != s[1] || c[2] != 1 || c[3] != 1)
      return fail("mismatched shapes: tensor " + quote(counts->name) + " is " +
                      formatShape(*counts) + " but " + quote(sum2->name) +
                      " is " + formatShape(*sum2) + " (expected [1, " +
                      std::to_string(s[1]) + "])",
                  reader->tensorFileOffset(*counts));
    if (sum && shapeOf(*sum) != s)
      return fail("mismatched shapes: tensor " + quote(sum->name) + " is " +
                      formatShape(*sum) + " but " + quote(sum2->name) + " is " +
                      formatShape(*sum2),
                  reader->tensorFileOffset(*sum));
    IMatrixEntry e;
    if (!readFloats(*sum2, true, e.sumSquares) ||
        !readFloats(*counts, true, e.counts) ||
        (sum && !readFloats(*sum, false, e.sum)))
      return false;
    out.order.push_back(base);
    out.entries.emplace(base, std::move(e));
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Writers
//===----------------------------------------------------------------------===//

/// The names in `order` first (as loaded), then the rest sorted.
std::vector<std::string> writeOrder(const IMatrix &m) {
  std::vector<std::string> names;
  std::set<std::string> done;
  for (const std::string &name : m.order)
    if (m.entries.count(name) && done.insert(name).second)
      names.push_back(name);
  for (const auto &kv : m.entries)
    if (!done.count(kv.first))
      names.push_back(kv.first);
  return names;
}

/// Checks what both writers need of an entry; `why` says what is wrong.
bool validEntry(const std::string &name, const IMatrixEntry &e,
                std::string &why) {
  auto bad = [&](const std::string &what) {
    why = "entry " + quote(name) + ": " + what;
    return false;
  };
  if (name.empty())
    return bad("empty name");
  if (name.find('\0') != std::string::npos)
    return bad("name contains a NUL byte");
  if (e.counts.empty())
    return bad("no counts");
  if (e.sumSquares.empty() || e.sumSquares.size() % e.counts.size() != 0)
    return bad(std::to_string(e.sumSquares.size()) +
               " sums of squares are not a whole number of rows for " +
               std::to_string(e.counts.size()) + " matrices");
  if (!e.sum.empty() && e.sum.size() != e.sumSquares.size())
    return bad(std::to_string(e.sum.size()) + " sums but " +
               std::to_string(e.sumSquares.size()) + " sums of squares");
  for (float v : e.sumSquares)
    if (!std::isfinite(v) || v < 0)
      return bad("sum of squares " + formatFloat(v) +
                 " is not finite and non-negative");
  for (float v : e.counts)
    if (!std::isfinite(v) || v < 0)
      return bad("count " + formatFloat(v) + " is not finite and non-negative");
  for (float v : e.sum)
    if (!std::isfinite(v))
      return bad("non-finite sum " + formatFloat(v));
  return true;
}

void appendI32(std::string &buf, int32_t v) {
  buf.append(reinterpret_cast<const char *>(&v), sizeof(v));
}

} // namespace

//===----------------------------------------------------------------------===//
// IMatrix
//===----------------------------------------------------------------------===//

bool IMatrix::isGGUF(const void *data, size_t size) {
  return size >= 4 && std::memcmp(data, "GGUF", 4) == 0;
}

bool IMatrix::loadFromMemory(const void *data, size_t size,
                             const std::string &name, IMatrix &out,
                             std::string &error, int64_t legacyChunkSize) {
  if (legacyChunkSize < 0 || legacyChunkSize > INT32_MAX) {
    error = name + ": bad chunk size " + std::to_string(legacyChunkSize);
    return false;
  }
  const auto *bytes = static_cast<const uint8_t *>(data);
  IMatrix result;
  bool ok = isGGUF(data, size) ? parseGGUF(bytes, size, name, result, error)
                               : parseLegacy(bytes, size, name, legacyChunkSize,
                                             result, error);
  if (!ok)
    return false;
  if (!isGGUF(data, size))
    result.chunkSize = legacyChunkSize;
  out = std::move(result);
  return true;
}

bool IMatrix::load(const std::string &path, IMatrix &out, std::string &error) {
  return load(path, out, error, 0);
}

bool IMatrix::load(const std::string &path, IMatrix &out, std::string &error,
                   int64_t legacyChunkSize) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path, error);
  if (!file)
    return false;
  return loadFromMemory(file->data(), file->size(), path, out, error,
                        legacyChunkSize);
}

bool IMatrix::saveGGUF(const std::string &path, std::string &error) const {
  gguf::Writer writer(3);
  if (!addToGGUF(writer, error)) {
    error = path + ": " + error;
    return false;
  }
  gguf::Error gerr;
  if (!writer.write(path, gerr)) {
    error = gerr.message();
    return false;
  }
  return true;
}

bool IMatrix::addToGGUF(gguf::Writer &writer, std::string &error) const {
  auto fail = [&](const std::string &what) {
    error = what;
    return false;
  };
  if (chunkCount < 0 || chunkCount > UINT32_MAX)
    return fail("chunk count " + std::to_string(chunkCount) +
                " does not fit imatrix.chunk_count (UINT32)");
  if (chunkSize < 0 || chunkSize > UINT32_MAX)
    return fail("chunk size " + std::to_string(chunkSize) +
                " does not fit imatrix.chunk_size (UINT32)");
  std::vector<std::string> names = writeOrder(*this);
  if (names.empty())
    return fail("no entries to write");
  const size_t maxBase = kMaxNameLength - std::strlen(kSum2Suffix);
  for (const std::string &name : names) {
    std::string why;
    if (!validEntry(name, entries.at(name), why))
      return fail(why);
    if (name.size() > maxBase)
      return fail("entry " + quote(name) + ": name is longer than " +
                  std::to_string(maxBase) + " bytes, too long for '" + name +
                  kSum2Suffix + "' in GGUF");
  }

  writer.set("general.type", gguf::Value::makeString("imatrix"));
  std::vector<gguf::Value> datasetValues;
  for (const std::string &d : datasets)
    datasetValues.push_back(gguf::Value::makeString(d));
  writer.set("imatrix.datasets",
             gguf::Value::makeArray(gguf::ValueType::String,
                                    std::move(datasetValues)));
  writer.set("imatrix.chunk_count",
             gguf::Value::makeU32(static_cast<uint32_t>(chunkCount)));
  // Counts read from a legacy file without a chunk size are in chunks:
  // a chunk size of 1 keeps count / chunk_size = chunks true.
  writer.set("imatrix.chunk_size", gguf::Value::makeU32(static_cast<uint32_t>(
                                       chunkSize > 0 ? chunkSize : 1)));
  for (const std::string &name : names) {
    const IMatrixEntry &e = entries.at(name);
    uint64_t nMat = e.counts.size();
    uint64_t nIn = e.sumSquares.size() / nMat;
    // As ggml writes them: trailing dimensions of 1 dropped.
    auto dims = [&](uint64_t ne0) {
      return nMat == 1 ? std::vector<uint64_t>{ne0}
                       : std::vector<uint64_t>{ne0, nMat};
    };
    writer.addTensor(name + kSum2Suffix, dims(nIn), kGGMLTypeF32,
                     e.sumSquares.data(), e.sumSquares.size() * sizeof(float));
    writer.addTensor(name + kCountsSuffix, dims(1), kGGMLTypeF32,
                     e.counts.data(), e.counts.size() * sizeof(float));
    if (!e.sum.empty())
      writer.addTensor(name + kSumSuffix, dims(nIn), kGGMLTypeF32, e.sum.data(),
                       e.sum.size() * sizeof(float));
  }
  return true;
}

bool IMatrix::saveLegacy(const std::string &path, std::string &error) const {
  auto fail = [&](const std::string &what) {
    error = path + ": " + what;
    return false;
  };
  if (chunkCount < 0 || chunkCount > INT32_MAX)
    return fail("chunk count " + std::to_string(chunkCount) +
                " does not fit the legacy format (int32)");
  if (chunkSize < 0)
    return fail("negative chunk size " + std::to_string(chunkSize));
  // Like llama.cpp, entries without any data are left out.
  std::vector<std::string> names;
  for (const std::string &name : writeOrder(*this)) {
    const IMatrixEntry &e = entries.at(name);
    std::string why;
    if (!validEntry(name, e, why))
      return fail(why);
    if (name.size() > kMaxNameLength)
      return fail("entry " + quote(name) + ": name is longer than " +
                  std::to_string(kMaxNameLength) + " bytes");
    if (e.sumSquares.size() > static_cast<size_t>(INT32_MAX))
      return fail("entry " + quote(name) + " has too many values");
    if (*std::max_element(e.counts.begin(), e.counts.end()) > 0)
      names.push_back(name);
  }
  if (names.empty())
    return fail("no entry has data (a legacy file needs at least one)");

  const double cs = chunkSize > 0 ? static_cast<double>(chunkSize) : 1.0;
  std::string buf;
  appendI32(buf, static_cast<int32_t>(names.size()));
  for (const std::string &name : names) {
    const IMatrixEntry &e = entries.at(name);
    double maxCount = *std::max_element(e.counts.begin(), e.counts.end());
    double ncall = std::ceil(maxCount / cs);
    if (ncall > INT32_MAX)
      return fail("entry " + quote(name) + ": call count " +
                  std::to_string(ncall) + " does not fit the legacy format");
    appendI32(buf, static_cast<int32_t>(name.size()));
    buf += name;
    appendI32(buf, static_cast<int32_t>(ncall));
    appendI32(buf, static_cast<int32_t>(e.sumSquares.size()));
    size_t nIn = e.sumSquares.size() / e.counts.size();
    for (size_t k = 0; k < e.sumSquares.size(); ++k) {
      float count = e.counts[k / nIn];
      float sum2 = e.sumSquares[k];
      float v;
      if (count == 0) {
        // llama.cpp stores 1 (times ncall) for matrices without data.
        v = static_cast<float>(ncall);
      } else if (static_cast<double>(count) == ncall * cs) {
        // sum2 / count * ncall = sum2 / chunk size: one rounding (none for a
        // power-of-two chunk size) instead of two, so files round-trip.
        v = static_cast<float>(sum2 / cs);
      } else {
        v = sum2 / count * static_cast<float>(ncall);
      }
      if (!std::isfinite(v))
        return fail("entry " + quote(name) + ": value overflows");
      buf.append(reinterpret_cast<const char *>(&v), sizeof(v));
    }
  }
  appendI32(buf, static_cast<int32_t>(chunkCount));
  // llama.cpp records one dataset: the last one.
  const std::string dataset = datasets.empty() ? "" : datasets.back();
  if (dataset.size() > static_cast<size_t>(INT32_MAX))
    return fail("dataset name too long");
  appendI32(buf, static_cast<int32_t>(dataset.size()));
  buf += dataset;

  AtomicFileWriter writer(path);
  return writer.open(error) && writer.write(buf.data(), buf.size(), error) &&
         writer.commit(error);
}

std::vector<float> IMatrix::importance(const std::string &tensorName,
                                       int64_t expert, int64_t inputs) const {
  auto it = entries.find(tensorName);
  if (it == entries.end())
    return {};
  const IMatrixEntry &e = it->second;
  size_t nMat = e.counts.size();
  const bool sharedCount = nMat == 1 && inputs > 0 &&
                           e.sumSquares.size() % inputs == 0 &&
                           e.sumSquares.size() > static_cast<size_t>(inputs);
  if (sharedCount)
    nMat = e.sumSquares.size() / static_cast<size_t>(inputs);
  if (nMat == 0 || e.sumSquares.size() % nMat != 0 || expert < 0 ||
      static_cast<uint64_t>(expert) >= nMat)
    return {};
  size_t nIn = e.sumSquares.size() / nMat;
  float count = e.counts[sharedCount ? 0 : static_cast<size_t>(expert)];
  // A matrix that saw no tokens gets uniform importance, as in llama.cpp.
  if (count <= 0)
    return std::vector<float>(nIn, 1.0f);
  std::vector<float> result(nIn);
  const float *sum2 = e.sumSquares.data() + static_cast<size_t>(expert) * nIn;
  for (size_t j = 0; j < nIn; ++j)
    result[j] = sum2[j] / count;
  return result;
}

std::vector<float> IMatrix::meanActivation(const std::string &tensorName,
                                           int64_t expert) const {
  auto it = entries.find(tensorName);
  if (it == entries.end())
    return {};
  const IMatrixEntry &e = it->second;
  size_t nMat = e.counts.size();
  if (nMat == 0 || e.sum.empty() || e.sum.size() != e.sumSquares.size() ||
      e.sum.size() % nMat != 0 || expert < 0 ||
      static_cast<uint64_t>(expert) >= nMat)
    return {};
  size_t nIn = e.sum.size() / nMat;
  float count = e.counts[static_cast<size_t>(expert)];
  std::vector<float> result(nIn, 0.0f);
  if (count <= 0)
    return result;
  const float *sum = e.sum.data() + static_cast<size_t>(expert) * nIn;
  for (size_t j = 0; j < nIn; ++j)
    result[j] = sum[j] / count;
  return result;
}

double IMatrix::tokenCount(const std::string &tensorName,
                           int64_t expert) const {
  auto it = entries.find(tensorName);
  if (it == entries.end() || expert < 0)
    return 0;
  const std::vector<float> &counts = it->second.counts;
  if (counts.size() == 1)
    return counts[0];
  return static_cast<size_t>(expert) < counts.size() ? counts[expert] : 0;
}

} // namespace lowbit::calib
