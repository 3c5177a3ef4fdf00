//===- ONNXExport.h - lowbit dialect -> ONNX file ---------------*- C++ -*-===//
#ifndef LOWBIT_EXPORT_ONNXEXPORT_H
#define LOWBIT_EXPORT_ONNXEXPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>

namespace mlir::lowbit {

/// How quantized matmul weights are written.
enum class ONNXWeightStyle {
  /// com.microsoft MatMulNBits: every format with an affine form.
  MatMulNBits,
  /// DequantizeLinear (opset 21, blocked) feeding MatMul: the formats with
  /// integer zero points, 4 and 8 bits; ONNX Runtime fuses the pair.
  QDQ,
};

struct ONNXExportOptions {
  ONNXWeightStyle weightStyle = ONNXWeightStyle::MatMulNBits;
  /// Tensors of at least this many bytes go to the external data file
  /// ("<path>.data") even if the source kept them inline; tensors the source
  /// kept in external data always do.
  uint64_t externalDataThreshold = UINT64_MAX;
  /// Quantized matmul weights are written as f32 MatMul initializers
  /// (decoded by the codec library) instead of MatMulNBits: the same
  /// function, readable by any ONNX runtime.
  bool dequantizeWeights = false;
  /// MatMulNBits' accuracy_level attribute (ONNX Runtime: 0 unset, 1 fp32,
  /// 2 fp16, 3 bf16, 4 int8 activations); -1 leaves it out.
  int64_t accuracyLevel = -1;
};

/// Writes func.func @forward (lowbit.onnx.node ops, lowbit.onnx.initializer
/// tensors, and lowbit.matmul over stored weights, as MatMul or
/// com.microsoft MatMulNBits) as an ONNX model at `path`, and its external data, if any, at
/// "<path>.data". Both are written to temporary names and renamed when
/// complete. Fails with a diagnostic on the op that has no ONNX form.
LogicalResult exportONNX(ModuleOp module, const std::string &path,
                         const ONNXExportOptions &options = {});

} // namespace mlir::lowbit

#endif // LOWBIT_EXPORT_ONNXEXPORT_H
