//===- ONNXExport.h - lowbit dialect -> ONNX file ---------------*- C++ -*-===//
#ifndef LOWBIT_EXPORT_ONNXEXPORT_H
#define LOWBIT_EXPORT_ONNXEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>

namespace mlir::lowbit {

struct ONNXExportOptions {
  /// Tensors of at least this many bytes go to the external data file
  /// ("<path>.data") even if the source kept them inline; tensors the source
  /// kept in external data always do.
  uint64_t externalDataThreshold = UINT64_MAX;
};

/// Writes func.func @forward (lowbit.onnx.node ops, lowbit.onnx.initializer
/// tensors) as an ONNX model at `path`, and its external data, if any, at
/// "<path>.data". Both are written to temporary names and renamed when
/// complete. Fails with a diagnostic on the op that has no ONNX form.
LogicalResult exportONNX(ModuleOp module, const std::string &path,
                         const ONNXExportOptions &options = {});

} // namespace mlir::lowbit

#endif // LOWBIT_EXPORT_ONNXEXPORT_H
