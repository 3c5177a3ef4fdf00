//===- GGUFTest.cpp - GGUF reader/writer unit tests -----------------------===//
#include "lowbit/GGUF/GGUF.h"

#include "lowbit/Formats/Formats.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <ftw.h>
#include <iterator>
#include <limits>
#include <new>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "../Common/AllocationTracker.h"

using namespace lowbit::gguf;

using lowbit::test::largestAllocationDuring;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// Little-endian byte builder for hand-made (often broken) files.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes &u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Bytes &u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      b.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes &u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      b.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes &raw(const std::string &s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes &str(const std::string &s) { return u64(s.size()).raw(s); }
  Bytes &header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(tensors).u64(kvs);
  }
  Bytes &kvU32(const std::string &key, uint32_t v) {
    return str(key).u32(uint32_t(ValueType::U32)).u32(v);
  }
  Bytes &tensor(const std::string &name, std::vector<uint64_t> dims,
                uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(dims.size()));
    for (uint64_t d : dims)
      u64(d);
    return u32(type).u64(offset);
  }
  Bytes &padTo(size_t a) {
    while (b.size() % a)
      b.push_back(0);
    return *this;
  }
  Bytes &zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

/// Parses a copy of `bytes` in a buffer of exactly that size, so that any
/// read past the end is caught by sanitizers.
struct Parsed {
  std::unique_ptr<uint8_t[]> buffer;
  std::unique_ptr<Reader> reader;
  Error err;
  bool ok() const { return reader != nullptr; }
};

Parsed parse(const std::vector<uint8_t> &bytes, size_t n = SIZE_MAX) {
  Parsed p;
  n = std::min(n, bytes.size());
  p.buffer.reset(new uint8_t[n ? n : 1]);
  if (n)
    std::memcpy(p.buffer.get(), bytes.data(), n);
  p.reader = Reader::fromMemory(p.buffer.get(), n, "mem.gguf", p.err);
  return p;
}

std::string tempDir() {
  return ::testing::TempDir() + "lowbit-gguf-test-" +
         std::to_string(::getpid());
}

std::string tempPath(const std::string &name) {
  std::string dir = tempDir();
  ::mkdir(dir.c_str(), 0755);
  return dir + "/" + name;
}

/// Removes this process's scratch folder after the last test.
class CleanupEnvironment : public ::testing::Environment {
public:
  void TearDown() override {
    ::nftw(
        tempDir().c_str(),
        [](const char *path, const struct stat *, int, struct FTW *) {
          return ::remove(path);
        },
        16, FTW_DEPTH | FTW_PHYS);
  }
};
[[maybe_unused]] ::testing::Environment *const kCleanup =
    ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in),
                              std::istreambuf_iterator<char>());
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// Names in `dir` that start with `prefix`.
std::vector<std::string> filesStartingWith(const std::string &dir,
                                           const std::string &prefix) {
  std::vector<std::string> names;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (dirent *e = ::readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0)
        names.push_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

Value strings(std::vector<std::string> items) {
  std::vector<Value> v;
  for (std::string &s : items)
    v.push_back(Value::makeString(std::move(s)));
  return Value::makeArray(ValueType::String, std::move(v));
}

/// One key of every value type, including nested and empty arrays.
void addAllValueTypes(Writer &w) {
  w.set("t.u8", Value::makeU8(250));
  w.set("t.i8", Value::makeI8(-7));
  w.set("t.u16", Value::makeU16(65535));
  w.set("t.i16", Value::makeI16(-32768));
  w.set("t.u32", Value::makeU32(0xdeadbeef));
  w.set("t.i32", Value::makeI32(std::numeric_limits<int32_t>::min()));
  w.set("t.f32", Value::makeF32(-0.0f));
  w.set("t.bool", Value::makeBool(true));
  w.set("t.string", Value::makeString(std::string("a\0b\xff", 4)));
  w.set("t.u64", Value::makeU64(UINT64_MAX));
  w.set("t.i64", Value::makeI64(std::numeric_limits<int64_t>::min()));
  w.set("t.f64", Value::makeF64(3.141592653589793));
  w.set("t.f32.nan", Value::makeF32(std::nanf("0x123")));
  w.set("t.empty.string", Value::makeString(""));
  w.set("t.arr.u8",
        Value::makeArray(ValueType::U8, {Value::makeU8(1), Value::makeU8(2)}));
  w.set("t.arr.i16", Value::makeArray(ValueType::I16, {Value::makeI16(-1)}));
  w.set("t.arr.f32", Value::makeArray(ValueType::F32, {Value::makeF32(1.5f),
                                                       Value::makeF32(2.5f)}));
  w.set("t.arr.f64",
        Value::makeArray(ValueType::F64, {Value::makeF64(-1e300)}));
  w.set("t.arr.bool",
        Value::makeArray(ValueType::Bool,
                         {Value::makeBool(true), Value::makeBool(false)}));
  w.set("t.arr.u64", Value::makeArray(ValueType::U64, {Value::makeU64(7)}));
  w.set("t.arr.i64", Value::makeArray(ValueType::I64, {Value::makeI64(-7)}));
  w.set("t.arr.string", strings({"x", "", "yz"}));
  w.set("t.arr.empty.u32", Value::makeArray(ValueType::U32, {}));
  w.set("t.arr.empty.string", Value::makeArray(ValueType::String, {}));
  w.set("t.arr.nested",
        Value::makeArray(
            ValueType::Array,
            {Value::makeArray(ValueType::I32, {Value::makeI32(1)}),
             Value::makeArray(ValueType::String, {}),
             Value::makeArray(ValueType::Array,
                              {Value::makeArray(ValueType::U8, {})})}));
  w.set("t.arr.empty.array", Value::makeArray(ValueType::Array, {}));
}

struct TestTensors {
  std::vector<float> a{1, 2, 3, 4, 5, 6, 7, 8};            // F32 [8]: 32 bytes
  std::vector<uint8_t> q = std::vector<uint8_t>(36, 0x5a); // Q4_0 [32, 2]
  std::vector<float> c = std::vector<float>(16, -1.0f);    // F32 [16]: 64 bytes
};

/// A small file with every value type and three tensors. The last tensor's
/// size is a multiple of 64, so the file has no trailing padding: every byte
/// of it is needed and any truncation must be an error.
Writer smallWriter(const TestTensors &t, uint32_t alignment) {
  Writer w;
  w.set("general.architecture", Value::makeString("test"));
  if (alignment != 32)
    w.set("general.alignment", Value::makeU32(alignment));
  addAllValueTypes(w);
  w.addTensor("a", {8}, 0, t.a.data(), 32);
  w.addTensor("q", {32, 2}, 2, t.q.data(), 36);
  w.addTensor("c", {4, 2, 2}, 0, 64,
              [&](uint8_t *dst, uint64_t n, std::string &) {
                std::memcpy(dst, t.c.data(), n);
                return true;
              });
  return w;
}

std::vector<uint8_t> smallFile(uint32_t alignment = 32) {
  TestTensors t;
  std::string path = tempPath("small-" + std::to_string(alignment) + ".gguf");
  Error err;
  EXPECT_TRUE(smallWriter(t, alignment).write(path, err)) << err.message();
  return readBytes(path);
}

//===----------------------------------------------------------------------===//
// Values and types
//===----------------------------------------------------------------------===//

TEST(GGUFValue, NamesAndSizes) {
  EXPECT_STREQ(valueTypeName(ValueType::U32), "UINT32");
  EXPECT_STREQ(valueTypeName(ValueType::F32), "FLOAT32");
  EXPECT_STREQ(valueTypeName(ValueType::String), "STRING");
  EXPECT_STREQ(valueTypeName(ValueType::Array), "ARRAY");
  EXPECT_EQ(scalarSize(ValueType::Bool), 1u);
  EXPECT_EQ(scalarSize(ValueType::I16), 2u);
  EXPECT_EQ(scalarSize(ValueType::F64), 8u);
  EXPECT_EQ(scalarSize(ValueType::String), 0u);
  EXPECT_EQ(scalarSize(ValueType::Array), 0u);
}

TEST(GGUFValue, EqualityAndIntegers) {
  EXPECT_EQ(Value::makeU32(5), Value::makeU32(5));
  EXPECT_NE(Value::makeU32(5), Value::makeI32(5));
  EXPECT_NE(Value::makeF32(0.0f), Value::makeF32(-0.0f));
  EXPECT_EQ(Value::makeF32(NAN), Value::makeF32(NAN));
  EXPECT_NE(Value::makeArray(ValueType::U8, {}),
            Value::makeArray(ValueType::I8, {}));
  EXPECT_EQ(Value::makeI32(-3).asInt(), -3);
  EXPECT_EQ(Value::makeU64(7).asInt(), 7);
  EXPECT_EQ(Value::makeBool(true).asInt(), 1);
  EXPECT_TRUE(Value::makeU8(1).isInteger());
  EXPECT_FALSE(Value::makeF32(1).isInteger());
  EXPECT_FALSE(Value::makeString("1").isInteger());
}

TEST(GGUFTypes, BlockLayouts) {
  // Every id ggml defines, with ggml_type_size/ggml_blck_size values.
  struct Row {
    uint32_t id;
    const char *name;
    uint32_t blockSize, blockBytes;
  } rows[] = {
      {0, "F32", 1, 4},         {1, "F16", 1, 2},
      {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
      {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},
      {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},
      {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
      {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
      {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
      {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136},
      {24, "I8", 1, 1},         {25, "I16", 1, 2},
      {26, "I32", 1, 4},        {27, "I64", 1, 8},
      {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
      {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
      {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
      {40, "NVFP4", 64, 36},    {41, "Q1_0", 128, 18},
      {42, "Q2_0", 64, 18},
  };
  for (const Row &r : rows) {
    uint32_t bs = 0, bb = 0;
    ASSERT_TRUE(ggmlBlockLayout(r.id, bs, bb)) << r.id;
    EXPECT_EQ(bs, r.blockSize) << r.name;
    EXPECT_EQ(bb, r.blockBytes) << r.name;
    EXPECT_STREQ(ggmlTypeName(r.id), r.name);
    uint64_t bytes = 0;
    std::string why;
    ASSERT_TRUE(
        ggmlTensorBytes(r.id, r.blockSize * 2, r.blockSize * 6, bytes, why));
    EXPECT_EQ(bytes, 6u * r.blockBytes);
  }
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u}) {
    uint32_t bs, bb;
    EXPECT_FALSE(ggmlBlockLayout(removed, bs, bb)) << removed;
    EXPECT_EQ(ggmlTypeName(removed), nullptr);
  }
  uint64_t bytes;
  std::string why;
  EXPECT_FALSE(ggmlTensorBytes(12, 100, 100, bytes, why));
  EXPECT_NE(why.find("block size 256"), std::string::npos) << why;
  EXPECT_FALSE(ggmlTensorBytes(0, 1, UINT64_MAX / 2, bytes, why));
  EXPECT_FALSE(ggmlTensorBytes(4, 1, 1, bytes, why));
  EXPECT_EQ(why, "unknown ggml type 4");
}

//===----------------------------------------------------------------------===//
// Round trips and layout
//===----------------------------------------------------------------------===//

class GGUFRoundTrip : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GGUFRoundTrip, EveryValueTypeAndTensor) {
  uint32_t alignment = GetParam();
  TestTensors t;
  Writer w = smallWriter(t, alignment);
  std::string path = tempPath("rt-" + std::to_string(alignment) + ".gguf");
  Error err;
  ASSERT_TRUE(w.write(path, err)) << err.message();

  auto r = Reader::open(path, err);
  ASSERT_TRUE(r) << err.message();
  EXPECT_EQ(r->version(), 3u);
  EXPECT_EQ(r->alignment(), alignment);
  EXPECT_EQ(r->dataOffset() % alignment, 0u);

  // Every key, in order, with its exact value (element types of empty
  // arrays included).
  ASSERT_EQ(r->metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    EXPECT_EQ(r->metadata()[i].key, w.metadata()[i].key);
    EXPECT_EQ(r->metadata()[i].value, w.metadata()[i].value)
        << w.metadata()[i].key;
  }
  const KeyValue *empty = r->find("t.arr.empty.string");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->value.elementType, ValueType::String);
  EXPECT_TRUE(empty->value.elements.empty());
  const KeyValue *nested = r->find("t.arr.nested");
  ASSERT_TRUE(nested);
  ASSERT_EQ(nested->value.elements.size(), 3u);
  EXPECT_EQ(nested->value.elements[2].elementType, ValueType::Array);
  EXPECT_EQ(nested->value.elements[2].elements[0].elementType, ValueType::U8);
  // The NaN payload survives.
  uint32_t bits;
  float f = std::nanf("0x123");
  std::memcpy(&bits, &f, 4);
  EXPECT_EQ(uint32_t(r->find("t.f32.nan")->value.u), bits);
  EXPECT_EQ(r->find("t.string")->value.str, std::string("a\0b\xff", 4));
  EXPECT_EQ(r->find("t.i64")->value.i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r->getString("general.architecture"), "test");
  EXPECT_EQ(r->getInt("t.u32", 0), 0xdeadbeef);
  EXPECT_EQ(r->getInt("t.string", -1), -1);
  EXPECT_EQ(r->getInt("missing", 42), 42);
  EXPECT_DOUBLE_EQ(r->getFloat("t.f64", 0), 3.141592653589793);
  EXPECT_DOUBLE_EQ(r->getFloat("t.arr.u8", 9), 9);

  // Tensors: offsets assigned in order, each padded to the alignment.
  ASSERT_EQ(r->tensors().size(), 3u);
  const TensorInfo &a = r->tensors()[0], &q = r->tensors()[1],
                   &c = r->tensors()[2];
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(q.offset, alignment);
  EXPECT_EQ(c.offset, alignment + 64u); // 36 bytes padded to 64.
  EXPECT_EQ(q.byteSize, 36u);
  EXPECT_EQ(q.ggmlType, 2u);
  EXPECT_EQ(c.dims, (std::vector<uint64_t>{4, 2, 2}));
  EXPECT_EQ(c.elementCount(), 16u);
  EXPECT_EQ(r->findTensor("q"), &q);
  EXPECT_EQ(r->findTensor("nope"), nullptr);
  EXPECT_EQ(r->tensorFileOffset(c), r->dataOffset() + c.offset);
  EXPECT_EQ(std::memcmp(r->tensorData(a), t.a.data(), 32), 0);
  EXPECT_EQ(std::memcmp(r->tensorData(q), t.q.data(), 36), 0);
  EXPECT_EQ(std::memcmp(r->tensorData(c), t.c.data(), 64), 0);
  EXPECT_EQ(r->fileSize(), r->dataOffset() + alignment + 64 + 64);

  // Padding bytes are zero.
  const uint8_t *base = r->base();
  for (uint64_t i = r->tensorFileOffset(q) + 36; i < r->tensorFileOffset(c);
       ++i)
    EXPECT_EQ(base[i], 0) << i;
}

INSTANTIATE_TEST_SUITE_P(Alignments, GGUFRoundTrip,
                         ::testing::Values(32u, 64u));

TEST(GGUFWriter, ExactBytes) {
  // What gguf_write_to_file writes for one u32 key and one F32 [3] tensor.
  float data[3] = {1, 2, 3};
  Writer w;
  w.set("k", Value::makeU32(7));
  w.addTensor("w", {3}, 0, data, 12);
  std::string path = tempPath("exact.gguf");
  Error err;
  ASSERT_TRUE(w.write(path, err)) << err.message();
  Bytes expected;
  expected.header(1, 1).kvU32("k", 7).tensor("w", {3}, 0, 0).padTo(32);
  for (float f : data) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    expected.u32(bits);
  }
  expected.padTo(32); // llama.cpp pads after the last tensor too.
  EXPECT_EQ(readBytes(path), expected.b);
}

TEST(GGUFWriter, NestedArrayEncoding) {
  // Elements of a nested array are (type, count, values) with no type tag of
  // their own, as gguf-py writes them.
  Writer w(2);
  w.set("n", Value::makeArray(
                 ValueType::Array,
                 {Value::makeArray(ValueType::U8, {Value::makeU8(9)})}));
  std::string path = tempPath("nested.gguf");
  Error err;
  ASSERT_TRUE(w.write(path, err)) << err.message();
  Bytes expected;
  expected.header(0, 1, 2).str("n").u32(9).u32(9).u64(1).u32(0).u64(1).u8(9);
  expected.padTo(32); // Padded even without tensors, as llama.cpp does.
  EXPECT_EQ(readBytes(path), expected.b);
  auto r = Reader::open(path, err);
  ASSERT_TRUE(r) << err.message();
  EXPECT_EQ(r->version(), 2u);
  EXPECT_EQ(r->dataOffset(), expected.b.size());
}

TEST(GGUFWriter, SetReplacesInPlaceAndRemove) {
  Writer w;
  w.set("a", Value::makeU32(1));
  w.set("b", Value::makeU32(2));
  w.set("a", Value::makeString("x"));
  ASSERT_EQ(w.metadata().size(), 2u);
  EXPECT_EQ(w.metadata()[0].key, "a");
  EXPECT_EQ(w.metadata()[0].value, Value::makeString("x"));
  w.remove("a");
  ASSERT_EQ(w.metadata().size(), 1u);
  EXPECT_EQ(w.metadata()[0].key, "b");
}

TEST(GGUFWriter, FailuresLeaveNothingBehind) {
  std::string path = tempPath("fail.gguf");
  std::string dir = path.substr(0, path.rfind('/'));
  std::vector<float> data(4, 1.0f);
  auto check = [&](Writer &w, const char *expect) {
    Error err;
    EXPECT_FALSE(w.write(path, err));
    EXPECT_NE(err.message().find(expect), std::string::npos) << err.message();
    EXPECT_FALSE(exists(path));
    EXPECT_TRUE(filesStartingWith(dir, "fail.gguf").empty());
  };
  {
    Writer w;
    w.addTensor("t", {4}, 0, 4 * sizeof(float),
                [](uint8_t *, uint64_t, std::string &why) {
                  why = "no data today";
                  return false;
                });
    check(w, "no data today");
  }
  {
    Writer w;
    w.addTensor("t", {4}, 0, data.data(), 15);
    check(w, "is 16 bytes, not 15");
  }
  {
    Writer w;
    w.addTensor("t", {4}, 0, data.data(), 16);
    w.addTensor("t", {4}, 0, data.data(), 16);
    check(w, "duplicate tensor name 't'");
  }
  {
    Writer w;
    w.addTensor("t", {100}, 12, data.data(), 16);
    check(w, "not a multiple of the block size 256");
  }
  {
    Writer w;
    w.set("general.alignment", Value::makeU32(48));
    check(w, "power of two");
  }
  {
    Writer w;
    w.set("caf\xc3\xa9.key", Value::makeU32(1));
    check(w, "is not printable ASCII");
  }
  {
    Writer w;
    w.set("x", Value::makeArray(ValueType::U8, {Value::makeU32(1)}));
    check(w, "array of UINT8 holds a UINT32");
  }
  {
    Writer w;
    w.addTensor(std::string(64, 'n'), {4}, 0, data.data(), 16);
    check(w, "longer than 63");
  }
  {
    Writer w(1);
    check(w, "version 1");
  }
  {
    Writer w;
    Value v = Value::makeU8(0);
    v.u = 256;
    w.set("x", v);
    check(w, "value out of range for UINT8");
  }
  {
    Writer w;
    w.addTensor("t", {4}, 0, 16,
                [](uint8_t *, uint64_t, std::string &) -> bool {
                  throw std::runtime_error("fill threw");
                });
    check(w, "fill threw");
  }
  {
    Writer w;
    Error err;
    EXPECT_FALSE(w.write(dir + "/no/such/dir/x.gguf", err));
    EXPECT_NE(err.message().find("No such file or directory"),
              std::string::npos)
        << err.message();
  }
}

//===----------------------------------------------------------------------===//
// Robustness
//===----------------------------------------------------------------------===//

TEST(GGUFRobustness, TruncationAtEveryByte) {
  for (uint32_t alignment : {32u, 64u}) {
    std::vector<uint8_t> file = smallFile(alignment);
    ASSERT_TRUE(parse(file).ok()) << parse(file).err.message();
    for (size_t n = 0; n < file.size(); ++n) {
      Parsed p = parse(file, n);
      ASSERT_FALSE(p.ok()) << "truncated at " << n;
      EXPECT_TRUE(p.err.hasOffset) << n;
      EXPECT_LE(p.err.offset, n) << p.err.message();
      EXPECT_EQ(p.err.file, "mem.gguf");
    }
  }
}

TEST(GGUFRobustness, FlipEveryMetadataByte) {
  std::vector<uint8_t> file = smallFile();
  Parsed good = parse(file);
  ASSERT_TRUE(good.ok());
  uint64_t metadataEnd = good.reader->dataOffset();
  size_t errors = 0;
  for (uint64_t i = 0; i < metadataEnd; ++i) {
    std::vector<uint8_t> bad = file;
    bad[i] ^= 0xff;
    Parsed p = parse(bad);
    if (!p.ok()) {
      ++errors;
      EXPECT_LE(p.err.offset, bad.size());
      continue;
    }
    // A valid parse must be usable: touch every tensor's first/last byte.
    for (const TensorInfo &t : p.reader->tensors())
      if (t.byteSize) {
        volatile uint8_t x = p.reader->tensorData(t)[0];
        x = p.reader->tensorData(t)[t.byteSize - 1];
        (void)x;
      }
  }
  EXPECT_GT(errors, 0u);
}

TEST(GGUFRobustness, HugeCountsDoNotAllocate) {
  struct Case {
    const char *name;
    Bytes bytes;
    const char *expect;
    uint64_t offset;
  };
  std::vector<Case> cases;
  cases.push_back({"kv count", Bytes().header(0, uint64_t(1) << 60).zeros(64),
                   "key/value count 1152921504606846976", 16});
  cases.push_back({"tensor count",
                   Bytes().header(uint64_t(1) << 60, 0).zeros(64),
                   "tensor count 1152921504606846976", 8});
  cases.push_back({"key length",
                   Bytes().header(0, 1).u64(uint64_t(1) << 62).zeros(64),
                   "key length 4611686018427387904 exceeds", 24});
  cases.push_back({"string value length",
                   Bytes()
                       .header(0, 1)
                       .str("k")
                       .u32(uint32_t(ValueType::String))
                       .u64(uint64_t(1) << 62)
                       .zeros(64),
                   "string length", 37});
  cases.push_back({"array length",
                   Bytes()
                       .header(0, 1)
                       .str("k")
                       .u32(uint32_t(ValueType::Array))
                       .u32(uint32_t(ValueType::U8))
                       .u64(uint64_t(1) << 60)
                       .zeros(64),
                   "array of 1152921504606846976 UINT8", 41});
  cases.push_back({"array of strings",
                   Bytes()
                       .header(0, 1)
                       .str("k")
                       .u32(uint32_t(ValueType::Array))
                       .u32(uint32_t(ValueType::String))
                       .u64(64)
                       .zeros(64),
                   "array of 64 STRING", 41});
  cases.push_back({"tensor name length",
                   Bytes().header(1, 0).u64(UINT64_MAX).zeros(64),
                   "tensor name length", 24});
  // Counts the file's size allows but its content does not.
  cases.push_back({"kv count within size",
                   Bytes().header(0, 70000).zeros(1 << 20), "empty key", 24});
  cases.push_back({"tensor count within size",
                   Bytes().header(40000, 0).zeros(1 << 20),
                   "tensor 'tensor': unknown ggml type", 0});
  {
    // 40000 claimed tensors; the first is a valid-looking name of an unknown
    // type.
    Bytes &b = cases.back().bytes;
    b.b.resize(24);
    b.str("tensor").u32(0).u32(31).u64(0).zeros(1 << 20);
    cases.back().offset = 24 + 14 + 4;
  }
  for (Case &c : cases) {
    Parsed p;
    size_t largest = largestAllocationDuring([&] { p = parse(c.bytes.b); });
    ASSERT_FALSE(p.ok()) << c.name;
    EXPECT_NE(p.err.what.find(c.expect), std::string::npos)
        << c.name << ": " << p.err.message();
    EXPECT_EQ(p.err.offset, c.offset) << c.name << ": " << p.err.message();
    // Nothing larger than parse()'s own copy of the input (or a few KB).
    EXPECT_LE(largest, std::max<size_t>(c.bytes.b.size(), 4096)) << c.name;
  }
}

TEST(GGUFRobustness, NestingDepthIsLimited) {
  Bytes b;
  b.header(0, 1).str("k").u32(uint32_t(ValueType::Array));
  for (int i = 0; i < 100; ++i)
    b.u32(uint32_t(ValueType::Array)).u64(1);
  b.u32(uint32_t(ValueType::U8)).u64(0).zeros(64);
  Parsed p = parse(b.b);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err.what.find("nested deeper than 8"), std::string::npos)
      << p.err.message();

  // Depth 8 (the limit) is fine.
  Bytes ok;
  ok.header(0, 1).str("k").u32(uint32_t(ValueType::Array));
  for (unsigned i = 0; i + 1 < kMaxArrayDepth; ++i)
    ok.u32(uint32_t(ValueType::Array)).u64(1);
  ok.u32(uint32_t(ValueType::U8)).u64(0);
  Parsed q = parse(ok.b);
  EXPECT_TRUE(q.ok()) << q.err.message();
}

TEST(GGUFRobustness, TotalArrayElementsAreLimited) {
  // One bool too many (1 byte each, so the file could hold them): refused
  // before allocating.
  Bytes b;
  uint64_t n = kMaxTotalArrayElements + 1;
  b.header(0, 1);
  b.str("a").u32(uint32_t(ValueType::Array)).u32(uint32_t(ValueType::Bool));
  b.u64(n).zeros(n);
  Parsed p;
  size_t largest = largestAllocationDuring([&] { p = parse(b.b); });
  EXPECT_LE(largest, b.b.size()); // Only parse()'s copy of the input.
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.err.what.find("array elements in the file"), std::string::npos)
      << p.err.message();
}

struct BadFile {
  const char *name;
  Bytes bytes;
  const char *expect;
  uint64_t offset;
};

TEST(GGUFRobustness, MalformedFiles) {
  std::vector<BadFile> cases;
  cases.push_back(
      {"empty", Bytes(), "unexpected end of file reading the magic", 0});
  cases.push_back({"magic", Bytes().raw("GGML").u32(3).u64(0).u64(0),
                   "not a GGUF file", 0});
  cases.push_back(
      {"v1", Bytes().header(0, 0, 1), "GGUF version 1 is not supported", 4});
  cases.push_back(
      {"v4", Bytes().header(0, 0, 4), "unsupported GGUF version 4", 4});
  cases.push_back(
      {"big endian", Bytes().header(0, 0, 0x03000000), "big-endian", 4});
  cases.push_back({"empty key",
                   Bytes().header(0, 1).str("").u32(4).u32(0).zeros(32),
                   "empty key", 24});
  // Header 24 bytes, key length 8 bytes, then "llama.c" and the bad byte.
  cases.push_back({"key not ASCII",
                   Bytes()
                       .header(0, 1)
                       .kvU32(std::string("llama.c\xffntext_length"), 1)
                       .zeros(32),
                   "key 'llama.c\\xffntext_length' is not printable ASCII",
                   24 + 8 + 7});
  cases.push_back({"key with control byte",
                   Bytes().header(0, 1).kvU32(std::string("a\nb"), 1).zeros(32),
                   "is not printable ASCII", 24 + 8 + 1});
  cases.push_back({"duplicate key",
                   Bytes().header(0, 2).kvU32("k", 1).kvU32("k", 2).zeros(32),
                   "duplicate key 'k'", 41});
  cases.push_back({"value type",
                   Bytes().header(0, 1).str("k").u32(13).u32(0).zeros(32),
                   "invalid value type 13", 33});
  cases.push_back(
      {"element type",
       Bytes().header(0, 1).str("k").u32(9).u32(99).u64(0).zeros(32),
       "invalid array element type 99", 37});
  cases.push_back({"alignment type",
                   Bytes()
                       .header(0, 1)
                       .str("general.alignment")
                       .u32(uint32_t(ValueType::U64))
                       .u64(32)
                       .zeros(32),
                   "general.alignment must be UINT32, not UINT64", 49});
  cases.push_back({"alignment zero",
                   Bytes().header(0, 1).kvU32("general.alignment", 0).zeros(32),
                   "general.alignment 0 is not a power of two", 53});
  cases.push_back(
      {"alignment 48",
       Bytes().header(0, 1).kvU32("general.alignment", 48).zeros(64),
       "general.alignment 48 is not a power of two", 53});
  cases.push_back({"duplicate tensor",
                   Bytes()
                       .header(2, 0)
                       .tensor("t", {8}, 0, 0)
                       .tensor("t", {8}, 0, 32)
                       .padTo(32)
                       .zeros(64),
                   "duplicate tensor name 't'", 57});
  cases.push_back({"five dims",
                   Bytes()
                       .header(1, 0)
                       .tensor("t", {1, 1, 1, 1, 1}, 0, 0)
                       .padTo(32)
                       .zeros(32),
                   "has 5 dimensions (at most 4)", 33});
  cases.push_back(
      {"negative dim",
       Bytes().header(1, 0).tensor("t", {UINT64_MAX}, 0, 0).padTo(32).zeros(32),
       "dimension 0 is negative", 37});
  cases.push_back({"dims overflow",
                   Bytes()
                       .header(1, 0)
                       .tensor("t", {1ull << 32, 1ull << 32}, 0, 0)
                       .padTo(32)
                       .zeros(32),
                   "too many elements (overflow)", 45});
  cases.push_back({"bytes overflow",
                   Bytes()
                       .header(1, 0)
                       .tensor("t", {1ull << 31, 1ull << 31}, 0, 0)
                       .padTo(32)
                       .zeros(32),
                   "size in bytes overflows", 53});
  cases.push_back(
      {"unknown type",
       Bytes().header(1, 0).tensor("t", {8}, 31, 0).padTo(32).zeros(32),
       "tensor 't': unknown ggml type 31", 45});
  cases.push_back(
      {"partial block",
       Bytes().header(1, 0).tensor("t", {100}, 12, 0).padTo(32).zeros(256),
       "row of 100 elements is not a multiple of the block size "
       "256 of Q4_K",
       45});
  cases.push_back(
      {"misaligned",
       Bytes().header(1, 0).tensor("t", {8}, 0, 16).padTo(32).zeros(64),
       "offset 16 is not a multiple of the alignment 32", 49});
  cases.push_back(
      {"outside",
       Bytes().header(1, 0).tensor("t", {8}, 0, 32).padTo(32).zeros(40),
       "extends past the end of the file", 49});
  cases.push_back({"huge offset",
                   Bytes()
                       .header(1, 0)
                       .tensor("t", {8}, 0, UINT64_MAX - 31)
                       .padTo(32)
                       .zeros(40),
                   "extends past the end of the file", 49});
  cases.push_back({"overlap",
                   Bytes()
                       .header(2, 0)
                       .tensor("a", {16}, 0, 0)
                       .tensor("b", {8}, 0, 32)
                       .padTo(32)
                       .zeros(64),
                   "tensor 'b' data overlaps tensor 'a'", 82});
  cases.push_back({"no data section",
                   Bytes().header(1, 0).tensor("t", {0}, 0, 0), // unpadded
                   "data section would start at 64", 57});
  cases.push_back({"name in message",
                   Bytes()
                       .header(1, 0)
                       .tensor(std::string("a\nb") + std::string(100, 'x'),
                               {1, 1, 1, 1, 1}, 0, 0)
                       .zeros(64),
                   "tensor 'a\\x0abxxx", 24 + 8 + 103});
  for (BadFile &c : cases) {
    Parsed p = parse(c.bytes.b);
    ASSERT_FALSE(p.ok()) << c.name;
    EXPECT_NE(p.err.what.find(c.expect), std::string::npos)
        << c.name << ": " << p.err.message();
    EXPECT_TRUE(p.err.hasOffset) << c.name;
    EXPECT_EQ(p.err.offset, c.offset) << c.name << ": " << p.err.message();
    EXPECT_LT(p.err.what.size(), 200u) << c.name;
    EXPECT_EQ(p.err.message(), "mem.gguf: " + p.err.what + " at offset " +
                                   std::to_string(p.err.offset));
  }
}

TEST(GGUFReader, AcceptsValidVariants) {
  // Out-of-order tensors (llama.cpp itself insists on the writer's order),
  // zero-size tensors sharing an offset, a file with no tensors and no padding,
  // trailing bytes after the data, 0 dims.
  Parsed a = parse(Bytes()
                       .header(3, 0)
                       .tensor("late", {8}, 0, 32)
                       .tensor("early", {8}, 0, 0)
                       .tensor("empty", {0, 4}, 2, 32)
                       .padTo(32)
                       .zeros(64 + 7)
                       .b);
  ASSERT_TRUE(a.ok()) << a.err.message();
  EXPECT_EQ(a.reader->tensors()[2].byteSize, 0u);
  Parsed b = parse(Bytes().header(0, 1).kvU32("k", 1).b);
  ASSERT_TRUE(b.ok()) << b.err.message();
  EXPECT_EQ(b.reader->dataOffset(), b.reader->fileSize());
  Parsed c =
      parse(Bytes().header(1, 0).tensor("s", {}, 0, 0).padTo(32).zeros(4).b);
  ASSERT_TRUE(c.ok()) << c.err.message();
  EXPECT_EQ(c.reader->tensors()[0].byteSize, 4u);
  // Bools: any non-zero byte is true.
  Parsed d = parse(Bytes().header(0, 1).str("b").u32(7).u8(2).b);
  ASSERT_TRUE(d.ok()) << d.err.message();
  EXPECT_EQ(d.reader->find("b")->value, Value::makeBool(true));
}

TEST(GGUFReader, OpenErrors) {
  Error err;
  std::string missing = tempPath("does-not-exist.gguf");
  EXPECT_FALSE(Reader::open(missing, err));
  EXPECT_EQ(err.message(),
            missing + ": cannot open: No such file or directory");
  EXPECT_FALSE(err.hasOffset);

  std::string dir = missing.substr(0, missing.rfind('/'));
  EXPECT_FALSE(Reader::open(dir, err));
  EXPECT_EQ(err.message(), dir + ": cannot open: Is a directory");

  std::string empty = tempPath("empty.gguf");
  { std::ofstream(empty, std::ios::binary); }
  EXPECT_FALSE(Reader::open(empty, err));
  EXPECT_EQ(err.message(), empty + ": cannot open: file is empty");

  std::string bad = tempPath("bad.gguf");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "GGUF\x01";
  }
  EXPECT_FALSE(Reader::open(bad, err));
  EXPECT_EQ(err.message(), bad + ": unexpected end of file reading version "
                                 "at offset 4");
}

//===----------------------------------------------------------------------===//
// Real files
//===----------------------------------------------------------------------===//

/// Reads `path` and writes it back with every key and tensor; returns the
/// first differing byte (or -1 when identical).
int64_t rewriteAndDiff(const std::string &path, const std::string &out) {
  Error err;
  auto r = Reader::open(path, err);
  EXPECT_TRUE(r) << err.message();
  if (!r)
    return -2;
  Writer w(r->version());
  for (const KeyValue &kv : r->metadata())
    w.set(kv.key, kv.value);
  for (const TensorInfo &t : r->tensors())
    w.addTensor(t.name, t.dims, t.ggmlType, r->tensorData(t), t.byteSize);
  EXPECT_TRUE(w.write(out, err)) << err.message();
  std::vector<uint8_t> a = readBytes(path), b = readBytes(out);
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i])
      return int64_t(i);
  return a.size() == b.size() ? -1 : int64_t(n);
}

TEST(GGUFRealFiles, Stories260KRoundTripIsByteIdentical) {
  std::string path =
      LOWBIT_SHARED_DIR "/models/stories260K/stories260K-f32.gguf";
  if (!exists(path))
    GTEST_SKIP() << path << " not found";
  Error err;
  auto r = Reader::open(path, err);
  ASSERT_TRUE(r) << err.message();
  EXPECT_EQ(r->getString("general.architecture"), "llama");
  EXPECT_EQ(r->getInt("llama.block_count", 0), 5);
  EXPECT_EQ(r->tensors().size(), 48u);
  EXPECT_EQ(r->find("tokenizer.ggml.tokens")->value.elements.size(), 512u);
  EXPECT_EQ(rewriteAndDiff(path, tempPath("stories.gguf")), -1);
}

TEST(GGUFRealFiles, GoldenOpensAndRoundTrips) {
  std::string path = LOWBIT_SHARED_DIR "/golden/ggml-golden.gguf";
  if (!exists(path))
    GTEST_SKIP() << path << " not found";
  Error err;
  auto r = Reader::open(path, err);
  ASSERT_TRUE(r) << err.message();
  EXPECT_EQ(r->version(), 3u);
  EXPECT_EQ(r->tensors().size(), 88u);
  EXPECT_EQ(r->metadata().size(), 7u);
  EXPECT_EQ(r->fileSize(), 1675744u);
  const TensorInfo *t = r->findTensor("IQ2_XXS.imatrix");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->ggmlType, 16u);
  EXPECT_EQ(t->byteSize, 16u * 2 * 66);
  EXPECT_EQ(rewriteAndDiff(path, tempPath("golden.gguf")), -1);
}

//===----------------------------------------------------------------------===//
// Fuzzer seeds
//===----------------------------------------------------------------------===//

// Writes small valid files to $LOWBIT_GGUF_SEED_DIR (scripts/run-fuzzers.sh
// sets it) and checks that they parse.
TEST(GGUFSeeds, WriteSeedCorpus) {
  const char *env = std::getenv("LOWBIT_GGUF_SEED_DIR");
  std::string dir = env ? env : tempPath("seeds");
  ::mkdir(dir.c_str(), 0755);
  TestTensors t;
  std::vector<std::string> written;
  auto save = [&](const std::string &name, const Writer &w) {
    Error err;
    std::string path = dir + "/" + name;
    ASSERT_TRUE(w.write(path, err)) << err.message();
    written.push_back(path);
  };
  save("small-32.gguf", smallWriter(t, 32));
  save("small-64.gguf", smallWriter(t, 64));
  {
    Writer w;
    addAllValueTypes(w);
    save("kv-only.gguf", w);
  }
  {
    Writer w(2);
    w.set("general.alignment", Value::makeU32(8));
    w.addTensor("x", {8}, 0, t.a.data(), 32);
    save("v2-align8.gguf", w);
  }
  {
    Writer w;
    std::vector<uint8_t> blocks(66 + 50 + 56, 0x11);
    w.addTensor("iq2_xxs", {256}, 16, blocks.data(), 66);
    w.addTensor("iq1_s", {256}, 19, blocks.data(), 50);
    w.addTensor("iq1_m", {256}, 29, blocks.data(), 56);
    w.addTensor("empty", {0}, 0, nullptr, 0);
    save("types.gguf", w);
  }
  for (const std::string &path : written) {
    Error err;
    EXPECT_TRUE(Reader::open(path, err)) << err.message();
  }
}

} // namespace
