//===- IMatrixTest.cpp - Importance matrix reader/writer tests ------------===//
#include "lowbit/Calibration/IMatrix.h"

#include "lowbit/GGUF/GGUF.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "../Common/AllocationTracker.h"

using namespace lowbit;
using namespace lowbit::calib;

using lowbit::test::largestAllocationDuring;

namespace {

const std::string kFixture =
    std::string(LOWBIT_SHARED_DIR) + "/models/docs256/imatrix-llamacpp.dat";
const std::string kModel =
    std::string(LOWBIT_SHARED_DIR) + "/models/docs256/model-f32.gguf";

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

#define REQUIRE_FIXTURE()                                                      \
  do {                                                                         \
    if (!exists(kFixture))                                                     \
      GTEST_SKIP() << kFixture << " not found (../shared/models is absent)";   \
  } while (0)

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Removes the files the tests wrote when the test program ends.
class TempFiles : public ::testing::Environment {
public:
  std::vector<std::string> paths;
  void TearDown() override {
    for (const std::string &path : paths)
      ::unlink(path.c_str());
  }
};
TempFiles *gTempFiles = static_cast<TempFiles *>(
    ::testing::AddGlobalTestEnvironment(new TempFiles));

/// A fresh path in the test's temporary folder.
std::string tempPath(const std::string &name) {
  static int counter = 0;
  std::string path = ::testing::TempDir() + "imatrix-" +
                     std::to_string(::getpid()) + "-" +
                     std::to_string(counter++) + "-" + name;
  gTempFiles->paths.push_back(path);
  return path;
}

bool parse(const std::string &bytes, IMatrix &out, std::string &error,
           const std::string &name = "mem.dat", int64_t chunkSize = 0) {
  return IMatrix::loadFromMemory(bytes.data(), bytes.size(), name, out, error,
                                 chunkSize);
}

/// Bit patterns, so that NaN-free float vectors compare exactly.
std::vector<uint32_t> bits(const std::vector<float> &v) {
  std::vector<uint32_t> b(v.size());
  if (!v.empty())
    std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

void expectSameImportance(const IMatrix &a, const IMatrix &b) {
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (const auto &kv : a.entries) {
    ASSERT_TRUE(b.entries.count(kv.first)) << kv.first;
    EXPECT_EQ(bits(a.importance(kv.first)), bits(b.importance(kv.first)))
        << kv.first;
  }
}

/// The seven matrix multiplications of a llama block.
const char *const kBlockWeights[] = {"attn_q",      "attn_k",   "attn_v",
                                     "attn_output", "ffn_gate", "ffn_up",
                                     "ffn_down"};

//===----------------------------------------------------------------------===//
// (1) The llama.cpp fixture
//===----------------------------------------------------------------------===//

TEST(IMatrixFixture, LoadsLlamaCppLegacyFile) {
  REQUIRE_FIXTURE();
  IMatrix m;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, m, error)) << error;

  // llama.cpp collects every blk.* matrix multiplication and skips
  // output.weight unless --process-output; token_embd is a lookup, not a
  // matmul. docs256 has 6 blocks of 7 matmuls.
  EXPECT_EQ(m.entries.size(), 42u);
  for (int layer = 0; layer < 6; ++layer)
    for (const char *w : kBlockWeights) {
      std::string name = "blk." + std::to_string(layer) + "." + w + ".weight";
      EXPECT_TRUE(m.entries.count(name)) << name;
    }
  EXPECT_FALSE(m.entries.count("output.weight"));
  EXPECT_FALSE(m.entries.count("token_embd.weight"));

  EXPECT_EQ(m.chunkCount, 377);
  EXPECT_EQ(m.chunkSize, 0); // Not recorded in a legacy file.
  ASSERT_EQ(m.datasets.size(), 1u);
  EXPECT_EQ(m.datasets[0], "calib.txt");
  EXPECT_EQ(m.order.size(), 42u);

  for (const auto &[name, e] : m.entries) {
    bool down = name.find("ffn_down") != std::string::npos;
    EXPECT_EQ(e.inputs(), down ? 768 : 256) << name;
    ASSERT_EQ(e.counts.size(), 1u) << name;
    EXPECT_EQ(e.counts[0], 377.0f) << name; // ncall: one call per chunk.
    EXPECT_TRUE(e.sum.empty());
    std::vector<float> imp = m.importance(name);
    ASSERT_EQ(imp.size(), e.sumSquares.size());
    for (size_t j = 0; j < imp.size(); ++j) {
      EXPECT_TRUE(std::isfinite(e.sumSquares[j]) && e.sumSquares[j] > 0)
          << name << "[" << j << "]";
      // llama.cpp's quantizer: stored value / ncall.
      EXPECT_EQ(imp[j], e.sumSquares[j] / 377.0f);
      EXPECT_TRUE(std::isfinite(imp[j]) && imp[j] > 0);
    }
  }

  // Weights that multiply the same activations have the same statistics.
  for (int layer = 0; layer < 6; ++layer) {
    std::string p = "blk." + std::to_string(layer) + ".";
    EXPECT_EQ(bits(m.entries[p + "attn_q.weight"].sumSquares),
              bits(m.entries[p + "attn_k.weight"].sumSquares));
    EXPECT_EQ(bits(m.entries[p + "attn_q.weight"].sumSquares),
              bits(m.entries[p + "attn_v.weight"].sumSquares));
    EXPECT_EQ(bits(m.entries[p + "ffn_gate.weight"].sumSquares),
              bits(m.entries[p + "ffn_up.weight"].sumSquares));
  }
}

TEST(IMatrixFixture, SizesMatchModelInputWidths) {
  REQUIRE_FIXTURE();
  if (!exists(kModel))
    GTEST_SKIP() << kModel << " not found";
  IMatrix m;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, m, error)) << error;
  gguf::Error gerr;
  auto model = gguf::Reader::open(kModel, gerr);
  ASSERT_TRUE(model) << gerr.message();
  size_t matmuls = 0;
  for (const gguf::TensorInfo &t : model->tensors()) {
    if (t.dims.size() != 2 || t.name.rfind("blk.", 0) != 0)
      continue;
    ++matmuls;
    auto it = m.entries.find(t.name);
    ASSERT_NE(it, m.entries.end()) << t.name;
    EXPECT_EQ(static_cast<uint64_t>(it->second.inputs()), t.dims[0]) << t.name;
  }
  EXPECT_EQ(matmuls, m.entries.size());
}

//===----------------------------------------------------------------------===//
// (2) Round trips
//===----------------------------------------------------------------------===//

TEST(IMatrixRoundTrip, LegacyRewriteIsByteIdentical) {
  REQUIRE_FIXTURE();
  IMatrix m;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, m, error)) << error;
  std::string out = tempPath("rewrite.dat");
  ASSERT_TRUE(m.saveLegacy(out, error)) << error;
  EXPECT_EQ(readBytes(out), readBytes(kFixture));
  EXPECT_FALSE(exists(out + ".tmp." + std::to_string(::getpid())));
}

TEST(IMatrixRoundTrip, LegacyToGGUFToLegacy) {
  REQUIRE_FIXTURE();
  IMatrix a;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, a, error)) << error;
  std::string gguf = tempPath("a.gguf");
  ASSERT_TRUE(a.saveGGUF(gguf, error)) << error;

  IMatrix b;
  ASSERT_TRUE(IMatrix::load(gguf, b, error)) << error;
  expectSameImportance(a, b);
  EXPECT_EQ(b.chunkCount, 377);
  EXPECT_EQ(b.chunkSize, 1); // Counts in chunks.
  EXPECT_EQ(b.datasets, a.datasets);
  EXPECT_EQ(b.order, a.order);

  // The GGUF file is what llama.cpp writes: metadata, two tensors per
  // weight with ggml's trimmed dimensions.
  gguf::Error gerr;
  auto reader = gguf::Reader::open(gguf, gerr);
  ASSERT_TRUE(reader) << gerr.message();
  EXPECT_EQ(reader->getString("general.type"), "imatrix");
  EXPECT_EQ(reader->find("imatrix.chunk_count")->value.type,
            gguf::ValueType::U32);
  EXPECT_EQ(reader->find("imatrix.chunk_size")->value.type,
            gguf::ValueType::U32);
  const gguf::KeyValue *ds = reader->find("imatrix.datasets");
  ASSERT_TRUE(ds);
  EXPECT_EQ(ds->value.elementType, gguf::ValueType::String);
  EXPECT_EQ(reader->tensors().size(), 84u);
  const gguf::TensorInfo *down =
      reader->findTensor("blk.2.ffn_down.weight.in_sum2");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->dims, std::vector<uint64_t>{768});
  const gguf::TensorInfo *counts =
      reader->findTensor("blk.2.ffn_down.weight.counts");
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->dims, std::vector<uint64_t>{1});

  std::string dat = tempPath("b.dat");
  ASSERT_TRUE(b.saveLegacy(dat, error)) << error;
  EXPECT_EQ(readBytes(dat), readBytes(kFixture));
}

TEST(IMatrixRoundTrip, GGUFToLegacyToGGUF) {
  REQUIRE_FIXTURE();
  // A GGUF imatrix as llama.cpp computes it: counts in tokens (377 chunks of
  // 256), sums unscaled; llama.cpp reads a .dat the same way.
  IMatrix a;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, a, error, 256)) << error;
  EXPECT_EQ(a.chunkSize, 256);
  EXPECT_EQ(a.entries.begin()->second.counts[0], 377.0f * 256);
  std::string g1 = tempPath("g1.gguf");
  ASSERT_TRUE(a.saveGGUF(g1, error)) << error;
  IMatrix b;
  ASSERT_TRUE(IMatrix::load(g1, b, error)) << error;
  EXPECT_EQ(b.chunkSize, 256);
  expectSameImportance(a, b);

  std::string dat = tempPath("g.dat");
  ASSERT_TRUE(b.saveLegacy(dat, error)) << error;
  // 256 is a power of two, so sum2 / 256 and the reader's division by ncall
  // are exact: the importance survives bit for bit, and so does the file.
  EXPECT_EQ(readBytes(dat), readBytes(kFixture));
  IMatrix c;
  ASSERT_TRUE(IMatrix::load(dat, c, error)) << error;
  expectSameImportance(b, c);

  std::string g2 = tempPath("g2.gguf");
  ASSERT_TRUE(c.saveGGUF(g2, error)) << error;
  IMatrix d;
  ASSERT_TRUE(IMatrix::load(g2, d, error)) << error;
  expectSameImportance(b, d);
  EXPECT_EQ(d.chunkCount, b.chunkCount);
  EXPECT_EQ(d.datasets, b.datasets);

  // Read back with the chunk size, the sums and counts are the originals.
  IMatrix e;
  ASSERT_TRUE(IMatrix::load(dat, e, error, 256)) << error;
  for (const auto &[name, entry] : b.entries) {
    EXPECT_EQ(bits(e.entries[name].sumSquares), bits(entry.sumSquares));
    EXPECT_EQ(bits(e.entries[name].counts), bits(entry.counts));
  }
  std::string g3 = tempPath("g3.gguf");
  ASSERT_TRUE(e.saveGGUF(g3, error)) << error;
  EXPECT_EQ(readBytes(g3), readBytes(g1));
}

TEST(IMatrixRoundTrip, OddChunkSizeWithinTwoUlps) {
  REQUIRE_FIXTURE();
  // With a chunk size that is not a power of two, the legacy value
  // sum2 / chunk_size and the reader's / ncall are two roundings where the
  // GGUF importance sum2 / count is one: at most ~2 ulp apart.
  IMatrix a;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, a, error, 300)) << error;
  std::string dat = tempPath("odd.dat");
  ASSERT_TRUE(a.saveLegacy(dat, error)) << error;
  IMatrix b;
  ASSERT_TRUE(IMatrix::load(dat, b, error)) << error;
  for (const auto &kv : a.entries) {
    std::vector<float> x = a.importance(kv.first), y = b.importance(kv.first);
    ASSERT_EQ(x.size(), y.size());
    for (size_t j = 0; j < x.size(); ++j)
      EXPECT_NEAR(x[j], y[j],
                  2.5f * std::numeric_limits<float>::epsilon() *
                      std::fabs(x[j]))
          << kv.first << "[" << j << "]";
  }
}

IMatrix makeMoE() {
  IMatrix m;
  IMatrixEntry e;
  // Three experts of 4 inputs; expert 1 never selected.
  e.sumSquares = {1, 2, 3, 4, 0, 0, 0, 0, 10, 20, 30, 40};
  e.sum = {0.5f, -1, 1.5f, -2, 0, 0, 0, 0, 1, -2, 3, -4};
  e.counts = {3, 0, 7};
  m.entries["blk.0.ffn_down_exps.weight"] = e;
  IMatrixEntry d;
  d.sumSquares = {8, 16};
  d.counts = {4};
  m.entries["blk.0.attn_q.weight"] = d;
  m.datasets = {"a.txt", "b.txt"};
  m.chunkCount = 3;
  m.chunkSize = 2;
  return m;
}

TEST(IMatrixRoundTrip, ExpertsAndSumsInGGUF) {
  IMatrix a = makeMoE();
  std::string error, path = tempPath("moe.gguf");
  ASSERT_TRUE(a.saveGGUF(path, error)) << error;
  IMatrix b;
  ASSERT_TRUE(IMatrix::load(path, b, error)) << error;
  // No order was loaded: llama.cpp's sorted order.
  EXPECT_EQ(b.order, (std::vector<std::string>{"blk.0.attn_q.weight",
                                               "blk.0.ffn_down_exps.weight"}));
  for (const auto &[name, e] : a.entries) {
    EXPECT_EQ(bits(b.entries[name].sumSquares), bits(e.sumSquares));
    EXPECT_EQ(bits(b.entries[name].sum), bits(e.sum));
    EXPECT_EQ(bits(b.entries[name].counts), bits(e.counts));
  }
  EXPECT_EQ(b.datasets, a.datasets);
  EXPECT_EQ(b.chunkCount, 3);
  EXPECT_EQ(b.chunkSize, 2);
  gguf::Error gerr;
  auto reader = gguf::Reader::open(path, gerr);
  ASSERT_TRUE(reader) << gerr.message();
  EXPECT_EQ(reader->findTensor("blk.0.ffn_down_exps.weight.in_sum2")->dims,
            (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(reader->findTensor("blk.0.ffn_down_exps.weight.counts")->dims,
            (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(reader->findTensor("blk.0.ffn_down_exps.weight.in_sum")->dims,
            (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(reader->findTensor("blk.0.attn_q.weight.counts")->dims,
            (std::vector<uint64_t>{1}));
}

TEST(IMatrixRoundTrip, ExpertsInLegacy) {
  // The legacy format keeps one call count per weight: llama.cpp writes
  // mean * ncall per expert (1 * ncall for an expert without data), and the
  // per-expert counts and the sums are lost.
  IMatrix a = makeMoE();
  std::string error, path = tempPath("moe.dat");
  ASSERT_TRUE(a.saveLegacy(path, error)) << error;
  IMatrix b;
  ASSERT_TRUE(IMatrix::load(path, b, error)) << error;
  const IMatrixEntry &e = b.entries["blk.0.ffn_down_exps.weight"];
  ASSERT_EQ(e.counts.size(), 1u);
  EXPECT_EQ(e.counts[0], 4.0f); // ceil(7 / 2)
  EXPECT_TRUE(e.sum.empty());
  std::vector<float> imp = b.importance("blk.0.ffn_down_exps.weight");
  ASSERT_EQ(imp.size(), 12u);
  std::vector<float> e0 = a.importance("blk.0.ffn_down_exps.weight", 0);
  std::vector<float> e2 = a.importance("blk.0.ffn_down_exps.weight", 2);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_FLOAT_EQ(imp[j], e0[j]);
    EXPECT_EQ(imp[4 + j], 1.0f);
    EXPECT_FLOAT_EQ(imp[8 + j], e2[j]);
  }
  // Dense entry: count 4 = 2 chunks of 2, exact.
  EXPECT_EQ(bits(b.importance("blk.0.attn_q.weight")),
            bits(a.importance("blk.0.attn_q.weight")));
  EXPECT_EQ(b.datasets, std::vector<std::string>{"b.txt"});
  EXPECT_EQ(b.chunkCount, 3);
}

TEST(IMatrixWrite, RejectsBadEntries) {
  std::string error;
  IMatrix empty;
  EXPECT_FALSE(empty.saveLegacy(tempPath("e.dat"), error));
  EXPECT_FALSE(empty.saveGGUF(tempPath("e.gguf"), error));

  IMatrix m;
  m.entries["w"].sumSquares = {1, 2, 3};
  m.entries["w"].counts = {1, 1};
  std::string path = tempPath("bad.gguf");
  EXPECT_FALSE(m.saveGGUF(path, error));
  EXPECT_NE(error.find("'w'"), std::string::npos) << error;
  EXPECT_FALSE(exists(path));

  m.entries["w"].counts = {1};
  m.entries["w"].sumSquares[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(m.saveLegacy(tempPath("nan.dat"), error));
  EXPECT_NE(error.find("'w'"), std::string::npos) << error;

  IMatrix longName;
  longName.entries[std::string(60, 'x')].sumSquares = {1};
  longName.entries[std::string(60, 'x')].counts = {1};
  EXPECT_FALSE(longName.saveGGUF(tempPath("long.gguf"), error));
  EXPECT_NE(error.find("too long"), std::string::npos) << error;
}

//===----------------------------------------------------------------------===//
// (3) Truncated, corrupt and hostile files
//===----------------------------------------------------------------------===//

/// "<name>: <what> at offset <n>" with n <= `limit`.
void expectCleanError(const std::string &error, const std::string &name,
                      uint64_t limit, const std::string &context) {
  ASSERT_EQ(error.rfind(name + ": ", 0), 0u) << context << ": " << error;
  size_t at = error.rfind(" at offset ");
  ASSERT_NE(at, std::string::npos) << context << ": " << error;
  uint64_t offset = std::strtoull(error.c_str() + at + 11, nullptr, 10);
  EXPECT_LE(offset, limit) << context << ": " << error;
}

TEST(IMatrixCorrupt, LegacyTruncatedAtEveryOffset) {
  REQUIRE_FIXTURE();
  const std::string bytes = readBytes(kFixture);
  // The trailer is 4 (chunk count) + 4 + 9 ("calib.txt") bytes; files of
  // older llama.cpp builds end before it, or after the chunk count.
  const size_t entriesEnd = bytes.size() - 17;
  size_t accepted = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::string cut = bytes.substr(0, n);
    IMatrix m;
    m.chunkCount = -5;
    std::string error;
    bool ok = parse(cut, m, error, "cut.dat");
    if (n == entriesEnd || n == entriesEnd + 4) {
      EXPECT_TRUE(ok) << n << ": " << error;
      EXPECT_EQ(m.entries.size(), 42u);
      EXPECT_EQ(m.chunkCount, n == entriesEnd ? 0 : 377);
      EXPECT_TRUE(m.datasets.empty());
      ++accepted;
      continue;
    }
    ASSERT_FALSE(ok) << "truncated at " << n << " was accepted";
    EXPECT_EQ(m.chunkCount, -5) << "output changed on failure";
    expectCleanError(error, "cut.dat", n, "truncated at " + std::to_string(n));
  }
  EXPECT_EQ(accepted, 2u);
}

TEST(IMatrixCorrupt, LegacyTruncatedFilesOnDisk) {
  REQUIRE_FIXTURE();
  const std::string bytes = readBytes(kFixture);
  for (size_t n : {size_t(0), size_t(3), size_t(4), size_t(27), size_t(1000),
                   bytes.size() / 2, bytes.size() - 1}) {
    std::string path = tempPath("t" + std::to_string(n) + ".dat");
    writeBytes(path, bytes.substr(0, n));
    IMatrix m;
    std::string error;
    EXPECT_FALSE(IMatrix::load(path, m, error)) << n;
    expectCleanError(error, path, n, std::to_string(n));
  }
  IMatrix m;
  std::string error;
  EXPECT_FALSE(IMatrix::load(tempPath("missing.dat"), m, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

TEST(IMatrixCorrupt, GGUFTruncatedAtEveryOffset) {
  REQUIRE_FIXTURE();
  IMatrix a;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, a, error, 256)) << error;
  std::string path = tempPath("full.gguf");
  ASSERT_TRUE(a.saveGGUF(path, error)) << error;
  const std::string bytes = readBytes(path);
  IMatrix whole;
  ASSERT_TRUE(parse(bytes, whole, error, "x.gguf")) << error;
  // The file ends with the last tensor's padding to the alignment; cutting
  // only padding leaves a valid file.
  gguf::Error gerr;
  auto reader = gguf::Reader::open(path, gerr);
  ASSERT_TRUE(reader) << gerr.message();
  uint64_t dataEnd = 0;
  for (const gguf::TensorInfo &t : reader->tensors())
    dataEnd = std::max(dataEnd, reader->tensorFileOffset(t) + t.byteSize);
  ASSERT_LT(bytes.size() - dataEnd, 32u);
  // The header and metadata at every offset; the data every 7 bytes.
  for (size_t n = 0; n < bytes.size(); n += n < 8192 ? 1 : 7) {
    IMatrix m;
    std::string err;
    std::string name = "cut.gguf";
    if (n >= dataEnd) {
      EXPECT_TRUE(parse(bytes.substr(0, n), m, err, name)) << n << ": " << err;
      continue;
    }
    ASSERT_FALSE(parse(bytes.substr(0, n), m, err, name)) << n;
    // Under 4 bytes there is no magic: it is read as a (bad) legacy file.
    expectCleanError(err, name, n, "truncated at " + std::to_string(n));
  }
}

TEST(IMatrixCorrupt, ByteFlipsNeverCrash) {
  REQUIRE_FIXTURE();
  const std::string bytes = readBytes(kFixture);
  IMatrix a;
  std::string error;
  ASSERT_TRUE(IMatrix::load(kFixture, a, error, 256)) << error;
  std::string path = tempPath("flip.gguf");
  ASSERT_TRUE(a.saveGGUF(path, error)) << error;
  const std::string gguf = readBytes(path);
  for (const std::string *src : {&bytes, &gguf}) {
    for (size_t i = 0; i < src->size(); i += i < 2048 ? 1 : 97) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::string flipped = *src;
        flipped[i] = static_cast<char>(flipped[i] ^ mask);
        IMatrix m;
        std::string err;
        if (!parse(flipped, m, err, "flip"))
          EXPECT_EQ(err.rfind("flip: ", 0), 0u) << err;
      }
    }
  }
}

/// A legacy image built field by field.
struct LegacyBuilder {
  std::string bytes;
  LegacyBuilder &i32(int32_t v) {
    bytes.append(reinterpret_cast<const char *>(&v), 4);
    return *this;
  }
  LegacyBuilder &f32(float v) {
    bytes.append(reinterpret_cast<const char *>(&v), 4);
    return *this;
  }
  LegacyBuilder &str(const std::string &s) {
    i32(static_cast<int32_t>(s.size()));
    bytes += s;
    return *this;
  }
};

TEST(IMatrixCorrupt, HostileLegacyFields) {
  struct Case {
    const char *what;
    std::string bytes;
    const char *expect;
  };
  std::vector<Case> cases;
  cases.push_back({"negative entry count", LegacyBuilder().i32(-1).bytes,
                   "bad entry count -1 at offset 0"});
  cases.push_back({"zero entries", LegacyBuilder().i32(0).bytes,
                   "bad entry count 0 at offset 0"});
  cases.push_back(
      {"huge entry count",
       LegacyBuilder().i32(INT32_MAX).str("w").i32(1).i32(1).f32(1).bytes,
       "truncated name length of entry 2"});
  cases.push_back({"huge name length",
                   LegacyBuilder().i32(1).i32(INT32_MAX).bytes,
                   "bad name length 2147483647 of entry 1 of 1"});
  cases.push_back({"negative name length", LegacyBuilder().i32(1).i32(-4).bytes,
                   "bad name length -4"});
  cases.push_back({"name with NUL",
                   LegacyBuilder().i32(1).str(std::string("a\0b", 3)).bytes,
                   "contains a NUL byte at offset 8"});
  cases.push_back({"huge value count",
                   LegacyBuilder().i32(1).str("w").i32(1).i32(INT32_MAX).bytes,
                   "truncated values of 'w' (2147483647 values need "
                   "8589934588 bytes, 0 remain) at offset 17"});
  cases.push_back({"zero values",
                   LegacyBuilder().i32(1).str("w").i32(1).i32(0).bytes,
                   "bad value count 0 of 'w' at offset 13"});
  cases.push_back({"negative ncall",
                   LegacyBuilder().i32(1).str("w").i32(-2).i32(1).f32(1).bytes,
                   "negative call count -2 of 'w' at offset 9"});
  cases.push_back(
      {"NaN value",
       LegacyBuilder().i32(1).str("w").i32(1).i32(2).f32(1).f32(NAN).bytes,
       "non-finite value nan in 'w' at offset 21"});
  cases.push_back(
      {"Inf value",
       LegacyBuilder().i32(1).str("w").i32(1).i32(1).f32(INFINITY).bytes,
       "non-finite value inf in 'w' at offset 17"});
  cases.push_back({"negative value",
                   LegacyBuilder().i32(1).str("w").i32(1).i32(1).f32(-1).bytes,
                   "negative value -1 in 'w'"});
  cases.push_back({"duplicate entry",
                   LegacyBuilder()
                       .i32(2)
                       .str("w")
                       .i32(1)
                       .i32(1)
                       .f32(1)
                       .str("w")
                       .i32(1)
                       .i32(1)
                       .f32(1)
                       .bytes,
                   "duplicate entry 'w' at offset 25"});
  cases.push_back({"huge dataset length",
                   LegacyBuilder()
                       .i32(1)
                       .str("w")
                       .i32(1)
                       .i32(1)
                       .f32(1)
                       .i32(1)
                       .i32(INT32_MAX)
                       .bytes,
                   "truncated dataset name (2147483647 bytes, 0 remain) at "
                   "offset 29"});
  cases.push_back({"trailing bytes",
                   LegacyBuilder()
                       .i32(1)
                       .str("w")
                       .i32(1)
                       .i32(1)
                       .f32(1)
                       .i32(1)
                       .str("d")
                       .i32(7)
                       .bytes,
                   "4 unexpected bytes after the dataset name at offset 30"});
  cases.push_back(
      {"short file", std::string("\x01\x00", 2), "not an imatrix file"});
  for (const Case &c : cases) {
    IMatrix m;
    std::string error;
    size_t largest = largestAllocationDuring(
        [&] { EXPECT_FALSE(parse(c.bytes, m, error, "h.dat")) << c.what; });
    EXPECT_NE(error.find(c.expect), std::string::npos)
        << c.what << ": " << error;
    EXPECT_EQ(error.rfind("h.dat: ", 0), 0u) << error;
    EXPECT_LT(largest, 4096u) << c.what;
  }

  // A minimal valid file (no trailer), and ncall 0: values used as they are.
  IMatrix m;
  std::string error;
  ASSERT_TRUE(
      parse(LegacyBuilder().i32(1).str("w").i32(0).i32(2).f32(3).f32(5).bytes,
            m, error))
      << error;
  EXPECT_EQ(m.importance("w"), (std::vector<float>{3, 5}));
}

/// Writes a GGUF image with the given tensors (all data from `values`).
struct GGUFBuilder {
  gguf::Writer writer;
  std::vector<std::vector<float>> storage;
  GGUFBuilder() {
    writer.set("general.type", gguf::Value::makeString("imatrix"));
  }
  GGUFBuilder &tensor(const std::string &name, std::vector<uint64_t> dims,
                      std::vector<float> values) {
    storage.push_back(std::move(values));
    writer.addTensor(name, std::move(dims), 0, storage.back().data(),
                     storage.back().size() * sizeof(float));
    return *this;
  }
  std::string build() {
    std::string path = tempPath("built.gguf");
    gguf::Error err;
    EXPECT_TRUE(writer.write(path, err)) << err.message();
    return readBytes(path);
  }
};

TEST(IMatrixCorrupt, BadGGUFContent) {
  struct Case {
    const char *what;
    std::string bytes;
    const char *expect;
  };
  std::vector<Case> cases;
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, NAN}).tensor("w.counts", {1}, {1});
    cases.push_back({"NaN", b.build(),
                     "non-finite value nan in tensor "
                     "'w.in_sum2' at offset"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, 2}).tensor("w.counts", {1}, {INFINITY});
    cases.push_back(
        {"Inf count", b.build(), "non-finite value inf in tensor 'w.counts'"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2, 2}, {1, 2, 3, 4}).tensor("w.counts", {1}, {1});
    cases.push_back({"counts shape", b.build(),
                     "mismatched shapes: tensor 'w.counts' is [1] but "
                     "'w.in_sum2' is [2, 2] (expected [1, 2])"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, 2}).tensor("w.counts", {2}, {1, 1});
    cases.push_back({"counts ne0", b.build(), "tensor 'w.counts' is [2]"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, 2})
        .tensor("w.counts", {1}, {1})
        .tensor("w.in_sum", {3}, {1, 2, 3});
    cases.push_back({"in_sum shape", b.build(),
                     "mismatched shapes: tensor 'w.in_sum' is [3]"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, 2});
    cases.push_back({"no counts", b.build(),
                     "tensor 'w.in_sum2' has no matching 'w.counts'"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.counts", {1}, {1});
    cases.push_back({"no sums", b.build(),
                     "tensor 'w.counts' has no matching 'w.in_sum2'"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2}, {1, -2}).tensor("w.counts", {1}, {1});
    cases.push_back(
        {"negative", b.build(), "negative value -2 in tensor 'w.in_sum2'"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("w.in_sum2", {2, 1, 2}, {1, 2, 3, 4}).tensor("w.counts", {1}, {1});
    cases.push_back({"3-D", b.build(), "has shape [2, 1, 2]"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    std::vector<float> half(1, 0.0f); // Two F16 values.
    b.storage.push_back(half);
    b.writer.addTensor("w.in_sum2", {2}, 1, b.storage.back().data(), 4);
    b.tensor("w.counts", {1}, {1});
    cases.push_back({"F16", b.build(), "tensor 'w.in_sum2' is F16, not F32"});
  }
  {
    GGUFBuilder b;
    b.writer.set("general.type", gguf::Value::makeString("model"));
    cases.push_back({"a model", b.build(),
                     "not an imatrix file (general.type is 'model')"});
  }
  {
    GGUFBuilder b;
    b.writer.set("imatrix.datasets", gguf::Value::makeString("x"));
    cases.push_back({"datasets type", b.build(),
                     "imatrix.datasets is not an array of strings"});
  }
  {
    GGUFBuilder b;
    b.writer.set("imatrix.chunk_count", gguf::Value::makeI32(-1));
    cases.push_back(
        {"negative chunks", b.build(), "imatrix.chunk_count is negative"});
  }
  {
    GGUFBuilder b;
    b.storage.reserve(8);
    b.tensor("token_embd.weight", {2}, {1, 2});
    cases.push_back({"no entries", b.build(), "no importance matrix tensors"});
  }
  for (const Case &c : cases) {
    IMatrix m;
    std::string error;
    EXPECT_FALSE(parse(c.bytes, m, error, "bad.gguf")) << c.what;
    EXPECT_NE(error.find(c.expect), std::string::npos)
        << c.what << ": " << error;
    EXPECT_EQ(error.rfind("bad.gguf: ", 0), 0u) << error;
  }

  // Tensors that are not part of an imatrix are ignored, as in llama.cpp.
  GGUFBuilder b;
  b.storage.reserve(8);
  b.tensor("w.in_sum2", {2}, {4, 6})
      .tensor("w.counts", {1}, {2})
      .tensor("other", {1}, {1});
  IMatrix m;
  std::string error;
  ASSERT_TRUE(parse(b.build(), m, error, "ok.gguf")) << error;
  EXPECT_EQ(m.importance("w"), (std::vector<float>{2, 3}));
  EXPECT_EQ(m.chunkCount, 0);
}

//===----------------------------------------------------------------------===//
// (4) importance() and meanActivation()
//===----------------------------------------------------------------------===//

TEST(IMatrixImportance, SumOfSquaresOverCount) {
  IMatrix m;
  IMatrixEntry &e = m.entries["w"];
  e.sumSquares = {2, 4, 6, 10, 20, 30, 9, 9, 9};
  e.sum = {1, -2, 3, 5, 5, 5, 0, 0, 0};
  e.counts = {2, 5, 0};
  EXPECT_EQ(e.inputs(), 3);
  EXPECT_EQ(m.importance("w"), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(m.importance("w", 0), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(m.importance("w", 1), (std::vector<float>{2, 4, 6}));
  // No tokens: uniform importance, as llama.cpp's quantizer uses.
  EXPECT_EQ(m.importance("w", 2), (std::vector<float>{1, 1, 1}));
  EXPECT_TRUE(m.importance("w", 3).empty());
  EXPECT_TRUE(m.importance("w", -1).empty());
  EXPECT_TRUE(m.importance("missing").empty());

  EXPECT_EQ(m.meanActivation("w", 0), (std::vector<float>{0.5f, -1, 1.5f}));
  EXPECT_EQ(m.meanActivation("w", 1), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(m.meanActivation("w", 2), (std::vector<float>{0, 0, 0}));
  e.sum.clear();
  EXPECT_TRUE(m.meanActivation("w").empty());

  // Odd values: exactly sum2 / count in float, per column.
  IMatrixEntry &f = m.entries["f"];
  f.sumSquares = {1.0f, 0.1f, 3.3f};
  f.counts = {3};
  std::vector<float> imp = m.importance("f");
  for (size_t j = 0; j < 3; ++j)
    EXPECT_EQ(imp[j], f.sumSquares[j] / 3.0f);
}

} // namespace
