//===- NativeArtifact.cpp - Write a native artifact for the runtime -------===//

#include "LowBit/Artifact/NativeArtifact.h"

#include "LowBit/Codegen/Codegen.h"
#include "LowBit/Exec/IRModel.h"
#include "LowBit/Fusion/Passes.h"
#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/GGUFExport.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Support/Sha256.h"
#include "lowbit/Support/TemporaryFiles.h"
#include "lowbit/Target/KernelABI.h"
#include "lowbit/runtime/Manifest.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <unistd.h>

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;
namespace runtime = ::lowbit::runtime;

void mlir::lowbit::buildNativePreparationPipeline(OpPassManager &pm,
                                                  const std::string &target) {
  pm.addPass(createLowBitFuseQKV());
  pm.addPass(createLowBitFuseGateUp());
  pm.addPass(createLowBitFuseSwiGLU());
  LowBitPackWeightsOptions pack;
  pack.targetName = target;
  pm.addPass(createLowBitPackWeights(pack));
}

namespace {

/// Temporary files of the artifact, removed unless committed (also when the
/// process is interrupted), and the artifact directory when this run created
/// it and leaves it empty.
class PendingFiles {
public:
  explicit PendingFiles(std::string dir, bool createdDir)
      : dir_(std::move(dir)), createdDir_(createdDir) {
    // Left by a run that was killed (kill -9) while writing here.
    ::lowbit::removeStaleTemporaries(dir_, ".");
    if (createdDir_)
      ::lowbit::registerTemporary(dir_, /*directory=*/true);
  }
  ~PendingFiles() {
    for (auto &[tmp, final] : files_) {
      std::remove(tmp.c_str());
      ::lowbit::unregisterTemporary(tmp);
    }
    if (createdDir_ && !committed_) {
      ::rmdir(dir_.c_str()); // only if empty
      ::lowbit::unregisterTemporary(dir_);
    }
  }
  /// A temporary path in the artifact directory for `name`.
  std::string add(const std::string &name) {
    std::string tmp = ::lowbit::temporaryPathFor(dir_ + "/." + name);
    ::lowbit::registerTemporary(tmp);
    files_.push_back({tmp, dir_ + "/" + name});
    return tmp;
  }
  /// Renames every file in order (the manifest was added last). An
  /// interruption waits until all are in place and the directory is no
  /// longer this run's to remove: it sees no artifact or a complete one.
  bool commit(std::string &err) {
    ::lowbit::DeferInterrupts defer;
    for (auto &[tmp, final] : files_) {
      if (std::rename(tmp.c_str(), final.c_str()) != 0) {
        err = final + ": cannot rename into place";
        return false;
      }
      ::lowbit::unregisterTemporary(tmp);
    }
    files_.clear();
    committed_ = true;
    if (createdDir_)
      ::lowbit::unregisterTemporary(dir_);
    return true;
  }

private:
  std::string dir_;
  bool createdDir_ = false, committed_ = false;
  std::vector<std::pair<std::string, std::string>> files_;
};

} // namespace

LogicalResult mlir::lowbit::exportNativeArtifact(
    ModuleOp module, const ::lowbit::target::TargetInfo &target,
    const std::string &dir, NativeArtifactSummary *summary) {
  auto fail = [&](const Twine &msg) {
    return module.emitError() << dir << ": " << msg;
  };
  // The directory is this run's to remove from the moment it exists: a
  // signal between creating and registering it would leave it behind empty.
  std::optional<PendingFiles> pending;
  {
    ::lowbit::DeferInterrupts defer;
    std::error_code ec;
    const bool createdDir = std::filesystem::create_directories(dir, ec);
    if (ec)
      return fail("cannot create the artifact directory: " + ec.message());
    pending.emplace(dir, createdDir);
  }
  PendingFiles &files = *pending;

  std::vector<::lowbit::gguf::KeyValue> metadata;
  if (failed(collectGGUFMetadata(module, metadata)))
    return failure();
  llvm::StringMap<const uint8_t *> bytes;
  for (GlobalWeightOp g : module.getOps<GlobalWeightOp>()) {
    std::string error;
    const uint8_t *data = getWeightBytes(g, error);
    if (!data)
      return g.emitOpError() << "cannot read its data: " << error;
    bytes[g.getSymName()] = data;
  }
  std::string error;

  runtime::Manifest manifest;
  manifest.abiVersion = LB_KERNEL_ABI_VERSION;
  manifest.target = target.name;
  manifest.triple = target.triple;
  // What the graph says about the model, for reports (the program itself
  // is generated into the code by lowbit-generate-entry).
  ::lowbit::exec::ModelDesc desc;
  if (failed(translateModel(module, desc, /*allowPackedWeights=*/true)))
    return failure();
  runtime::ModelInfo &info = manifest.model;
  info.architecture = desc.architecture;
  info.name = desc.name;
  const ::lowbit::exec::GraphSummary shape =
      ::lowbit::exec::summarize(desc.graph);
  info.vocab = shape.vocab;
  info.context = shape.context;
  info.embedding = shape.embedding;
  info.layers = shape.layers;
  info.heads = shape.heads;
  info.kvHeads = shape.kvHeads;
  info.headDim = shape.headDim;
  info.feedForward = shape.feedForward;

  // Kernels. Targets whose runtime is linked statically (aarch64 under
  // qemu) get a relocatable object with lb_kernel_table instead of a
  // shared object.
  const bool staticCode = target.isa == ::lowbit::target::ISA::AArch64Neon;
  manifest.codeFile = staticCode ? "model.o" : "model.so";
  ::lowbit::codegen::KernelManifest kernels;
  {
    ::lowbit::codegen::CodegenOptions options;
    options.kind = staticCode ? ::lowbit::codegen::EmitKind::Object
                              : ::lowbit::codegen::EmitKind::SharedObject;
    options.soname = manifest.codeFile;
    std::string codeTmp = files.add(manifest.codeFile);
    if (!::lowbit::codegen::emitKernels(module, target, options, codeTmp,
                                        kernels, error))
      return fail("code generation for " + std::string(target.name) +
                  " failed: " + error);
    // Size and content hash, checked by the runtime before it loads the
    // code (size always, hash with --verify).
    std::shared_ptr<::lowbit::MappedFile> code =
        ::lowbit::MappedFile::open(codeTmp, error);
    if (!code)
      return fail(error);
    manifest.codeSize = code->size();
    manifest.codeSha256 = ::lowbit::sha256Hex(code->data(), code->size());
  }

  // weights.bin, in module order.
  std::string weightsTmp = files.add("weights.bin");
  ::lowbit::AtomicFileWriter weights(weightsTmp);
  if (!weights.open(error))
    return fail(error);
  uint64_t offset = 0;
  ::lowbit::Sha256 weightsHash;
  auto writeWeights = [&](const void *data, uint64_t size) {
    weightsHash.update(data, size);
    return weights.write(data, size, error);
  };
  static const uint8_t zeros[LB_WEIGHT_ALIGNMENT] = {};
  for (GlobalWeightOp g : module.getOps<GlobalWeightOp>()) {
    QTensorType type = g.getWeightType();
    const uint64_t pad = (LB_WEIGHT_ALIGNMENT - offset % LB_WEIGHT_ALIGNMENT) %
                         LB_WEIGHT_ALIGNMENT;
    if (pad && !writeWeights(zeros, pad))
      return fail(error);
    offset += pad;
    runtime::ManifestTensor t;
    t.name = g.getSymName().str();
    t.format = type.getFormat().getName().str();
    t.shape.assign(type.getShape().begin(), type.getShape().end());
    t.interleave = type.getLayout() ? type.getLayout().getRows() : 1;
    t.offset = offset;
    t.size = type.getByteSize();
    if (!writeWeights(bytes[g.getSymName()], t.size))
      return fail(error);
    offset += t.size;
    if (auto names = g->getAttrOfType<ArrayAttr>(kFusedFromAttrName)) {
      auto rows = g->getAttrOfType<DenseI64ArrayAttr>(kFusedRowsAttrName);
      for (auto [name, r] : llvm::zip(names, rows.asArrayRef()))
        t.parts.push_back({cast<StringAttr>(name).str(), r});
    }
    if (const ::lowbit::codegen::KernelInfo *k = kernels.find(t.name)) {
      if (k->interleaveRows != t.interleave)
        return g.emitOpError()
               << "is packed by " << t.interleave << " rows but its kernel "
               << k->kernelSymbol << " reads " << k->interleaveRows;
      t.kernel = k->kernelSymbol;
      t.quantizer = k->quantizerSymbol;
      if (!t.quantizer.empty())
        t.activationRowBytes =
            formats::rowBytes(formats::info(k->activation), t.shape.back());
      if (summary)
        ++summary->kernelTensors;
    }
    for (const ::lowbit::codegen::FallbackInfo &f : kernels.fallbacks)
      if (f.weight == t.name) {
        t.note = f.reason;
        if (summary)
          summary->fallbacks.push_back(t.name + " (" + t.format + "): " +
                                       f.reason);
      }
    manifest.tensors.push_back(std::move(t));
  }
  manifest.weightsSize = offset;
  manifest.weightsSha256 = weightsHash.finishHex();
  if (!weights.commit(error)) // into its temporary name; renamed below
    return fail(error);

  // metadata.gguf: the keys without tensors (the tokenizer reads it).
  {
    ::lowbit::gguf::Writer writer;
    for (const ::lowbit::gguf::KeyValue &kv : metadata)
      writer.set(kv.key, kv.value);
    ::lowbit::gguf::Error gerr;
    manifest.metadataFile = "metadata.gguf";
    if (!writer.write(files.add(manifest.metadataFile), gerr))
      return fail(gerr.message());
  }

  // The manifest last.
  {
    std::string text = runtime::writeManifest(manifest);
    ::lowbit::AtomicFileWriter out(files.add(runtime::kManifestFile));
    if (!out.open(error) || !out.write(text.data(), text.size(), error) ||
        !out.commit(error))
      return fail(error);
  }
  if (!files.commit(error))
    return fail(error);
  if (summary) {
    summary->codeFile = manifest.codeFile;
    summary->weightBytes = offset;
  }
  return success();
}
