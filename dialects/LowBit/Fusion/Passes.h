//===- Passes.h - lowbit fusion and packing passes --------------*- C++ -*-===//
#ifndef LOWBIT_DIALECT_LOWBIT_FUSION_PASSES_H
#define LOWBIT_DIALECT_LOWBIT_FUSION_PASSES_H

#include "LowBit/IR/LowBit.h"
#include "mlir/Pass/Pass.h"

namespace mlir::lowbit {

/// On a global weight made by lowbit-fuse-qkv / lowbit-fuse-gate-up: the
/// names (array of strings) and row counts (array<i64>) of its pieces, in
/// row order.
constexpr llvm::StringLiteral kFusedFromAttrName = "lowbit.fused_from";
constexpr llvm::StringLiteral kFusedRowsAttrName = "lowbit.fused_rows";

#define GEN_PASS_DECL
#include "LowBit/Fusion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "LowBit/Fusion/Passes.h.inc"

} // namespace mlir::lowbit

#endif // LOWBIT_DIALECT_LOWBIT_FUSION_PASSES_H
