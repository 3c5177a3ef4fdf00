//===- Codegen.h - Native matmul kernels for a model ------------*- C++ -*-===//
//
// The code-generation half of a native artifact: for every distinct
// (format, rows, cols, layout) that `lowbit.matmul` uses in a module, a
// kernel with the lb_matmul_kernel_fn ABI (lowbit/Target/KernelABI.h) and the
// activation quantizers they need (lb_quantize_act_fn), generated through
// MLIR (convert-lowbit-to-kernels, then the standard lowering to the LLVM
// dialect), LLVM's O3 pipeline and llvm::TargetMachine, all in-process, and
// linked into a shared object with lld (in-process).
//
// The module is not modified. Weights whose format has no kernel on the
// target are listed in KernelManifest::fallbacks (the runtime decodes them
// to f32 and says so); the caller should report them loudly.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_CODEGEN_CODEGEN_H
#define LOWBIT_CODEGEN_CODEGEN_H

#include "lowbit/Formats/Formats.h"
#include "lowbit/Target/TargetTable.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace lowbit::codegen {

/// One weight tensor that a generated kernel multiplies.
struct KernelInfo {
  std::string weight; ///< `lowbit.global_weight` symbol (the tensor name).
  formats::Format format;
  int64_t rows = 0, cols = 0;
  /// Interleaved rows of the layout the kernel reads (1 = plain GGML rows).
  uint32_t interleaveRows = 1;
  std::string kernelSymbol;    ///< lb_matmul_kernel_fn.
  std::string quantizerSymbol; ///< lb_quantize_act_fn; empty for float kernels.
  /// Block format of xq (bytes per token: rowBytes(info(activation), cols));
  /// F32 when the kernel takes no quantized activations.
  formats::Format activation;
  std::string dotPath; ///< The target's instruction path ("avx2-maddubs"...).
};

/// A weight used by a matmul for which the target has no kernel.
struct FallbackInfo {
  std::string weight;
  formats::Format format;
  int64_t rows = 0, cols = 0;
  std::string reason;
};

struct KernelManifest {
  std::string target; ///< TargetInfo::name the code was generated for.
  int32_t abiVersion = 0;
  /// One entry per weight tensor (several may share one kernel symbol).
  std::vector<KernelInfo> kernels;
  std::vector<FallbackInfo> fallbacks;
  /// The symbol for `weight`, or null.
  const KernelInfo *find(const std::string &weight) const;
};

enum class EmitKind {
  SharedObject, ///< ELF shared object (dlopen).
  Object,       ///< Relocatable object (static linking, e.g. aarch64/qemu).
  Assembly,     ///< Target assembly text (debugging, lit tests).
  LLVMIR,       ///< Optimised LLVM IR text.
};

struct CodegenOptions {
  EmitKind kind = EmitKind::SharedObject;
  /// LLVM IR optimisation level of the module pipeline (0-3).
  unsigned optLevel = 3;
  /// DT_SONAME of a shared object; empty: the output's file name. (Writers
  /// that link to a temporary name give the final one, so the bytes do not
  /// depend on the temporary's.)
  std::string soname;
};

/// Generates, optimises and links the kernels of `module` for `target` into
/// the shared object `soPath`. Fills `out` (also on partial fall-back).
/// Returns false with `err` set when code cannot be generated.
bool emitNativeKernels(mlir::ModuleOp module, const target::TargetInfo &target,
                       const std::string &soPath, KernelManifest &out,
                       std::string &err);

/// Like emitNativeKernels, writing `options.kind` to `path` ("-" = stdout
/// for the text kinds).
bool emitKernels(mlir::ModuleOp module, const target::TargetInfo &target,
                 const CodegenOptions &options, const std::string &path,
                 KernelManifest &out, std::string &err);

/// Parses "so", "obj", "asm", "llvm" into `kind`; false when unknown.
bool parseEmitKind(const std::string &name, EmitKind &kind);

} // namespace lowbit::codegen

#endif // LOWBIT_CODEGEN_CODEGEN_H
