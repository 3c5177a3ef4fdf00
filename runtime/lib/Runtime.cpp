//===- Runtime.cpp - The lowbit native runtime ----------------------------===//
//
// Loads an artifact (manifest.json, weights.bin mmap'ed, model.so dlopen'ed
// or kernels registered by a static program) and runs the llama graph: the
// norms, RoPE, attention and SwiGLU come from lib/Exec's shared ops (so they
// are the reference executor's, bit for bit); matmuls go through the
// generated kernels: activations are quantized once per distinct quantizer
// and input, then the weight rows are split across the threads in multiples
// of the layout's interleave. A weight without a kernel runs on the
// executor's decode-to-f32 matmul and is reported.
//
// The C API never lets an exception out: allocation failures and the like
// become status codes.
//
//===----------------------------------------------------------------------===//

#include "lowbit/runtime.h"

#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/Target/KernelABI.h"
#include "lowbit/Target/TargetTable.h"
#include "lowbit/runtime/Manifest.h"

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace lowbit;
using runtime::Manifest;
using runtime::ManifestTensor;

//===----------------------------------------------------------------------===//
// Status, logging, static symbols
//===----------------------------------------------------------------------===//

namespace {

struct Failure {
  lb_status_code_t code;
  std::string message;
};

lb_status_code_t report(lb_status_t *status, lb_status_code_t code,
                        const std::string &message) {
  if (status) {
    status->code = code;
    std::snprintf(status->message, sizeof(status->message), "%s",
                  message.c_str());
  }
  return code;
}

lb_status_code_t ok(lb_status_t *status) { return report(status, LB_OK, ""); }

std::mutex logMutex;
lb_log_fn logFn = nullptr;
void *logUser = nullptr;

void logLine(lb_log_level_t level, const std::string &message) {
  std::lock_guard<std::mutex> lock(logMutex);
  if (logFn) {
    logFn(level, message.c_str(), logUser);
    return;
  }
  std::fprintf(stderr, "lowbit-runtime: %s%s\n",
               level == LB_LOG_WARNING ? "warning: " : "", message.c_str());
}

std::mutex symbolsMutex;
const lb_kernel_entry *staticTable = nullptr;

bool readFile(const std::string &path, std::string &out, std::string &err) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    err = path + ": " + std::strerror(errno);
    return false;
  }
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, got);
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) {
    err = path + ": read error";
    return false;
  }
  return true;
}

/// A read-only mapping of weights.bin.
class Mapping {
public:
  ~Mapping() {
    if (data_ && size_)
      munmap(const_cast<uint8_t *>(data_), size_);
  }
  bool open(const std::string &path, std::string &err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err = path + ": " + std::strerror(errno);
      return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      err = path + ": not a regular file";
      ::close(fd);
      return false;
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
      void *p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        err = path + ": mmap: " + std::strerror(errno);
        size_ = 0;
        ::close(fd);
        return false;
      }
      data_ = static_cast<const uint8_t *>(p);
    }
    ::close(fd);
    return true;
  }
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }

private:
  const uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
};

} // namespace

//===----------------------------------------------------------------------===//
// Model
//===----------------------------------------------------------------------===//

namespace {

/// A weight of the artifact as the runtime runs it.
struct Tensor {
  const ManifestTensor *m = nullptr;
  formats::Format format = formats::Format::F32;
  int64_t rows = 0, cols = 0;
  uint32_t interleave = 1;
  const uint8_t *data = nullptr;
  lb_matmul_kernel_fn kernel = nullptr;
  lb_quantize_act_fn quantize = nullptr;
  uint64_t actRowBytes = 0;
  /// Rows per kernel call are a multiple of this: the layout's interleave
  /// and the target table's micro-tile rows.
  int64_t rowUnit = 1;
  /// Plain-layout view for the fall-back matmul and the embedding lookup.
  exec::WeightRef plain;
  std::vector<uint8_t> unpacked; // owns plain.data when we had to unpack
  bool usedAsMatmul = false;
  std::string fallbackWhy;
};

/// One logical weight (blk.N.attn_q.weight, ...): a whole tensor or rows
/// [rowOffset, rowOffset + rows) of a fused one.
struct Piece {
  Tensor *tensor = nullptr;
  int64_t rowOffset = 0;
  int64_t rows = 0;
  bool whole() const { return rowOffset == 0 && rows == tensor->rows; }
};

struct Layer {
  Piece q, k, v, o, gate, up, down;
  std::vector<float> attnNorm, ffnNorm;
};

} // namespace

struct lb_model {
  std::string dir;
  Manifest manifest;
  Mapping weights;
  void *library = nullptr;
  std::vector<std::unique_ptr<Tensor>> tensors;
  std::map<std::string, Tensor *> byName;
  /// Logical weight name -> piece, for the parts of fused tensors.
  std::map<std::string, Piece> pieces;
  std::vector<Layer> layers;
  Piece embed, output;
  std::vector<float> outputNorm;
  exec::ops::RopeParams rope;
  std::string report;
  lb_model_info_t info{};

  ~lb_model() {
#ifndef LOWBIT_RUNTIME_NO_DLOPEN
    if (library)
      dlclose(library);
#endif
  }

  bool load(const std::string &path, Failure &f);

private:
  bool fail(Failure &f, lb_status_code_t code, const std::string &msg) {
    f = {code, msg};
    return false;
  }
  bool resolveSymbols(Failure &f);
  void *symbol(const std::string &name);
  bool bind(Failure &f);
  bool piece(const std::string &name, int64_t rows, int64_t cols, Piece &out,
             Failure &f);
  bool vectorWeight(const std::string &name, int64_t n, std::vector<float> &out,
                    Failure &f);
};

void *lb_model::symbol(const std::string &name) {
  {
    std::lock_guard<std::mutex> lock(symbolsMutex);
    if (staticTable) {
      for (const lb_kernel_entry *e = staticTable; e->name; ++e)
        if (name == e->name)
          return reinterpret_cast<void *>(e->fn);
      return nullptr;
    }
  }
#ifdef LOWBIT_RUNTIME_NO_DLOPEN
  return nullptr;
#else
  return library ? dlsym(library, name.c_str()) : nullptr;
#endif
}

bool lb_model::load(const std::string &path, Failure &f) {
  dir = path.empty() ? "." : path;
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0)
    return fail(f, LB_ERROR_IO, dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return fail(f, LB_ERROR_INVALID_ARGUMENT,
                dir + ": not a directory (a native artifact is a directory "
                      "with manifest.json, weights.bin and model.so)");

  std::string text, err;
  const std::string manifestPath = dir + "/" + runtime::kManifestFile;
  if (!readFile(manifestPath, text, err))
    return fail(f, LB_ERROR_IO, err);
  if (!runtime::parseManifest(text, manifest, err))
    return fail(f, LB_ERROR_BAD_ARTIFACT, manifestPath + ": " + err);
  if (manifest.abiVersion != LB_KERNEL_ABI_VERSION)
    return fail(f, LB_ERROR_ABI_MISMATCH,
                manifestPath + ": built for kernel ABI version " +
                    std::to_string(manifest.abiVersion) +
                    ", this runtime implements version " +
                    std::to_string(LB_KERNEL_ABI_VERSION) +
                    "; recompile the model");
  if (manifest.model.architecture != "llama")
    return fail(f, LB_ERROR_UNSUPPORTED,
                manifestPath + ": architecture '" +
                    manifest.model.architecture +
                    "' is not supported (the runtime runs llama)");

  const std::string weightsPath = dir + "/" + manifest.weightsFile;
  if (!weights.open(weightsPath, err))
    return fail(f, LB_ERROR_IO, err);
  if (weights.size() != manifest.weightsSize)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                weightsPath + ": has " + std::to_string(weights.size()) +
                    " bytes but the manifest says " +
                    std::to_string(manifest.weightsSize) + " bytes" +
                    (weights.size() < manifest.weightsSize ? " (truncated)"
                                                           : ""));

  for (const ManifestTensor &mt : manifest.tensors) {
    auto t = std::make_unique<Tensor>();
    t->m = &mt;
    t->format = formats::findByName(mt.format)->format;
    t->rows = mt.rows();
    t->cols = mt.cols();
    t->interleave = mt.interleave;
    t->data = weights.data() + mt.offset;
    t->actRowBytes = mt.activationRowBytes;
    t->plain.format = t->format;
    t->plain.rows = t->rows;
    t->plain.cols = t->cols;
    t->plain.rowBytes =
        formats::rowBytes(formats::info(t->format), static_cast<uint64_t>(t->cols));
    t->plain.data = t->data;
    byName[mt.name] = t.get();
    for (const runtime::TensorPart &part : mt.parts) {
      int64_t offset = 0;
      for (const runtime::TensorPart &p : mt.parts) {
        if (&p == &part)
          break;
        offset += p.rows;
      }
      pieces[part.name] = Piece{t.get(), offset, part.rows};
    }
    tensors.push_back(std::move(t));
  }
  if (!resolveSymbols(f) || !bind(f))
    return false;

  // Report and counts.
  info.name = manifest.model.name.c_str();
  info.architecture = manifest.model.architecture.c_str();
  info.target = manifest.target.c_str();
  const runtime::ModelParams &p = manifest.model;
  info.n_vocab = p.vocabSize;
  info.n_ctx_train = p.contextLength;
  info.n_embd = p.embeddingLength;
  info.n_layer = p.blockCount;
  info.n_head = p.headCount;
  info.n_head_kv = p.headCountKV;
  info.n_ff = p.feedForwardLength;
  info.n_tensors = static_cast<int32_t>(tensors.size());
  for (const auto &t : tensors) {
    info.n_params += t->rows * t->cols;
    info.weight_bytes += t->m->size;
    if (!t->usedAsMatmul)
      continue;
    char line[512];
    std::snprintf(line, sizeof(line), "%-32s %-7s %6lldx%-6lld rows=%-2u %s%s\n",
                  t->m->name.c_str(), t->m->format.c_str(),
                  static_cast<long long>(t->rows),
                  static_cast<long long>(t->cols), t->interleave,
                  t->kernel ? t->m->kernel.c_str() : "FALLBACK ",
                  t->kernel ? "" : t->fallbackWhy.c_str());
    report += line;
    if (t->kernel)
      ++info.n_kernel_tensors;
    else
      ++info.n_fallback_tensors;
  }
  return true;
}

bool lb_model::resolveSymbols(Failure &f) {
  bool anyKernel = false;
  for (const auto &t : tensors)
    anyKernel |= !t->m->kernel.empty();
  bool useStatic;
  {
    std::lock_guard<std::mutex> lock(symbolsMutex);
    useStatic = staticTable != nullptr;
  }
  if (!anyKernel)
    return true;
  // The table the compiler used: refuse code this CPU cannot execute
  // (SIGILL is not an error message), and take its micro-tile rows.
  const target::TargetInfo *table = target::findTarget(manifest.target);
  if (table && !table->hostSupports())
    return fail(f, LB_ERROR_UNSUPPORTED,
                dir + ": the kernels were generated for " + manifest.target +
                    " (" + table->description +
                    "), which this CPU cannot execute; recompile with "
                    "--target host");
  for (const auto &t : tensors) {
    t->rowUnit = t->interleave;
    if (const target::KernelChoice *c = table ? table->find(t->format) : nullptr)
      t->rowUnit = std::lcm<int64_t>(t->interleave,
                             std::max<int64_t>(1, c->rowTile));
  }
  const std::string codePath = dir + "/" + manifest.codeFile;
  if (!useStatic) {
    const std::string link =
        "link the artifact's kernel object into the program and pass its "
        "lb_kernel_table to lb_set_kernel_table";
    const bool object = manifest.codeFile.size() > 2 &&
                        manifest.codeFile.compare(manifest.codeFile.size() - 2,
                                                  2, ".o") == 0;
    if (object)
      return fail(f, LB_ERROR_UNSUPPORTED,
                  codePath + " is an object for static linking (" +
                      manifest.target + "): " + link);
#ifdef LOWBIT_RUNTIME_NO_DLOPEN
    return fail(f, LB_ERROR_UNSUPPORTED,
                codePath + ": this runtime is linked statically and cannot "
                           "load shared objects: " + link);
#else
    struct stat st;
    if (stat(codePath.c_str(), &st) != 0)
      return fail(f, LB_ERROR_IO, codePath + ": " + std::strerror(errno));
    library = dlopen(codePath.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char *why = dlerror();
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  codePath + ": cannot load: " + (why ? why : "unknown error"));
    }
#endif
  }
  const std::string where = useStatic ? "the kernels linked into this program"
                                      : codePath;
  auto version =
      reinterpret_cast<lb_abi_version_fn>(symbol(LB_ABI_VERSION_SYMBOL));
  if (!version)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                where + ": no " LB_ABI_VERSION_SYMBOL " symbol (not a lowbit "
                        "kernel library?)");
  if (version() != LB_KERNEL_ABI_VERSION)
    return fail(f, LB_ERROR_ABI_MISMATCH,
                where + ": kernels built for ABI version " +
                    std::to_string(version()) + ", this runtime implements " +
                    std::to_string(LB_KERNEL_ABI_VERSION));
  for (const auto &t : tensors) {
    const ManifestTensor &mt = *t->m;
    if (mt.kernel.empty())
      continue;
    t->kernel = reinterpret_cast<lb_matmul_kernel_fn>(symbol(mt.kernel));
    if (!t->kernel)
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  where + ": lacks kernel '" + mt.kernel +
                      "' that the manifest names for " + mt.name);
    if (!mt.quantizer.empty()) {
      t->quantize = reinterpret_cast<lb_quantize_act_fn>(symbol(mt.quantizer));
      if (!t->quantize)
        return fail(f, LB_ERROR_BAD_ARTIFACT,
                    where + ": lacks activation quantizer '" + mt.quantizer +
                        "' that the manifest names for " + mt.name);
    }
    if (mt.offset % LB_WEIGHT_ALIGNMENT != 0)
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  "manifest: " + mt.name + " is at offset " +
                      std::to_string(mt.offset) + ", not aligned to " +
                      std::to_string(LB_WEIGHT_ALIGNMENT) + " bytes");
  }
  return true;
}

bool lb_model::piece(const std::string &name, int64_t rows, int64_t cols,
                     Piece &out, Failure &f) {
  auto it = byName.find(name);
  if (it != byName.end())
    out = Piece{it->second, 0, it->second->rows};
  else if (auto p = pieces.find(name); p != pieces.end())
    out = p->second;
  else
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                "manifest: no tensor " + name + " (neither alone nor as a "
                                                "part of a fused tensor)");
  if (out.rows != rows || out.tensor->cols != cols)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                "manifest: " + name + " is [" + std::to_string(out.rows) +
                    ", " + std::to_string(out.tensor->cols) + "], expected [" +
                    std::to_string(rows) + ", " + std::to_string(cols) + "]");
  return true;
}

bool lb_model::vectorWeight(const std::string &name, int64_t n,
                            std::vector<float> &out, Failure &f) {
  Piece p;
  if (!piece(name, 1, n, p, f))
    return false;
  if (!p.whole() || p.tensor->interleave != 1)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                "manifest: " + name + " must be a plain 1-D tensor");
  out.resize(n);
  formats::dequantizeRow(p.tensor->format, p.tensor->data, out.data(), n);
  return true;
}

bool lb_model::bind(Failure &f) {
  const runtime::ModelParams &p = manifest.model;
  const int64_t d = p.embeddingLength, hq = p.headCount * p.headDim,
                hkv = p.headCountKV * p.headDim, ff = p.feedForwardLength;
  rope.headDim = p.headDim;
  rope.ropeDims = p.ropeDims;
  rope.freqBase = static_cast<float>(p.ropeFreqBase);
  rope.freqScale = static_cast<float>(p.ropeFreqScale);
  rope.mode = p.ropeMode == "neox" ? exec::RopeMode::NeoX
                                   : exec::RopeMode::Normal;
  if (!piece("token_embd.weight", p.vocabSize, d, embed, f) ||
      !vectorWeight("output_norm.weight", d, outputNorm, f))
    return false;
  if (!embed.whole())
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                "manifest: token_embd.weight cannot be part of a fused tensor");
  if (byName.count("output.weight") || pieces.count("output.weight")) {
    if (!piece("output.weight", p.vocabSize, d, output, f))
      return false;
  } else {
    output = embed; // tied embeddings
  }
  std::vector<Piece *> matmuls = {&output};
  for (int64_t l = 0; l < p.blockCount; ++l) {
    Layer L;
    auto name = [&](const char *what) {
      return "blk." + std::to_string(l) + "." + what + ".weight";
    };
    if (!vectorWeight(name("attn_norm"), d, L.attnNorm, f) ||
        !vectorWeight(name("ffn_norm"), d, L.ffnNorm, f) ||
        !piece(name("attn_q"), hq, d, L.q, f) ||
        !piece(name("attn_k"), hkv, d, L.k, f) ||
        !piece(name("attn_v"), hkv, d, L.v, f) ||
        !piece(name("attn_output"), d, hq, L.o, f) ||
        !piece(name("ffn_gate"), ff, d, L.gate, f) ||
        !piece(name("ffn_up"), ff, d, L.up, f) ||
        !piece(name("ffn_down"), d, ff, L.down, f))
      return false;
    layers.push_back(std::move(L));
  }
  for (Layer &L : layers)
    for (Piece *pc : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      matmuls.push_back(pc);

  for (Piece *pc : matmuls) {
    Tensor &t = *pc->tensor;
    if (t.usedAsMatmul)
      continue;
    t.usedAsMatmul = true;
    if (t.kernel)
      continue;
    t.fallbackWhy = t.m->note.empty()
                        ? "(no kernel for " + t.m->format + " on " +
                              manifest.target + ")"
                        : "(" + t.m->note + ")";
    if (!formats::hasCodec(t.format))
      return fail(f, LB_ERROR_UNSUPPORTED,
                  "manifest: " + t.m->name + " has format " + t.m->format +
                      ", which has neither a kernel nor a decoder");
    std::string line = t.m->name + " (" + t.m->format + ", " +
                       std::to_string(t.rows) + "x" + std::to_string(t.cols) +
                       ") has no native kernel: running the slow "
                       "decode-to-f32 fall-back " +
                       t.fallbackWhy;
    if (t.interleave != 1) {
      // The fall-back decodes plain GGML rows: unpack once.
      try {
        t.unpacked.resize(t.m->size);
      } catch (const std::bad_alloc &) {
        return fail(f, LB_ERROR_OUT_OF_MEMORY,
                    "out of memory unpacking " + t.m->name);
      }
      formats::unpackRows(t.format, t.data, t.unpacked.data(), t.rows, t.cols,
                          t.interleave);
      t.plain.data = t.unpacked.data();
      line += "; unpacked from its " + std::to_string(t.interleave) +
              "-row layout";
    }
    logLine(LB_LOG_WARNING, line);
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Context
//===----------------------------------------------------------------------===//

namespace {
template <typename T> struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U> AlignedAllocator(const AlignedAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const AlignedAllocator &) const { return true; }
  bool operator!=(const AlignedAllocator &) const { return false; }
};
using Buffer = std::vector<float, AlignedAllocator<float>>;
using ByteBuffer = std::vector<uint8_t, AlignedAllocator<uint8_t>>;
} // namespace

struct lb_context {
  lb_model *model = nullptr;
  std::unique_ptr<exec::ThreadPool> pool;
  exec::ops::KVCache cache;
  exec::ops::Scratch scratch;
  int64_t ctx = 0, batch = 0, cached = 0;
  Buffer x, xn, q, k, v, attn, gate, up, tmp, fused;
  ByteBuffer xq;
  std::vector<float> logits;
  int64_t logitRows = 0;
  // Which input xq currently holds, quantized by which quantizer.
  const float *xqSource = nullptr;
  lb_quantize_act_fn xqQuantizer = nullptr;

  bool create(lb_model *m, const lb_context_params_t &params, Failure &f);
  bool evalBatch(const int32_t *tokens, int64_t n, int64_t pos,
                 int64_t firstOutput, float *out);

private:
  void quantizeInput(const Tensor &t, const float *x, int64_t n);
  void matmul(const Tensor &t, const float *x, int64_t n, float *y,
              int64_t yStride);
  /// Computes pieces (all reading `x`) into their outputs (stride = rows).
  void matmulPieces(std::initializer_list<std::pair<const Piece *, float *>>
                        work,
                    const float *x, int64_t n);
};

bool lb_context::create(lb_model *m, const lb_context_params_t &params,
                        Failure &f) {
  model = m;
  const runtime::ModelParams &p = m->manifest.model;
  ctx = params.n_ctx > 0 ? params.n_ctx : p.contextLength;
  if (ctx <= 0) {
    f = {LB_ERROR_INVALID_ARGUMENT,
         "the model has no training context length: set n_ctx"};
    return false;
  }
  batch = std::max<int64_t>(1, std::min<int64_t>(
                                   params.n_batch > 0 ? params.n_batch : 512, ctx));
  pool = std::make_unique<exec::ThreadPool>(params.n_threads);
  std::string err;
  if (!cache.allocate(p.blockCount, ctx, p.headCountKV, p.headDim, err)) {
    f = {LB_ERROR_OUT_OF_MEMORY, err};
    return false;
  }
  const int64_t d = p.embeddingLength, hq = p.headCount * p.headDim,
                hkv = p.headCountKV * p.headDim, ff = p.feedForwardLength,
                B = batch;
  int64_t widest = 0;
  uint64_t actBytes = 0;
  for (const auto &t : m->tensors)
    if (t->usedAsMatmul) {
      widest = std::max(widest, t->rows);
      actBytes = std::max<uint64_t>(actBytes, t->actRowBytes);
    }
  try {
    x.resize(B * d);
    xn.resize(B * std::max(d, hq));
    q.resize(B * hq);
    k.resize(B * hkv);
    v.resize(B * hkv);
    attn.resize(B * hq);
    gate.resize(B * ff);
    up.resize(B * ff);
    tmp.resize(B * d);
    fused.resize(B * widest);
    xq.resize(B * actBytes + 64);
    const size_t perThread = std::max(
        exec::ops::matmulScratchFloats(),
        exec::ops::attentionScratchFloats(p.headCount, p.headCountKV,
                                          p.headDim, ctx));
    scratch.assign(pool->size(), std::vector<float>(perThread));
  } catch (const std::bad_alloc &) {
    f = {LB_ERROR_OUT_OF_MEMORY, "out of memory allocating the activation "
                                 "buffers; use a smaller batch or context"};
    return false;
  }
  return true;
}

void lb_context::quantizeInput(const Tensor &t, const float *in, int64_t n) {
  if (xqSource == in && xqQuantizer == t.quantize)
    return; // q/k/v and gate/up share one quantized input
  const int64_t K = t.cols;
  const uint64_t rb = t.actRowBytes;
  // Rows are independent: split tokens across threads for prompts.
  const int64_t per = std::max<int64_t>(1, (n + pool->size() - 1) / pool->size());
  const int64_t tasks = (n + per - 1) / per;
  pool->run(
      tasks,
      [&](int64_t task, int) {
        const int64_t r0 = task * per, r1 = std::min(n, r0 + per);
        t.quantize(in + r0 * K, xq.data() + r0 * rb, r1 - r0, K, K);
      },
      /*parallel=*/n * K >= exec::ops::kMinParallelWork / 4);
  xqSource = in;
  xqQuantizer = t.quantize;
}

void lb_context::matmul(const Tensor &t, const float *in, int64_t n, float *y,
                        int64_t yStride) {
  if (!t.kernel) {
    exec::ops::matmulDecoded(*pool, scratch, t.plain, in, n, y, yStride);
    return;
  }
  const void *act = nullptr;
  if (t.quantize) {
    quantizeInput(t, in, n);
    act = xq.data();
  }
  const int64_t N = t.rows, K = t.cols;
  // Row ranges in multiples of the row unit, about four per thread so
  // uneven threads still balance; at least 16 rows so the per-call overhead
  // stays small.
  const int64_t unit = t.rowUnit;
  const int64_t want = std::max<int64_t>(1, 4 * pool->size());
  int64_t chunk = std::max<int64_t>(16, (N + want - 1) / want);
  chunk = (chunk + unit - 1) / unit * unit;
  const int64_t tasks = (N + chunk - 1) / chunk;
  lb_matmul_kernel_fn kernel = t.kernel;
  const void *w = t.data;
  pool->run(
      tasks,
      [&](int64_t task, int) {
        const int64_t r0 = task * chunk, r1 = std::min(N, r0 + chunk);
        kernel(w, in, act, y, n, K, yStride, r0, r1);
      },
      /*parallel=*/n * N * K >= exec::ops::kMinParallelWork);
}

void lb_context::matmulPieces(
    std::initializer_list<std::pair<const Piece *, float *>> work,
    const float *in, int64_t n) {
  const Tensor *inFused = nullptr;
  for (const auto &[pc, out] : work) {
    if (pc->whole()) {
      matmul(*pc->tensor, in, n, out, pc->rows);
      continue;
    }
    // A fused tensor: computed once for its neighbouring pieces, then each
    // piece's columns are copied out.
    const Tensor *t = pc->tensor;
    if (inFused != t) {
      matmul(*t, in, n, fused.data(), t->rows);
      inFused = t;
    }
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(out + r * pc->rows, fused.data() + r * t->rows + pc->rowOffset,
                  pc->rows * sizeof(float));
  }
}

bool lb_context::evalBatch(const int32_t *tokens, int64_t n, int64_t pos,
                           int64_t firstOutput, float *out) {
  lb_model &m = *model;
  const runtime::ModelParams &p = m.manifest.model;
  const int64_t d = p.embeddingLength, hq = p.headCount * p.headDim,
                hkv = p.headCountKV * p.headDim, ff = p.feedForwardLength;
  const float eps = static_cast<float>(p.rmsNormEps);

  const Tensor &E = *m.embed.tensor;
  for (int64_t i = 0; i < n; ++i) {
    float *dst = x.data() + i * d;
    if (E.interleave == 1) {
      exec::ops::decodeSpan(E.plain, tokens[i], 0, d, dst);
      continue;
    }
    const formats::FormatInfo &fi = formats::info(E.format);
    for (int64_t b = 0; b < d / fi.blockSize; ++b)
      formats::dequantizeRow(
          E.format,
          E.data + formats::packedBlockOffset(E.format, d, E.interleave,
                                              tokens[i], b),
          dst + b * fi.blockSize, fi.blockSize);
  }

  for (int64_t l = 0; l < p.blockCount; ++l) {
    const Layer &L = m.layers[l];
    exec::ops::rmsNorm(*pool, x.data(), L.attnNorm.data(), n, d, eps,
                       xn.data());
    xqSource = nullptr;
    matmulPieces({{&L.q, q.data()}, {&L.k, k.data()}, {&L.v, v.data()}},
                 xn.data(), n);
    exec::ops::rope(m.rope, q.data(), n, p.headCount, pos);
    exec::ops::rope(m.rope, k.data(), n, p.headCountKV, pos);
    cache.store(l, pos, n, k.data(), hkv, v.data(), hkv);
    exec::ops::attention(*pool, scratch, cache, l, q.data(), hq, n, pos,
                         p.headCount, attn.data(), hq);
    xqSource = nullptr;
    matmulPieces({{&L.o, tmp.data()}}, attn.data(), n);
    for (int64_t i = 0; i < n * d; ++i)
      x[i] += tmp[i];

    exec::ops::rmsNorm(*pool, x.data(), L.ffnNorm.data(), n, d, eps,
                       xn.data());
    xqSource = nullptr;
    matmulPieces({{&L.gate, gate.data()}, {&L.up, up.data()}}, xn.data(), n);
    exec::ops::swiglu(*pool, gate.data(), ff, up.data(), ff, gate.data(), ff,
                      n, ff);
    xqSource = nullptr;
    matmulPieces({{&L.down, tmp.data()}}, gate.data(), n);
    for (int64_t i = 0; i < n * d; ++i)
      x[i] += tmp[i];
  }

  const int64_t nOut = n - firstOutput;
  if (nOut > 0) {
    exec::ops::rmsNorm(*pool, x.data() + firstOutput * d, m.outputNorm.data(),
                       nOut, d, eps, xn.data());
    xqSource = nullptr;
    if (m.output.whole())
      matmul(*m.output.tensor, xn.data(), nOut, out, p.vocabSize);
    else
      matmulPieces({{&m.output, out}}, xn.data(), nOut);
  }
  xqSource = nullptr;
  return true;
}

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

extern "C" {

const char *lb_status_code_name(lb_status_code_t code) {
  switch (code) {
  case LB_OK:
    return "ok";
  case LB_ERROR_INVALID_ARGUMENT:
    return "invalid argument";
  case LB_ERROR_IO:
    return "i/o error";
  case LB_ERROR_BAD_ARTIFACT:
    return "bad artifact";
  case LB_ERROR_ABI_MISMATCH:
    return "kernel ABI mismatch";
  case LB_ERROR_UNSUPPORTED:
    return "unsupported";
  case LB_ERROR_OUT_OF_MEMORY:
    return "out of memory";
  case LB_ERROR_CONTEXT_FULL:
    return "context full";
  }
  return "unknown status";
}

void lb_log_set(lb_log_fn fn, void *user) {
  std::lock_guard<std::mutex> lock(logMutex);
  logFn = fn;
  logUser = user;
}

void lb_set_kernel_table(const lb_kernel_entry *table) {
  std::lock_guard<std::mutex> lock(symbolsMutex);
  staticTable = table;
}

lb_status_code_t lb_model_load(const char *dir, lb_model_t **model,
                               lb_status_t *status) {
  if (!dir || !model)
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_model_load: dir and model must not be NULL");
  *model = nullptr;
  try {
    auto m = std::make_unique<lb_model>();
    Failure f{LB_OK, ""};
    if (!m->load(dir, f))
      return report(status, f.code, f.message);
    *model = m.release();
    return ok(status);
  } catch (const std::bad_alloc &) {
    return report(status, LB_ERROR_OUT_OF_MEMORY,
                  std::string(dir) + ": out of memory loading the model");
  } catch (const std::exception &e) {
    return report(status, LB_ERROR_BAD_ARTIFACT,
                  std::string(dir) + ": " + e.what());
  }
}

void lb_model_free(lb_model_t *model) { delete model; }

void lb_model_get_info(const lb_model_t *model, lb_model_info_t *info) {
  if (model && info)
    *info = model->info;
}

const char *lb_model_kernel_report(const lb_model_t *model) {
  return model ? model->report.c_str() : "";
}

lb_context_params_t lb_context_default_params(void) {
  lb_context_params_t p;
  p.n_threads = 0;
  p.n_ctx = 0;
  p.n_batch = 512;
  return p;
}

lb_status_code_t lb_context_create(lb_model_t *model,
                                   const lb_context_params_t *params,
                                   lb_context_t **ctx, lb_status_t *status) {
  if (!model || !ctx)
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_context_create: model and ctx must not be NULL");
  *ctx = nullptr;
  lb_context_params_t p = params ? *params : lb_context_default_params();
  try {
    auto c = std::make_unique<lb_context>();
    Failure f{LB_OK, ""};
    if (!c->create(model, p, f))
      return report(status, f.code, f.message);
    *ctx = c.release();
    return ok(status);
  } catch (const std::bad_alloc &) {
    return report(status, LB_ERROR_OUT_OF_MEMORY,
                  "out of memory creating the context");
  } catch (const std::system_error &e) {
    return report(status, LB_ERROR_OUT_OF_MEMORY,
                  std::string("cannot start the threads: ") + e.what());
  }
}

void lb_context_free(lb_context_t *ctx) { delete ctx; }

int32_t lb_context_n_ctx(const lb_context_t *ctx) {
  return ctx ? static_cast<int32_t>(ctx->ctx) : 0;
}

int32_t lb_context_n_threads(const lb_context_t *ctx) {
  return ctx ? ctx->pool->size() : 0;
}

lb_status_code_t lb_eval(lb_context_t *ctx, const int32_t *tokens,
                         int32_t n_tokens, int32_t pos, int32_t first_output,
                         lb_status_t *status) {
  if (!ctx || (!tokens && n_tokens > 0) || n_tokens < 0 || pos < 0 ||
      first_output < 0 || first_output > n_tokens)
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_eval: invalid arguments (need 0 <= first_output <= "
                  "n_tokens, pos >= 0)");
  const int64_t n = n_tokens;
  if (pos > ctx->cached)
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_eval: position " + std::to_string(pos) +
                      " is past the " + std::to_string(ctx->cached) +
                      " cached tokens");
  if (pos + n > ctx->ctx)
    return report(status, LB_ERROR_CONTEXT_FULL,
                  "context full: " + std::to_string(pos + n) +
                      " tokens, context " + std::to_string(ctx->ctx));
  const int64_t V = ctx->model->manifest.model.vocabSize;
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      return report(status, LB_ERROR_INVALID_ARGUMENT,
                    "token id " + std::to_string(tokens[i]) + " outside the " +
                        std::to_string(V) + "-token vocabulary");
  try {
    ctx->logits.resize(static_cast<size_t>(n - first_output) * V);
  } catch (const std::bad_alloc &) {
    return report(status, LB_ERROR_OUT_OF_MEMORY, "out of memory for logits");
  }
  ctx->logitRows = n - first_output;
  try {
    for (int64_t s = 0; s < n; s += ctx->batch) {
      const int64_t e = std::min(n, s + ctx->batch);
      const int64_t first = std::max<int64_t>(first_output, s);
      float *out = ctx->logits.data() + (first - first_output) * V;
      ctx->evalBatch(tokens + s, e - s, pos + s, std::min(first, e) - s,
                     first < e ? out : nullptr);
      ctx->cached = pos + e;
    }
  } catch (const std::bad_alloc &) {
    ctx->cached = pos; // the cache past pos is in an unknown state
    return report(status, LB_ERROR_OUT_OF_MEMORY, "out of memory in lb_eval");
  }
  if (n == 0)
    ctx->cached = pos;
  return ok(status);
}

const float *lb_get_logits(const lb_context_t *ctx, int32_t *n_rows) {
  if (n_rows)
    *n_rows = ctx ? static_cast<int32_t>(ctx->logitRows) : 0;
  return ctx ? ctx->logits.data() : nullptr;
}

} // extern "C"
