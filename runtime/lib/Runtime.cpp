//===- Runtime.cpp - The lowbit native runtime ----------------------------===//
//
// Loads an artifact (manifest.json, weights.bin mmap'ed, model.so dlopen'ed
// or a generated object registered by a static program), checks it, and
// calls the program generated from the module's @forward (`lb_forward`,
// KernelABI.h) with the op library of lib/Exec: it holds no graph and knows
// no architecture. The runtime owns the threads, the KV cache and the
// activation buffers (exec::ExecState, sized by the program's plan). A
// matmul whose weight has a generated kernel goes through it (KernelBackend
// below): activations are quantized once per distinct quantizer and input,
// then the weight rows are split across the threads in multiples of the
// layout's interleave. A weight without a kernel runs on the executor's
// decode-to-f32 matmul and is reported.
//
// The C API never lets an exception out: allocation failures and the like
// become status codes.
//
//===----------------------------------------------------------------------===//

#include "lowbit/runtime.h"

#include "lowbit/Exec/Executor.h"
#include "lowbit/Exec/Program.h"
#include "lowbit/Exec/Ops.h"
#include "lowbit/Exec/ThreadPool.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Support/Sha256.h"
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
  std::vector<uint8_t> unpacked; // plain rows for the fall-back, if packed
  bool usedAsMatmul = false;
  /// Routed experts of a moe_ffn: multiplied one expert's rows at a time.
  bool expertMatmul = false;
  std::string fallbackWhy;
};

/// A weight the graph names: a whole tensor or rows [rowOffset, rowOffset +
/// rows) of a fused one (a "part" in the manifest).
struct Piece {
  Tensor *tensor = nullptr;
  int64_t rowOffset = 0;
  int64_t rows = 0;
  bool whole() const { return rowOffset == 0 && rows == tensor->rows; }
};

} // namespace

struct lb_model {
  std::string dir;
  Manifest manifest;
  std::shared_ptr<MappedFile> weights; // weights.bin, read-only
  void *library = nullptr;
  std::vector<std::unique_ptr<Tensor>> tensors;
  /// Every name the program may use: tensors and the parts of fused ones.
  std::map<std::string, Piece> pieces;
  /// The generated program and what the run-time state needs of it (the
  /// weights it names, in plain layout where they are read row by row).
  const lb_program *program = nullptr;
  std::map<std::string, exec::WeightRef> weightRefs;
  exec::ProgramShape shape;
  std::string report;
  lb_model_info_t info{};
  bool verify = false;

  ~lb_model() {
#ifndef LOWBIT_RUNTIME_NO_DLOPEN
    if (library)
      dlclose(library);
#endif
  }

  bool load(const std::string &path, const lb_model_params_t &params,
            Failure &f);

private:
  bool fail(Failure &f, lb_status_code_t code, const std::string &msg) {
    f = {code, msg};
    return false;
  }
  bool resolveSymbols(Failure &f);
  bool checkProgram(const std::string &where, Failure &f);
  bool checkFileSize(const std::string &path, uint64_t expected, Failure &f);
  bool verifyHash(const std::string &path, const uint8_t *data, size_t size,
                  const std::string &expected, Failure &f);
  void *symbol(const std::string &name);
  bool bind(Failure &f);
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

// Before a file is mapped or loaded: a truncated weights.bin would fault on
// first touch (SIGBUS), a truncated model.so inside dlopen.
bool lb_model::checkFileSize(const std::string &path, uint64_t expected,
                             Failure &f) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return fail(f, LB_ERROR_IO, path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return fail(f, LB_ERROR_BAD_ARTIFACT, path + ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size != expected)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                path + ": has " + std::to_string(size) +
                    " bytes but the manifest says " + std::to_string(expected) +
                    " bytes" + (size < expected ? " (truncated)" : "") +
                    "; recompile the model");
  return true;
}

bool lb_model::verifyHash(const std::string &path, const uint8_t *data,
                          size_t size, const std::string &expected,
                          Failure &f) {
  const std::string actual = sha256Hex(data, size);
  if (actual != expected)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                path + ": content differs from the manifest (SHA-256 " +
                    actual + ", expected " + expected +
                    "): the file is damaged; recompile the model");
  return true;
}

bool lb_model::load(const std::string &path, const lb_model_params_t &params,
                    Failure &f) {
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
  if (!readWholeFile(manifestPath, text, err))
    return fail(f, LB_ERROR_IO, err);
  if (!runtime::parseManifest(text, manifest, err))
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                manifestPath + ": " + err +
                    (text.find("\"version\": 1,") != std::string::npos
                         ? " (an artifact of an older lowbit: recompile the "
                           "model)"
                         : ""));
  if (manifest.abiVersion != LB_KERNEL_ABI_VERSION)
    return fail(f, LB_ERROR_ABI_MISMATCH,
                manifestPath + ": built for kernel ABI version " +
                    std::to_string(manifest.abiVersion) +
                    ", this runtime implements version " +
                    std::to_string(LB_KERNEL_ABI_VERSION) +
                    "; recompile the model");

  const std::string weightsPath = dir + "/" + manifest.weightsFile;
  if (!checkFileSize(weightsPath, manifest.weightsSize, f))
    return false;
  weights = MappedFile::open(weightsPath, err);
  if (!weights)
    return fail(f, LB_ERROR_IO, err);
  // The file may have changed between stat and mmap.
  if (weights->size() != manifest.weightsSize)
    return checkFileSize(weightsPath, manifest.weightsSize, f);
  if (params.verify && !verifyHash(weightsPath, weights->data(),
                                   weights->size(), manifest.weightsSha256, f))
    return false;
  verify = params.verify != 0;

  for (const ManifestTensor &mt : manifest.tensors) {
    auto t = std::make_unique<Tensor>();
    t->m = &mt;
    t->format = formats::findByName(mt.format)->format;
    t->rows = mt.rows();
    t->cols = mt.cols();
    t->interleave = mt.interleave;
    t->data = weights->data() + mt.offset;
    t->actRowBytes = mt.activationRowBytes;
    pieces[mt.name] = Piece{t.get(), 0, t->rows};
    int64_t offset = 0;
    for (const runtime::TensorPart &part : mt.parts) {
      if (pieces.count(part.name))
        return fail(f, LB_ERROR_BAD_ARTIFACT,
                    "manifest: weight " + part.name + " is listed twice");
      pieces[part.name] = Piece{t.get(), offset, part.rows};
      offset += part.rows;
    }
    tensors.push_back(std::move(t));
  }
  if (!resolveSymbols(f) || !bind(f))
    return false;

  // Report and counts.
  info.name = manifest.model.name.c_str();
  info.architecture = manifest.model.architecture.c_str();
  info.target = manifest.target.c_str();
  const runtime::ModelInfo &g = manifest.model;
  info.n_vocab = g.vocab;
  info.n_ctx_train = g.context;
  info.n_embd = g.embedding;
  info.n_layer = g.layers;
  info.n_head = g.heads;
  info.n_head_kv = g.kvHeads;
  info.n_ff = g.feedForward;
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
  bool useStatic;
  {
    std::lock_guard<std::mutex> lock(symbolsMutex);
    useStatic = staticTable != nullptr;
  }
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
      t->rowUnit = std::lcm<int64_t>(
          std::lcm<int64_t>(t->interleave, std::max<int64_t>(1, c->rowTile)),
          target::kPromptGroupRows);
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
    if (!checkFileSize(codePath, manifest.codeSize, f))
      return false;
    if (verify) {
      std::string err;
      std::shared_ptr<MappedFile> code = MappedFile::open(codePath, err);
      if (!code)
        return fail(f, LB_ERROR_IO, err);
      if (!verifyHash(codePath, code->data(), code->size(), manifest.codeSha256,
                      f))
        return false;
    }
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
  auto getProgram =
      reinterpret_cast<lb_get_program_fn>(symbol(LB_GET_PROGRAM_SYMBOL));
  if (!getProgram)
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                where + ": no " LB_GET_PROGRAM_SYMBOL " symbol (the model's "
                        "program); recompile the model");
  program = getProgram();
  if (!checkProgram(where, f))
    return false;
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

// The program's plan, before anything runs it: the code is the compiler's,
// but a damaged or foreign object must give an error, not a crash.
bool lb_model::checkProgram(const std::string &where, Failure &f) {
  auto bad = [&](const std::string &what) {
    return fail(f, LB_ERROR_BAD_ARTIFACT,
                where + ": the program " + what + "; recompile the model");
  };
  const lb_program *p = program;
  if (!p)
    return bad("is missing");
  if (p->abi_version != LB_KERNEL_ABI_VERSION)
    return fail(f, LB_ERROR_ABI_MISMATCH,
                where + ": program built for ABI version " +
                    std::to_string(p->abi_version) +
                    ", this runtime implements " +
                    std::to_string(LB_KERNEL_ABI_VERSION));
  if (p->num_values <= 0 || p->num_buffers <= 0 || p->num_weights < 0 ||
      !p->value_width || !p->value_buffer || !p->buffer_width || !p->forward ||
      (p->num_weights > 0 &&
       (!p->weight_names || !p->weight_use || !p->weight_shape)))
    return bad("has no values, buffers or entry");
  if (p->result < 0 || p->result >= p->num_values)
    return bad("names logits value " + std::to_string(p->result) + " of " +
               std::to_string(p->num_values));
  constexpr int64_t kMostWidth = int64_t(1) << 32;
  for (int32_t v = 0; v < p->num_values; ++v) {
    const int32_t b = p->value_buffer[v];
    const int64_t w = p->value_width[v];
    if (w < 0 || w > kMostWidth || b < 0 || b >= p->num_buffers ||
        p->buffer_width[b] < w)
      return bad("puts value " + std::to_string(v) + " (width " +
                 std::to_string(w) + ") in buffer " + std::to_string(b) +
                 ", which cannot hold it");
  }
  if (p->cache_layers < 0 || p->cache_context < 0 || p->cache_kv_heads < 0 ||
      p->cache_head_dim < 0 || p->max_attention_heads < 0 ||
      (p->max_attention_heads > 0 &&
       (p->cache_kv_heads == 0 ||
        p->max_attention_heads % p->cache_kv_heads != 0)))
    return bad("has an invalid KV cache shape");
  shape = exec::ProgramShape();
  shape.valueWidth.assign(p->value_width, p->value_width + p->num_values);
  shape.bufferOf.assign(p->value_buffer, p->value_buffer + p->num_values);
  shape.bufferWidth.assign(p->buffer_width, p->buffer_width + p->num_buffers);
  shape.result = p->result;
  shape.resultInHead = p->result_in_head != 0;
  shape.cache = {p->cache_layers, p->cache_context, p->cache_kv_heads,
                 p->cache_head_dim};
  shape.maxAttentionHeads = p->max_attention_heads;
  for (int32_t j = 0; j < p->num_weights; ++j) {
    if (!p->weight_names[j])
      return bad("has a weight without a name");
    shape.weightNames.push_back(p->weight_names[j]);
  }
  return true;
}

// Every weight the program names resolves to a tensor or a part of a fused
// one. Matmul weights without a kernel are decoded by the op library from
// plain rows (unpacked once if the layout is packed); packed weights with
// kernels and packed embedding tables are read through KernelBackend.
bool lb_model::bind(Failure &f) {
  for (size_t j = 0; j < shape.weightNames.size(); ++j) {
    const std::string &name = shape.weightNames[j];
    auto it = pieces.find(name);
    if (it == pieces.end())
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  "manifest: the program uses weight " + name +
                      ", which is neither a tensor nor a part of one");
    Tensor &t = *it->second.tensor;
    const int64_t rows = program->weight_shape[2 * j],
                  cols = program->weight_shape[2 * j + 1];
    if (rows != it->second.rows || cols != t.cols)
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  "manifest: " + name + " is " +
                      std::to_string(it->second.rows) + "x" +
                      std::to_string(t.cols) + " but the program reads it as " +
                      std::to_string(rows) + "x" + std::to_string(cols) +
                      "; recompile the model");
    const uint32_t use = static_cast<uint32_t>(program->weight_use[j]);
    const bool routedExperts = (use & LB_WEIGHT_EXPERTS) != 0;
    if ((use & LB_WEIGHT_MATMUL) || (routedExperts && it->second.whole())) {
      t.usedAsMatmul = true;
      t.expertMatmul |= routedExperts;
    } else if (!it->second.whole() && t.interleave != 1)
      return fail(f, LB_ERROR_BAD_ARTIFACT,
                  "manifest: " + name +
                      " is part of a packed tensor but not a matmul weight");
  }
  for (const auto &t : tensors) {
    if (!t->usedAsMatmul || t->kernel)
      continue;
    t->fallbackWhy = t->m->note.empty()
                         ? "(no kernel for " + t->m->format + " on " +
                               manifest.target + ")"
                         : "(" + t->m->note + ")";
    if (!formats::hasCodec(t->format))
      return fail(f, LB_ERROR_UNSUPPORTED,
                  "manifest: " + t->m->name + " has format " + t->m->format +
                      ", which has neither a kernel nor a decoder");
    std::string line = t->m->name + " (" + t->m->format + ", " +
                       std::to_string(t->rows) + "x" + std::to_string(t->cols) +
                       ") has no native kernel: running the slow "
                       "decode-to-f32 fall-back " +
                       t->fallbackWhy;
    if (t->interleave != 1) {
      // The fall-back decodes plain GGML rows: unpack once.
      try {
        t->unpacked.resize(t->m->size);
      } catch (const std::bad_alloc &) {
        return fail(f, LB_ERROR_OUT_OF_MEMORY,
                    "out of memory unpacking " + t->m->name);
      }
      formats::unpackRows(t->format, t->data, t->unpacked.data(), t->rows,
                          t->cols, t->interleave);
      line += "; unpacked from its " + std::to_string(t->interleave) +
              "-row layout";
    }
    logLine(LB_LOG_WARNING, line);
  }
  for (const auto &[name, piece] : pieces) {
    const Tensor &t = *piece.tensor;
    exec::WeightRef w;
    w.format = t.format;
    w.rows = piece.rows;
    w.cols = t.cols;
    w.rowBytes = formats::rowBytes(formats::info(t.format),
                                   static_cast<uint64_t>(t.cols));
    // Plain rows: the tensor's own, or its unpacked copy. (A packed tensor
    // with a kernel is only read through the kernel and decodeRow.)
    const uint8_t *plain = t.unpacked.empty() ? t.data : t.unpacked.data();
    w.data = plain + static_cast<uint64_t>(piece.rowOffset) * w.rowBytes;
    weightRefs[name] = w;
  }
  for (const std::string &name : shape.weightNames)
    shape.weights.push_back(&weightRefs.at(name));
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

/// The generated kernels, as the executor's matmul backend. One per context
/// (it owns the quantized-input and fused-output buffers).
class KernelBackend : public exec::MatmulBackend {
public:
  KernelBackend(lb_model &model, int64_t batch) : model_(model) {
    int64_t widest = 0;
    uint64_t actBytes = 0;
    for (const auto &t : model.tensors)
      if (t->usedAsMatmul) {
        // Only fused tensors use fused_ (never an expert stack).
        if (!t->expertMatmul)
          widest = std::max(widest, t->rows);
        actBytes = std::max<uint64_t>(actBytes, t->actRowBytes);
      }
    fused_.resize(batch * widest);
    xq_.resize(batch * actBytes + 64);
  }

  int bind(const std::string &weight) override {
    auto it = model_.pieces.find(weight);
    if (it == model_.pieces.end() || !it->second.tensor->kernel)
      return -1;
    bound_.push_back(it->second);
    return static_cast<int>(bound_.size() - 1);
  }

  void matmul(int handle, const float *x, int64_t rows, float *y,
              uint64_t inputKey, exec::ThreadPool &pool) override {
    const Piece &piece = bound_[handle];
    const Tensor &t = *piece.tensor;
    if (piece.whole()) {
      run(t, x, rows, y, t.rows, inputKey, pool);
      return;
    }
    // A part of a fused tensor: the whole product once per input, then the
    // part's columns.
    if (fusedTensor_ != &t || fusedKey_ != inputKey) {
      run(t, x, rows, fused_.data(), t.rows, inputKey, pool);
      fusedTensor_ = &t;
      fusedKey_ = inputKey;
    }
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(y + r * piece.rows,
                  fused_.data() + r * t.rows + piece.rowOffset,
                  piece.rows * sizeof(float));
  }

  void matmulRows(int handle, int64_t firstRow, int64_t count,
                  const float *x, int64_t rows, float *y, uint64_t inputKey,
                  exec::ThreadPool &pool) override {
    const Tensor &t = *bound_[handle].tensor;
    run(t, x, rows, y, count, inputKey, pool, firstRow, count);
  }

  bool decodesRows(const std::string &weight) override {
    auto it = model_.pieces.find(weight);
    return it != model_.pieces.end() && it->second.whole() &&
           it->second.tensor->interleave != 1 &&
           it->second.tensor->unpacked.empty();
  }
  void decodeRow(const std::string &weight, int64_t row, float *dst) override {
    const Tensor &t = *model_.pieces.at(weight).tensor;
    const formats::FormatInfo &fi = formats::info(t.format);
    for (int64_t b = 0; b < t.cols / fi.blockSize; ++b)
      formats::dequantizeRow(
          t.format,
          t.data + formats::packedBlockOffset(t.format, t.cols, t.interleave,
                                              row, b),
          dst + b * fi.blockSize, fi.blockSize);
  }

private:
  void quantizeInput(const Tensor &t, const float *in, int64_t n,
                     uint64_t inputKey, exec::ThreadPool &pool) {
    if (xqKey_ == inputKey && xqQuantizer_ == t.quantize)
      return; // matmuls reading one input share its quantized form
    const int64_t K = t.cols;
    const uint64_t rb = t.actRowBytes;
    // Rows are independent: split tokens across threads for prompts.
    const int64_t per =
        std::max<int64_t>(1, (n + pool.size() - 1) / pool.size());
    const int64_t tasks = (n + per - 1) / per;
    pool.run(
        tasks,
        [&](int64_t task, int) {
          const int64_t r0 = task * per, r1 = std::min(n, r0 + per);
          t.quantize(in + r0 * K, xq_.data() + r0 * rb, r1 - r0, K, K);
        },
        /*parallel=*/n * K >= exec::ops::kMinParallelWork / 4);
    xqKey_ = inputKey;
    xqQuantizer_ = t.quantize;
  }

  /// y[n, rowCount] (row stride yStride) = in * W[firstRow, +rowCount)^T;
  /// rowCount < 0: every row. A row range starts on a row-group boundary of
  /// the layout (an expert's rows), where the packed bytes of the rows
  /// before it are exactly firstRow plain rows' worth.
  void run(const Tensor &t, const float *in, int64_t n, float *y,
           int64_t yStride, uint64_t inputKey, exec::ThreadPool &pool,
           int64_t firstRow = 0, int64_t rowCount = -1) {
    const void *act = nullptr;
    if (t.quantize) {
      quantizeInput(t, in, n, inputKey, pool);
      act = xq_.data();
    }
    const int64_t N = rowCount < 0 ? t.rows : rowCount, K = t.cols;
    // Row ranges in multiples of the row unit, about four per thread so
    // uneven threads still balance; at least 16 rows so the per-call
    // overhead stays small.
    const int64_t unit = t.rowUnit;
    const int64_t want = std::max<int64_t>(1, 4 * pool.size());
    int64_t chunk = std::max<int64_t>(16, (N + want - 1) / want);
    chunk = (chunk + unit - 1) / unit * unit;
    const int64_t tasks = (N + chunk - 1) / chunk;
    lb_matmul_kernel_fn kernel = t.kernel;
    const void *w =
        t.data + static_cast<uint64_t>(firstRow) *
                     formats::rowBytes(formats::info(t.format),
                                       static_cast<uint64_t>(K));
    pool.run(
        tasks,
        [&](int64_t task, int) {
          const int64_t r0 = task * chunk, r1 = std::min(N, r0 + chunk);
          kernel(w, in, act, y, n, K, yStride, r0, r1);
        },
        /*parallel=*/n * N * K >= exec::ops::kMinParallelWork);
  }

  lb_model &model_;
  std::vector<Piece> bound_;
  Buffer fused_;
  ByteBuffer xq_;
  const Tensor *fusedTensor_ = nullptr;
  uint64_t fusedKey_ = ~uint64_t(0), xqKey_ = ~uint64_t(0);
  lb_quantize_act_fn xqQuantizer_ = nullptr;
};
} // namespace

struct lb_context {
  lb_model *model = nullptr;
  /// Threads, activation buffers and KV cache of one sequence.
  std::unique_ptr<exec::ExecState> state;
  int64_t ctx = 0, batch = 0;
  std::vector<float> logits;
  int64_t logitRows = 0;

  bool create(lb_model *m, const lb_context_params_t &params, Failure &f);
};

bool lb_context::create(lb_model *m, const lb_context_params_t &params,
                        Failure &f) {
  model = m;
  ctx = params.n_ctx > 0 ? params.n_ctx : m->shape.cache.context;
  if (ctx <= 0) {
    f = {LB_ERROR_INVALID_ARGUMENT,
         "the model has no training context length: set n_ctx"};
    return false;
  }
  batch = std::max<int64_t>(
      1, std::min<int64_t>(params.n_batch > 0 ? params.n_batch : 512, ctx));
  exec::ExecOptions options;
  options.threads = params.n_threads;
  options.contextSize = ctx;
  options.batchSize = batch;
  try {
    options.backend = std::make_shared<KernelBackend>(*m, batch);
  } catch (const std::bad_alloc &) {
    f = {LB_ERROR_OUT_OF_MEMORY, "out of memory allocating the activation "
                                 "buffers; use a smaller batch or context"};
    return false;
  }
  std::string err;
  state = exec::ExecState::create(m->shape, options, err);
  if (!state) {
    f = {err.find("memory") != std::string::npos ? LB_ERROR_OUT_OF_MEMORY
                                                 : LB_ERROR_BAD_ARTIFACT,
         err};
    return false;
  }
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

lb_model_params_t lb_model_default_params(void) {
  lb_model_params_t p;
  p.verify = 0;
  return p;
}

lb_status_code_t lb_model_load(const char *dir, lb_model_t **model,
                               lb_status_t *status) {
  return lb_model_load_with_params(dir, nullptr, model, status);
}

lb_status_code_t lb_model_load_with_params(const char *dir,
                                           const lb_model_params_t *params,
                                           lb_model_t **model,
                                           lb_status_t *status) {
  if (!dir || !model)
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_model_load: dir and model must not be NULL");
  *model = nullptr;
  const lb_model_params_t p = params ? *params : lb_model_default_params();
  try {
    auto m = std::make_unique<lb_model>();
    Failure f{LB_OK, ""};
    if (!m->load(dir, p, f))
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
  return ctx ? ctx->state->pool().size() : 0;
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
  exec::ExecState &ex = *ctx->state;
  if (pos > ex.cachedTokens())
    return report(status, LB_ERROR_INVALID_ARGUMENT,
                  "lb_eval: position " + std::to_string(pos) +
                      " is past the " + std::to_string(ex.cachedTokens()) +
                      " cached tokens");
  if (pos + n > ctx->ctx)
    return report(status, LB_ERROR_CONTEXT_FULL,
                  "context full: " + std::to_string(pos + n) +
                      " tokens, context " + std::to_string(ctx->ctx));
  const int64_t V = ex.vocabSize();
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      return report(status, LB_ERROR_INVALID_ARGUMENT,
                    "token id " + std::to_string(tokens[i]) + " outside the " +
                        std::to_string(V) + "-token vocabulary");
  ctx->logitRows = 0;
  try {
    std::string err;
    // The generated program: one op-library call per op of @forward.
    const lb_program *program = ctx->model->program;
    const lb_runtime_api *api = &exec::opLibrary();
    if (!ex.eval(tokens, n, pos, ctx->logits, first_output, err,
                 [&] { program->forward(ex.handle(), api); }))
      return report(status, LB_ERROR_INVALID_ARGUMENT, "lb_eval: " + err);
  } catch (const std::bad_alloc &) {
    // The cache past pos is in an unknown state.
    ex.setCached(std::min(ex.cachedTokens(), static_cast<int64_t>(pos)));
    return report(status, LB_ERROR_OUT_OF_MEMORY, "out of memory in lb_eval");
  }
  ctx->logitRows = n - first_output;
  return ok(status);
}

const float *lb_get_logits(const lb_context_t *ctx, int32_t *n_rows) {
  if (n_rows)
    *n_rows = ctx ? static_cast<int32_t>(ctx->logitRows) : 0;
  return ctx ? ctx->logits.data() : nullptr;
}

} // extern "C"
