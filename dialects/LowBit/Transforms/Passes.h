//===- Passes.h - lowbit transformation passes ------------------*- C++ -*-===//
#ifndef LOWBIT_DIALECT_LOWBIT_TRANSFORMS_PASSES_H
#define LOWBIT_DIALECT_LOWBIT_TRANSFORMS_PASSES_H

#include "LowBit/IR/LowBit.h"
#include "mlir/Pass/Pass.h"

#include <functional>

namespace mlir::lowbit {

/// Attribute on lowbit.global_weight: the format lowbit-quantize encodes to.
constexpr llvm::StringLiteral kTargetFormatAttrName = "lowbit.target";
/// Attribute set by lowbit-quantize: relative RMS error ||w - q|| / ||w||.
constexpr llvm::StringLiteral kQuantErrorAttrName = "lowbit.quant_error";
/// Set by lowbit-quantize with method=gptq: "gptq", or "rtn" where a weight
/// has no Hessian; and the output error on calibration data relative to RTN.
constexpr llvm::StringLiteral kQuantMethodAttrName = "lowbit.quant_method";
constexpr llvm::StringLiteral kGPTQErrorRatioAttrName =
    "lowbit.gptq_error_ratio";
/// Set by lowbit-awq-scale on a weight whose columns it multiplied: the
/// scales (f32 resource, one per column) and the chosen exponent alpha.
constexpr llvm::StringLiteral kAWQScaledAttrName = "lowbit.awq_scaled";
constexpr llvm::StringLiteral kAWQAlphaAttrName = "lowbit.awq_alpha";

#define GEN_PASS_DECL
#include "LowBit/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "LowBit/Transforms/Passes.h.inc"

/// Progress of lowbit-quantize: (tensors done, tensors in all, name). The
/// driver draws a progress bar with it; null by default.
using QuantizeProgressFn =
    std::function<void(size_t done, size_t total, llvm::StringRef name)>;
void setQuantizeProgressCallback(QuantizeProgressFn fn);

} // namespace mlir::lowbit

#endif // LOWBIT_DIALECT_LOWBIT_TRANSFORMS_PASSES_H
