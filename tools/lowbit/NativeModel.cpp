//===- NativeModel.cpp - Native artifacts in the driver -------------------===//
//
// Writing an artifact (compile --emit native) and running one through the
// runtime's C API behind exec::Evaluator, so that run, eval and bench treat
// artifact directories like model files.
//
//===----------------------------------------------------------------------===//

#include "ModelLoading.h"
#include "NativeModel.h"

#include "LowBit/Artifact/NativeArtifact.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Target/TargetTable.h"
#include "lowbit/runtime.h"
#include "lowbit/runtime/Manifest.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace lowbit::driver {

mlir::LogicalResult writeNativeArtifact(mlir::ModuleOp module,
                                        const target::TargetInfo &target,
                                        const std::string &dir, bool report) {
  mlir::PassManager pm(module.getContext());
  mlir::lowbit::buildNativePreparationPipeline(pm, target.name);
  if (mlir::failed(pm.run(module)))
    return mlir::failure();
  mlir::lowbit::NativeArtifactSummary summary;
  if (mlir::failed(
          mlir::lowbit::exportNativeArtifact(module, target, dir, &summary)))
    return mlir::failure();
  for (const std::string &f : summary.fallbacks)
    llvm::errs() << "warning: no " << target.name
                 << " kernel, the runtime will decode to f32 (slow): " << f
                 << "\n";
  if (report)
    llvm::errs() << dir << ": " << summary.codeFile << " ("
                 << summary.kernelTensors << " weights with kernels for "
                 << target.name << ", " << summary.fallbacks.size()
                 << " on the fall-back), weights.bin (" << summary.weightBytes
                 << " bytes), manifest.json, metadata.gguf\n";
  return mlir::success();
}

bool isNativeArtifact(const std::string &path) {
  // A directory can only be an artifact; loading says what is missing.
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool loadNativeArtifact(const std::string &dir, ExecutableModel &out,
                        std::string &err) {
  const std::string manifestPath = dir + "/" + runtime::kManifestFile;
  std::string text;
  if (!readWholeFile(manifestPath, text, err)) {
    err += " (a native artifact directory, from lowbit compile --emit native, "
           "has one)";
    return false;
  }
  runtime::Manifest m;
  std::string why;
  if (!runtime::parseManifest(text, m, why)) {
    err = manifestPath + ": " + why;
    return false;
  }
  exec::ModelDesc &d = out.desc;
  d.architecture = m.model.architecture;
  d.name = m.model.name;
  d.vocabSize = m.model.vocab;
  d.contextLength = m.model.context;
  if (m.metadataFile.empty()) {
    err = manifestPath + ": no metadata file (the tokenizer lives there)";
    return false;
  }
  gguf::Error gerr;
  auto reader = gguf::Reader::open(dir + "/" + m.metadataFile, gerr);
  if (!reader) {
    err = gerr.message();
    return false;
  }
  d.metadata = reader->metadata();
  out.tokenizer = Tokenizer::create(d.metadata, why);
  if (!out.tokenizer) {
    err = dir + "/" + m.metadataFile + ": " + why;
    return false;
  }
  if (out.tokenizer->vocabSize() != d.vocabSize) {
    err = dir + ": the tokenizer has " +
          std::to_string(out.tokenizer->vocabSize()) +
          " tokens but the model " + std::to_string(d.vocabSize);
    return false;
  }
  out.nativeDir = dir;
  return true;
}

namespace {

/// The native runtime as an exec::Evaluator.
class NativeEvaluator : public exec::Evaluator {
public:
  ~NativeEvaluator() override {
    lb_context_free(ctx_);
    lb_model_free(model_);
  }
  bool open(const std::string &dir, bool verify, const exec::ExecOptions &opts,
            std::string &err) {
    lb_status_t st;
    lb_model_params_t mp = lb_model_default_params();
    mp.verify = verify;
    if (lb_model_load_with_params(dir.c_str(), &mp, &model_, &st) != LB_OK) {
      err = st.message;
      return false;
    }
    lb_context_params_t p = lb_context_default_params();
    p.n_threads = opts.threads;
    p.n_ctx = static_cast<int32_t>(opts.contextSize);
    p.n_batch = static_cast<int32_t>(opts.batchSize);
    if (lb_context_create(model_, &p, &ctx_, &st) != LB_OK) {
      err = dir + ": " + st.message;
      return false;
    }
    lb_model_info_t info;
    lb_model_get_info(model_, &info);
    vocab_ = info.n_vocab;
    return true;
  }
  bool eval(const int32_t *tokens, int64_t n, int64_t pos,
            std::vector<float> &logits, int64_t firstOutput,
            std::string &err) override {
    lb_status_t st;
    if (lb_eval(ctx_, tokens, static_cast<int32_t>(n),
                static_cast<int32_t>(pos), static_cast<int32_t>(firstOutput),
                &st) != LB_OK) {
      err = st.message;
      return false;
    }
    int32_t rows = 0;
    const float *l = lb_get_logits(ctx_, &rows);
    logits.assign(l, l + static_cast<size_t>(rows) * vocab_);
    return true;
  }
  // Position 0 starts a new sequence in the runtime.
  void reset() override {}
  int64_t vocabSize() const override { return vocab_; }
  int64_t contextSize() const override { return lb_context_n_ctx(ctx_); }
  int threads() const override { return lb_context_n_threads(ctx_); }
  // The runtime's pool is private to its context; callers' per-row work
  // (log-softmax of logits) is small next to a forward pass.
  void parallelFor(int64_t count,
                   const std::function<void(int64_t, int)> &fn) override {
    for (int64_t i = 0; i < count; ++i)
      fn(i, 0);
  }

private:
  lb_model_t *model_ = nullptr;
  lb_context_t *ctx_ = nullptr;
  int64_t vocab_ = 0;
};

} // namespace

const char *const kVerifyHelp =
    "For a native artifact: compare the SHA-256 of model.so and weights.bin\n"
    "with the manifest's before running (reads every byte: 0.7 s per GiB\n"
    "with the x86 SHA extensions, 4 s without; sizes are always checked).\n"
    "An artifact is machine code: run only artifacts you trust like an\n"
    "executable.";

const char *const kActivationsHelp =
    "Matmul inputs of the reference executor: f32 (default), or a target\n"
    "(host, x86-64-v3, x86-64-v4, aarch64) to round them through the 8-bit\n"
    "blocks that target's native kernels use (Q8_0 / Q8_K, like llama.cpp's\n"
    "CPU backend): the executor then computes what an artifact computes.";

bool parseActivationMode(const std::string &mode, exec::ExecOptions &opts,
                         std::string &err) {
  if (mode.empty() || mode == "f32") {
    opts.activationFormat = nullptr;
    return true;
  }
  const target::TargetInfo *target = target::findTarget(mode);
  if (!target) {
    err = "--activations: unknown mode '" + mode + "' (f32 or a target: " +
          target::targetNames() + ")";
    return false;
  }
  opts.activationFormat = [target](formats::Format weight) {
    const target::KernelChoice *choice = target->find(weight);
    return choice ? choice->activation : formats::Format::F32;
  };
  return true;
}

std::unique_ptr<exec::Evaluator> createEvaluator(const ExecutableModel &model,
                                                 const exec::ExecOptions &opts,
                                                 std::string &err) {
  if (model.nativeDir.empty())
    return exec::Executor::create(model.desc, opts, err);
  if (opts.activationFormat) {
    err = "--activations applies to the reference executor (a GGUF or IR "
          "model); an artifact's kernels quantize activations themselves";
    return nullptr;
  }
  auto native = std::make_unique<NativeEvaluator>();
  if (!native->open(model.nativeDir, model.verifyArtifact, opts, err))
    return nullptr;
  return native;
}

} // namespace lowbit::driver
