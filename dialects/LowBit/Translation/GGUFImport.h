//===- GGUFImport.h - GGUF file -> lowbit dialect ---------------*- C++ -*-===//
#ifndef LOWBIT_IMPORT_GGUFIMPORT_H
#define LOWBIT_IMPORT_GGUFIMPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir::lowbit {

struct GGUFImportOptions {
  /// Metadata arrays longer than this stay in the source file and are
  /// referenced with #lowbit.array_ref (tokenizer vocabularies), so the IR of
  /// any model prints in kilobytes.
  uint64_t inlineArrayLimit = 64;
  /// Build the model graph (func @forward) for known architectures; when
  /// false, or for an unknown architecture, only weights and metadata.
  bool buildGraph = true;
};

/// Imports `path`. Weights become lowbit.global_weight ops referencing the
/// file's bytes (#lowbit.external); nothing is copied. Errors are emitted as
/// diagnostics located in the file (and name the tensor or key).
OwningOpRef<ModuleOp> importGGUF(MLIRContext *context, const std::string &path,
                                 const GGUFImportOptions &options = {});

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORT_GGUFIMPORT_H
