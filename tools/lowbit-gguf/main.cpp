//===- main.cpp - lowbit-gguf: inspect, compare and make GGUF files -------===//
//
// A small tool for lit tests:
//   lowbit-gguf dump FILE
//   lowbit-gguf compare A B
//   lowbit-gguf truncate FILE N -o OUT
//   lowbit-gguf flip FILE OFFSET -o OUT
//   lowbit-gguf make-fixture KIND -o OUT
//
// Plain C++ on top of LowBitGGUF so that it builds without MLIR.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/GGUF.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace lowbit::gguf;

namespace {

constexpr size_t kMaxShownElements = 8;

int usage() {
  std::fprintf(stderr, "usage: lowbit-gguf dump FILE\n"
                       "       lowbit-gguf compare A B\n"
                       "       lowbit-gguf truncate FILE N -o OUT\n"
                       "       lowbit-gguf flip FILE OFFSET -o OUT\n"
                       "       lowbit-gguf poke FILE TENSOR INDEX VALUE -o OUT\n"
                       "       lowbit-gguf make-fixture "
                       "tiny-llama|tiny-llama-tied|all-types -o OUT\n"
                       "       lowbit-gguf make-fixture synthetic-7b-layers "
                       "LAYERS -o OUT\n");
  return 2;
}

int fail(const std::string &message) {
  std::fprintf(stderr, "lowbit-gguf: %s\n", message.c_str());
  return 2;
}

bool parseU64(const char *s, uint64_t &v) {
  if (!*s || *s == '-')
    return false;
  errno = 0;
  char *end = nullptr;
  unsigned long long r = std::strtoull(s, &end, 0);
  if (errno || *end)
    return false;
  v = r;
  return true;
}

//===----------------------------------------------------------------------===//
// dump
//===----------------------------------------------------------------------===//

std::string escape(const std::string &s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      r += "\\\"";
      break;
    case '\\':
      r += "\\\\";
      break;
    case '\n':
      r += "\\n";
      break;
    case '\t':
      r += "\\t";
      break;
    case '\r':
      r += "\\r";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        r += buf;
      } else {
        r += static_cast<char>(c);
      }
    }
  }
  return r + "\"";
}

std::string formatValue(const Value &v) {
  char buf[64];
  switch (v.type) {
  case ValueType::U8:
  case ValueType::U16:
  case ValueType::U32:
  case ValueType::U64:
    std::snprintf(buf, sizeof buf, "%" PRIu64, v.u);
    return buf;
  case ValueType::I8:
  case ValueType::I16:
  case ValueType::I32:
  case ValueType::I64:
    std::snprintf(buf, sizeof buf, "%" PRId64, v.i);
    return buf;
  case ValueType::Bool:
    return v.u ? "true" : "false";
  case ValueType::F32:
    // %.9g round-trips every float; %.17g every double.
    std::snprintf(buf, sizeof buf, "%.9g", v.f);
    return buf;
  case ValueType::F64:
    std::snprintf(buf, sizeof buf, "%.17g", v.f);
    return buf;
  case ValueType::String:
    return escape(v.str);
  case ValueType::Array: {
    std::string r;
    size_t n = v.elements.size();
    if (n > kMaxShownElements)
      r += std::string("[") + valueTypeName(v.elementType) + " x " +
           std::to_string(n) + "] ";
    r += "[";
    for (size_t i = 0; i < n && i < kMaxShownElements; ++i) {
      if (i)
        r += ", ";
      r += formatValue(v.elements[i]);
    }
    if (n > kMaxShownElements)
      r += ", ..";
    return r + "]";
  }
  }
  return "?";
}

std::string formatType(const Value &v) {
  if (v.type != ValueType::Array)
    return valueTypeName(v.type);
  if (v.elementType == ValueType::Array && !v.elements.empty())
    return "ARRAY[" + formatType(v.elements[0]) + "]";
  return std::string("ARRAY[") + valueTypeName(v.elementType) + "]";
}

std::string typeName(uint32_t ggmlType) {
  const char *n = ggmlTypeName(ggmlType);
  return n ? n : "TYPE" + std::to_string(ggmlType);
}

std::string formatDims(const std::vector<uint64_t> &dims) {
  std::string r = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    r += (i ? ", " : "") + std::to_string(dims[i]);
  return r + "]";
}

uint64_t fnv1a(const uint8_t *p, uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

int dump(const std::string &path) {
  Error err;
  auto r = Reader::open(path, err);
  if (!r)
    return fail(err.message());
  std::printf("version: %u\n", r->version());
  std::printf("alignment: %" PRIu64 "\n", r->alignment());
  std::printf("data_offset: %" PRIu64 "\n", r->dataOffset());
  std::printf("kv_count: %zu\n", r->metadata().size());
  for (const KeyValue &kv : r->metadata())
    std::printf("kv %s: %s = %s\n", kv.key.c_str(),
                formatType(kv.value).c_str(), formatValue(kv.value).c_str());
  std::printf("tensor_count: %zu\n", r->tensors().size());
  for (const TensorInfo &t : r->tensors())
    std::printf("tensor %s: %s %s offset=%" PRIu64 " size=%" PRIu64
                " fnv1a=%016" PRIx64 "\n",
                t.name.c_str(), typeName(t.ggmlType).c_str(),
                formatDims(t.dims).c_str(), t.offset, t.byteSize,
                fnv1a(r->tensorData(t), t.byteSize));
  return 0;
}

//===----------------------------------------------------------------------===//
// compare
//===----------------------------------------------------------------------===//

int differ(const std::string &what) {
  std::printf("%s\n", what.c_str());
  return 1;
}

int compare(const std::string &a, const std::string &b) {
  Error err;
  auto ra = Reader::open(a, err);
  if (!ra)
    return fail(err.message());
  auto rb = Reader::open(b, err);
  if (!rb)
    return fail(err.message());
  const auto &ka = ra->metadata(), &kb = rb->metadata();
  for (size_t i = 0; i < ka.size() && i < kb.size(); ++i) {
    if (ka[i].key != kb[i].key)
      return differ("kv " + std::to_string(i) + ": key " + ka[i].key + " vs " +
                    kb[i].key);
    if (formatType(ka[i].value) != formatType(kb[i].value))
      return differ("kv " + ka[i].key + ": type " + formatType(ka[i].value) +
                    " vs " + formatType(kb[i].value));
    if (ka[i].value != kb[i].value)
      return differ("kv " + ka[i].key + ": value " + formatValue(ka[i].value) +
                    " vs " + formatValue(kb[i].value));
  }
  if (ka.size() != kb.size())
    return differ("kv count " + std::to_string(ka.size()) + " vs " +
                  std::to_string(kb.size()));
  const auto &ta = ra->tensors(), &tb = rb->tensors();
  for (size_t i = 0; i < ta.size() && i < tb.size(); ++i) {
    if (ta[i].name != tb[i].name)
      return differ("tensor " + std::to_string(i) + ": name " + ta[i].name +
                    " vs " + tb[i].name);
    if (ta[i].ggmlType != tb[i].ggmlType)
      return differ("tensor " + ta[i].name + ": type " +
                    typeName(ta[i].ggmlType) + " vs " +
                    typeName(tb[i].ggmlType));
    if (ta[i].dims != tb[i].dims)
      return differ("tensor " + ta[i].name + ": dims " +
                    formatDims(ta[i].dims) + " vs " + formatDims(tb[i].dims));
    const uint8_t *pa = ra->tensorData(ta[i]), *pb = rb->tensorData(tb[i]);
    for (uint64_t j = 0; j < ta[i].byteSize; ++j)
      if (pa[j] != pb[j])
        return differ("tensor " + ta[i].name + ": bytes differ at byte " +
                      std::to_string(j));
  }
  if (ta.size() != tb.size())
    return differ("tensor count " + std::to_string(ta.size()) + " vs " +
                  std::to_string(tb.size()));
  return 0;
}

//===----------------------------------------------------------------------===//
// truncate / flip: raw byte edits for negative tests
//===----------------------------------------------------------------------===//

bool readFile(const std::string &path, std::vector<char> &bytes,
              std::string &why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  bytes.assign(std::istreambuf_iterator<char>(in),
               std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = path + ": read error";
    return false;
  }
  return true;
}

bool writeFile(const std::string &path, const char *data, size_t n,
               std::string &why) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(n));
  out.close();
  if (!out) {
    why = path + ": cannot write";
    return false;
  }
  return true;
}

int truncateFile(const std::string &in, uint64_t n, const std::string &out) {
  std::vector<char> bytes;
  std::string why;
  if (!readFile(in, bytes, why))
    return fail(why);
  if (n > bytes.size())
    return fail(in + " has only " + std::to_string(bytes.size()) + " bytes");
  if (!writeFile(out, bytes.data(), static_cast<size_t>(n), why))
    return fail(why);
  return 0;
}

int flipByte(const std::string &in, uint64_t offset, const std::string &out) {
  std::vector<char> bytes;
  std::string why;
  if (!readFile(in, bytes, why))
    return fail(why);
  if (offset >= bytes.size())
    return fail("offset " + std::to_string(offset) + " is past the end of " +
                in + " (" + std::to_string(bytes.size()) + " bytes)");
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0xff);
  if (!writeFile(out, bytes.data(), bytes.size(), why))
    return fail(why);
  return 0;
}

/// Sets element `index` of an F32 tensor to `value` ("nan", "inf" or a
/// number), to make files with bad weights for negative tests.
int pokeFloat(const std::string &in, const std::string &tensorName,
              uint64_t index, const std::string &valueText,
              const std::string &out) {
  lowbit::gguf::Error err;
  auto reader = lowbit::gguf::Reader::open(in, err);
  if (!reader)
    return fail(err.message());
  const lowbit::gguf::TensorInfo *tensor = reader->findTensor(tensorName);
  if (!tensor || tensor->ggmlType != 0)
    return fail("no F32 tensor '" + tensorName + "' in " + in);
  if (index >= tensor->elementCount())
    return fail("index " + std::to_string(index) + " is outside '" +
                tensorName + "'");
  float value = valueText == "nan"   ? std::numeric_limits<float>::quiet_NaN()
                : valueText == "inf" ? std::numeric_limits<float>::infinity()
                                     : std::strtof(valueText.c_str(), nullptr);
  uint64_t offset = reader->tensorFileOffset(*tensor) + index * 4;
  reader.reset();
  std::vector<char> bytes;
  std::string why;
  if (!readFile(in, bytes, why))
    return fail(why);
  std::memcpy(bytes.data() + offset, &value, 4);
  if (!writeFile(out, bytes.data(), bytes.size(), why))
    return fail(why);
  return 0;
}

//===----------------------------------------------------------------------===//
// make-fixture
//===----------------------------------------------------------------------===//

/// xorshift64* as in the golden data recipe (shared/golden/README.md).
class Rng {
public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t x = state_;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state_ = x;
    return x * 0x2545F4914F6CDD1Dull;
  }
  /// Uniform in (-scale, scale).
  float uniform(float scale) {
    double u = ((next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return static_cast<float>((2.0 * u - 1.0) * scale);
  }

private:
  uint64_t state_;
};

struct Tensor {
  std::string name;
  std::vector<uint64_t> dims;
  std::vector<float> data;
};

Value stringArray(const std::vector<std::string> &items) {
  std::vector<Value> v;
  for (const std::string &s : items)
    v.push_back(Value::makeString(s));
  return Value::makeArray(ValueType::String, std::move(v));
}

int makeTinyLlama(const std::string &out, bool tied) {
  constexpr uint32_t kDim = 32, kLayers = 2, kHeads = 4, kKVHeads = 2,
                     kFFN = 64, kVocab = 64, kContext = 64;
  constexpr uint32_t kHeadDim = kDim / kHeads;
  constexpr uint32_t kKVDim = kHeadDim * kKVHeads;

  Writer w(3);
  w.set("general.architecture", Value::makeString("llama"));
  w.set("general.name",
        Value::makeString(tied ? "tiny-llama-tied" : "tiny-llama"));
  w.set("llama.context_length", Value::makeU32(kContext));
  w.set("llama.embedding_length", Value::makeU32(kDim));
  w.set("llama.block_count", Value::makeU32(kLayers));
  w.set("llama.feed_forward_length", Value::makeU32(kFFN));
  w.set("llama.rope.dimension_count", Value::makeU32(kHeadDim));
  w.set("llama.attention.head_count", Value::makeU32(kHeads));
  w.set("llama.attention.head_count_kv", Value::makeU32(kKVHeads));
  w.set("llama.attention.layer_norm_rms_epsilon", Value::makeF32(1e-5f));

  // A sentencepiece-style vocabulary: <unk>, <s>, </s>, the newline byte,
  // then word pieces. Token types as llama.cpp numbers them: 1 normal,
  // 2 unknown, 3 control, 6 byte.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<0x0A>"};
  std::vector<Value> scores, types;
  for (const char *word : {"the", "and", "of", "to", "in", "is", "it", "was"})
    tokens.push_back(std::string("\xe2\x96\x81") + word);
  for (char c = 'a'; c <= 'z'; ++c)
    tokens.push_back(std::string("\xe2\x96\x81") + c);
  for (char c = 'a'; c <= 'z'; ++c)
    tokens.push_back(std::string(1, c));
  if (tokens.size() != kVocab)
    return fail("internal error: vocabulary size");
  for (size_t i = 0; i < tokens.size(); ++i) {
    scores.push_back(Value::makeF32(i < 4 ? 0.0f : -float(i - 3)));
    int32_t type = i == 0 ? 2 : i < 3 ? 3 : i == 3 ? 6 : 1;
    types.push_back(Value::makeI32(type));
  }
  w.set("tokenizer.ggml.model", Value::makeString("llama"));
  w.set("tokenizer.ggml.tokens", stringArray(tokens));
  w.set("tokenizer.ggml.scores",
        Value::makeArray(ValueType::F32, std::move(scores)));
  w.set("tokenizer.ggml.token_type",
        Value::makeArray(ValueType::I32, std::move(types)));
  w.set("tokenizer.ggml.bos_token_id", Value::makeU32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::makeU32(2));
  w.set("tokenizer.ggml.unknown_token_id", Value::makeU32(0));

  // Weights: dims in ggml order (ne0 = input features). Norms are 1.
  Rng rng(12345);
  std::vector<Tensor> tensors;
  auto add = [&](std::string name, std::vector<uint64_t> dims, bool norm) {
    Tensor t{std::move(name), std::move(dims), {}};
    uint64_t n = 1;
    for (uint64_t d : t.dims)
      n *= d;
    t.data.resize(n);
    for (float &x : t.data)
      x = norm ? 1.0f : rng.uniform(0.1f);
    tensors.push_back(std::move(t));
  };
  // The order of stories260K (llama.cpp's convert script): embeddings, the
  // blocks, then the output norm and head.
  add("token_embd.weight", {kDim, kVocab}, false);
  for (uint32_t l = 0; l < kLayers; ++l) {
    std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_q.weight", {kDim, kDim}, false);
    add(b + "attn_k.weight", {kDim, kKVDim}, false);
    add(b + "attn_v.weight", {kDim, kKVDim}, false);
    add(b + "attn_output.weight", {kDim, kDim}, false);
    add(b + "ffn_gate.weight", {kDim, kFFN}, false);
    add(b + "ffn_down.weight", {kFFN, kDim}, false);
    add(b + "ffn_up.weight", {kDim, kFFN}, false);
    add(b + "attn_norm.weight", {kDim}, true);
    add(b + "ffn_norm.weight", {kDim}, true);
  }
  add("output_norm.weight", {kDim}, true);
  if (!tied)
    add("output.weight", {kDim, kVocab}, false);
  for (const Tensor &t : tensors)
    w.addTensor(t.name, t.dims, /*F32=*/0, t.data.data(),
                t.data.size() * sizeof(float));
  Error err;
  if (!w.write(out, err))
    return fail(err.message());
  return 0;
}

int makeAllTypes(const std::string &out) {
  Writer w(3);
  w.set("test.u8", Value::makeU8(200));
  w.set("test.i8", Value::makeI8(-100));
  w.set("test.u16", Value::makeU16(60000));
  w.set("test.i16", Value::makeI16(-30000));
  w.set("test.u32", Value::makeU32(4000000000u));
  w.set("test.i32", Value::makeI32(-2000000000));
  w.set("test.f32", Value::makeF32(0.15625f));
  w.set("test.bool", Value::makeBool(true));
  w.set("test.string", Value::makeString("hello \"gguf\"\n"));
  w.set("test.u64", Value::makeU64(18000000000000000000ull));
  w.set("test.i64", Value::makeI64(-9000000000000000000ll));
  w.set("test.f64", Value::makeF64(-2.5e-300));
  w.set("test.empty_string", Value::makeString(""));
  std::vector<Value> ints;
  for (int i = 0; i < 10; ++i)
    ints.push_back(Value::makeI32(i * i - 20));
  w.set("test.array.i32", Value::makeArray(ValueType::I32, ints));
  w.set("test.array.f32",
        Value::makeArray(ValueType::F32,
                         {Value::makeF32(1.5f), Value::makeF32(-0.0f)}));
  w.set("test.array.bool",
        Value::makeArray(ValueType::Bool,
                         {Value::makeBool(false), Value::makeBool(true)}));
  w.set("test.array.string", stringArray({"a", "", "b c"}));
  w.set("test.array.empty", Value::makeArray(ValueType::U64, {}));
  w.set("test.array.nested",
        Value::makeArray(ValueType::Array,
                         {Value::makeArray(ValueType::U8, {Value::makeU8(1),
                                                           Value::makeU8(2)}),
                          Value::makeArray(ValueType::U8, {})}));
  w.set("test.array.empty_nested", Value::makeArray(ValueType::Array, {}));
  Error err;
  if (!w.write(out, err))
    return fail(err.message());
  return 0;
}

/// A llama with LLaMA-7B's layer shapes (dim 4096, ffn 11008, 32 heads,
/// vocabulary 32000) and `layers` blocks of random F16 weights: the matrices
/// a 7B model streams per token, for speed measurements without a 7B file.
/// Tensors are generated while the file is written (never all in memory).
int makeSynthetic7BLayers(const std::string &out, uint32_t layers) {
  constexpr uint32_t kDim = 4096, kFFN = 11008, kHeads = 32, kVocab = 32000,
                     kContext = 4096;
  Writer w(3);
  w.set("general.architecture", Value::makeString("llama"));
  w.set("general.name", Value::makeString("synthetic-7b-" +
                                          std::to_string(layers) + "l"));
  w.set("general.file_type", Value::makeU32(1)); // MOSTLY_F16
  w.set("llama.context_length", Value::makeU32(kContext));
  w.set("llama.embedding_length", Value::makeU32(kDim));
  w.set("llama.block_count", Value::makeU32(layers));
  w.set("llama.feed_forward_length", Value::makeU32(kFFN));
  w.set("llama.rope.dimension_count", Value::makeU32(kDim / kHeads));
  w.set("llama.attention.head_count", Value::makeU32(kHeads));
  w.set("llama.attention.head_count_kv", Value::makeU32(kHeads));
  w.set("llama.attention.layer_norm_rms_epsilon", Value::makeF32(1e-5f));
  // SentencePiece-style: <unk> <s> </s>, 256 byte tokens, then pieces.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<Value> scores, types;
  char buf[16];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
  }
  for (uint32_t i = static_cast<uint32_t>(tokens.size()); i < kVocab; ++i)
    tokens.push_back("\xe2\x96\x81t" + std::to_string(i));
  for (size_t i = 0; i < tokens.size(); ++i) {
    scores.push_back(Value::makeF32(i < 259 ? 0.0f : -float(i)));
    types.push_back(Value::makeI32(i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  }
  w.set("tokenizer.ggml.model", Value::makeString("llama"));
  w.set("tokenizer.ggml.tokens", stringArray(tokens));
  w.set("tokenizer.ggml.scores",
        Value::makeArray(ValueType::F32, std::move(scores)));
  w.set("tokenizer.ggml.token_type",
        Value::makeArray(ValueType::I32, std::move(types)));
  w.set("tokenizer.ggml.bos_token_id", Value::makeU32(1));
  w.set("tokenizer.ggml.eos_token_id", Value::makeU32(2));
  w.set("tokenizer.ggml.unknown_token_id", Value::makeU32(0));

  uint64_t seed = 777;
  auto add = [&](const std::string &name, std::vector<uint64_t> dims,
                 bool norm) {
    uint64_t n = 1;
    for (uint64_t d : dims)
      n *= d;
    const bool f16 = !norm;
    const uint64_t bytes = n * (f16 ? 2 : 4);
    const uint64_t mySeed = ++seed;
    w.addTensor(name, dims, f16 ? /*F16=*/1 : /*F32=*/0, bytes,
                [n, norm, f16, mySeed](uint8_t *dst, uint64_t, std::string &) {
                  Rng rng(mySeed * 0x9E3779B97F4A7C15ull);
                  std::vector<float> row(4096);
                  for (uint64_t i = 0; i < n; i += row.size()) {
                    const uint64_t m = std::min<uint64_t>(row.size(), n - i);
                    for (uint64_t j = 0; j < m; ++j)
                      row[j] = norm ? 1.0f : rng.uniform(0.03f);
                    if (f16)
                      lowbit::formats::quantizeRow(lowbit::formats::Format::F16,
                                                   row.data(), dst + 2 * i,
                                                   static_cast<int64_t>(m),
                                                   nullptr);
                    else
                      std::memcpy(dst + 4 * i, row.data(), 4 * m);
                  }
                  return true;
                });
  };
  add("token_embd.weight", {kDim, kVocab}, false);
  for (uint32_t l = 0; l < layers; ++l) {
    std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_q.weight", {kDim, kDim}, false);
    add(b + "attn_k.weight", {kDim, kDim}, false);
    add(b + "attn_v.weight", {kDim, kDim}, false);
    add(b + "attn_output.weight", {kDim, kDim}, false);
    add(b + "ffn_gate.weight", {kDim, kFFN}, false);
    add(b + "ffn_down.weight", {kFFN, kDim}, false);
    add(b + "ffn_up.weight", {kDim, kFFN}, false);
    add(b + "attn_norm.weight", {kDim}, true);
    add(b + "ffn_norm.weight", {kDim}, true);
  }
  add("output_norm.weight", {kDim}, true);
  add("output.weight", {kDim, kVocab}, false);
  Error err;
  if (!w.write(out, err))
    return fail(err.message());
  return 0;
}

/// Returns the value of "-o OUT" among args[from..], or empty.
std::string outputArg(int argc, char **argv, int from) {
  for (int i = from; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "-o") == 0)
      return argv[i + 1];
  return "";
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  std::string cmd = argv[1];
  if (cmd == "dump" && argc == 3)
    return dump(argv[2]);
  if (cmd == "compare" && argc == 4)
    return compare(argv[2], argv[3]);
  if ((cmd == "truncate" || cmd == "flip") && argc == 6) {
    std::string out = outputArg(argc, argv, 4);
    uint64_t n;
    if (out.empty() || !parseU64(argv[3], n))
      return usage();
    return cmd == "truncate" ? truncateFile(argv[2], n, out)
                             : flipByte(argv[2], n, out);
  }
  if (cmd == "poke" && argc == 8) {
    std::string out = outputArg(argc, argv, 6);
    uint64_t index;
    if (out.empty() || !parseU64(argv[4], index))
      return usage();
    return pokeFloat(argv[2], argv[3], index, argv[5], out);
  }
  if (cmd == "make-fixture" && argc == 5) {
    std::string out = outputArg(argc, argv, 3);
    std::string kind = argv[2];
    if (out.empty())
      return usage();
    if (kind == "tiny-llama")
      return makeTinyLlama(out, /*tied=*/false);
    if (kind == "tiny-llama-tied")
      return makeTinyLlama(out, /*tied=*/true);
    if (kind == "all-types")
      return makeAllTypes(out);
    return fail("unknown fixture kind '" + kind + "'");
  }
  if (cmd == "make-fixture" && argc == 6 &&
      std::string(argv[2]) == "synthetic-7b-layers") {
    std::string out = outputArg(argc, argv, 4);
    uint64_t layers;
    if (out.empty() || !parseU64(argv[3], layers) || layers < 1 ||
        layers > 32)
      return usage();
    return makeSynthetic7BLayers(out, static_cast<uint32_t>(layers));
  }
  return usage();
}
