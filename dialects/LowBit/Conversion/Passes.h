//===- Passes.h - lowbit conversion passes ----------------------*- C++ -*-===//
#ifndef LOWBIT_DIALECT_LOWBIT_CONVERSION_PASSES_H
#define LOWBIT_DIALECT_LOWBIT_CONVERSION_PASSES_H

#include "LowBit/IR/LowBit.h"
#include "lowbit/Target/TargetTable.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ArmNeon/ArmNeonDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir {
class RewritePatternSet;
namespace lowbit {

/// On lowbit.matmul: the generated kernel / activation quantizer.
constexpr llvm::StringLiteral kKernelAttrName = "lowbit.kernel";
constexpr llvm::StringLiteral kActQuantizerAttrName = "lowbit.act_quantizer";
/// On lowbit.moe_ffn: the kernels (and activation quantizers) of the routed
/// experts' gate, up and down weights, "" where there is none.
constexpr llvm::StringLiteral kExpertKernelsAttrName = "lowbit.expert_kernels";
constexpr llvm::StringLiteral kExpertActQuantizersAttrName =
    "lowbit.expert_act_quantizers";
/// On lowbit.matmul: no kernel for this weight on the target; the reason.
constexpr llvm::StringLiteral kKernelFallbackAttrName =
    "lowbit.kernel_fallback";
/// On generated functions (unit): part of the kernel object's interface.
constexpr llvm::StringLiteral kKernelEntryAttrName = "lowbit.kernel_entry";
/// On module-level constants the kernels read (i-quant grids): kept with
/// them by lowbit-isolate-kernels.
constexpr llvm::StringLiteral kKernelDataAttrName = "lowbit.kernel_data";
/// On generated kernels: the dot-product path of the target's table.
constexpr llvm::StringLiteral kDotPathAttrName = "lowbit.dot_path";
/// On the module: the TargetInfo name kernels were generated for.
constexpr llvm::StringLiteral kCodegenTargetAttrName = "lowbit.codegen_target";

#define GEN_PASS_DECL
#include "LowBit/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "LowBit/Conversion/Passes.h.inc"

/// Patterns that give every lowbit.matmul whose weight format has a kernel
/// on `target` a generated kernel (created once per distinct weight type in
/// the enclosing module) and the activation quantizer it needs. Matmuls
/// without a kernel fail to match with the reason.
void populateLowBitToKernelsPatterns(
    RewritePatternSet &patterns, const ::lowbit::target::TargetInfo &target);

/// The lowering after convert-lowbit-to-kernels: lowbit-isolate-kernels, the
/// standard scf/vector/memref/arith/math/func/cf -> LLVM dialect lowering,
/// lowbit-emit-kernel-table. The module is then ready for
/// translateModuleToLLVMIR.
void buildLowBitKernelsToLLVMPipeline(OpPassManager &pm);

/// Registers `lowbit-kernels-to-llvm` (the passes themselves:
/// registerLowBitConversionPasses()).
void registerLowBitKernelsToLLVMPipeline();

} // namespace lowbit
} // namespace mlir

#endif // LOWBIT_DIALECT_LOWBIT_CONVERSION_PASSES_H
