//===- GGUFExport.h - lowbit dialect -> GGUF file ---------------*- C++ -*-===//
#ifndef LOWBIT_EXPORT_GGUFEXPORT_H
#define LOWBIT_EXPORT_GGUFEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::lowbit {

/// Writes the module's metadata (lowbit.metadata, in order) and its weights
/// (lowbit.global_weight ops, in module order) as a GGUF file. The file is
/// written to a temporary name and renamed when complete. Fails with a
/// diagnostic on the offending op.
LogicalResult exportGGUF(ModuleOp module, const std::string &path);

} // namespace mlir::lowbit

#endif // LOWBIT_EXPORT_GGUFEXPORT_H
