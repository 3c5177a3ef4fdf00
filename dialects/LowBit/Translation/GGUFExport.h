//===- GGUFExport.h - lowbit dialect -> GGUF file ---------------*- C++ -*-===//
#ifndef LOWBIT_EXPORT_GGUFEXPORT_H
#define LOWBIT_EXPORT_GGUFEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace lowbit::gguf {
struct KeyValue;
} // namespace lowbit::gguf

namespace mlir::lowbit {

/// Writes the module's metadata (lowbit.metadata, in order) and its weights
/// (lowbit.global_weight ops, in module order) as a GGUF file. The file is
/// written to a temporary name and renamed when complete. Fails with a
/// diagnostic on the offending op.
LogicalResult exportGGUF(ModuleOp module, const std::string &path);

/// The module's metadata (lowbit.metadata) as the GGUF key/values exportGGUF
/// writes, in order; #lowbit.array_ref arrays are read back from their file.
LogicalResult collectGGUFMetadata(ModuleOp module,
                                  std::vector<::lowbit::gguf::KeyValue> &out);

/// The size of the file exportGGUF would write, without writing it: the
/// writer's layout is deterministic (llama.cpp's), so
///   file bytes = alignUp(headerBytes) + sum over tensors alignUp(bytes).
struct GGUFLayout {
  /// Header, key/values and tensor infos, before the padding.
  uint64_t headerBytes = 0;
  uint64_t alignment = 32;
  uint64_t tensorCount = 0;
  uint64_t alignUp(uint64_t bytes) const {
    return (bytes + alignment - 1) / alignment * alignment;
  }
  /// Where the tensor data starts.
  uint64_t dataOffset() const { return alignUp(headerBytes); }
};
FailureOr<GGUFLayout> computeGGUFLayout(ModuleOp module);

} // namespace mlir::lowbit

#endif // LOWBIT_EXPORT_GGUFEXPORT_H
