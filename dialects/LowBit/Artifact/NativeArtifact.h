//===- NativeArtifact.h - Write a native artifact for the runtime -*- C++ -*-===//
//
// `lowbit compile --emit native`: a quantized llama module becomes a
// directory the runtime (runtime/) loads:
//
//   model.so       the generated matmul kernels (model.o for targets whose
//                  runtime links statically, e.g. aarch64 under qemu)
//   weights.bin    every weight, packed as its kernel expects, 64-byte aligned
//   manifest.json  hyperparameters and per tensor: format, shape, layout,
//                  offset/size, kernel and quantizer (lowbit/runtime/Manifest.h)
//   metadata.gguf  the GGUF metadata (tokenizer keys) without tensors
//
// Every file is written under a temporary name and renamed at the end, the
// manifest last, so a reader never sees a manifest without its files.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ARTIFACT_NATIVEARTIFACT_H
#define LOWBIT_ARTIFACT_NATIVEARTIFACT_H

#include "lowbit/Target/TargetTable.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace mlir::lowbit {

/// The passes between quantization and code generation:
/// lowbit-fuse-qkv, lowbit-fuse-gate-up, lowbit-fuse-swiglu and
/// lowbit-pack-weights{target}. (lowbit-fuse-norm-quant and
/// lowbit-fuse-residual rewrite lowbit.matmul into ops the kernel generator
/// does not take yet; the runtime does both fusions itself.)
void buildNativePreparationPipeline(OpPassManager &pm,
                                    const std::string &target);

struct NativeArtifactSummary {
  std::string codeFile;
  uint64_t weightBytes = 0;
  int kernelTensors = 0;
  /// "name (format): reason" of every matmul weight left to the runtime's
  /// slow decode-to-f32 path.
  std::vector<std::string> fallbacks;
};

/// Writes the artifact for `module` (quantized, prepared by the pipeline
/// above for `target`) into `dir`, creating it. Fails with a diagnostic on
/// the module; nothing is left behind in `dir` on failure.
LogicalResult exportNativeArtifact(ModuleOp module,
                                   const ::lowbit::target::TargetInfo &target,
                                   const std::string &dir,
                                   NativeArtifactSummary *summary = nullptr);

} // namespace mlir::lowbit

#endif // LOWBIT_ARTIFACT_NATIVEARTIFACT_H
