//===- ONNXImport.h - ONNX file -> lowbit dialect ---------------*- C++ -*-===//
#ifndef LOWBIT_IMPORT_ONNXIMPORT_H
#define LOWBIT_IMPORT_ONNXIMPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir {
class Type;
} // namespace mlir

namespace mlir::lowbit {

/// Imports the ONNX model at `path` node for node: func.func @forward takes
/// the graph's inputs and returns its outputs, every node becomes a
/// lowbit.onnx.node (subgraphs as its regions), every tensor a
/// lowbit.onnx.initializer whose bytes stay in the model's files
/// (#lowbit.external, mmap'ed when used). Errors are diagnostics located in
/// the file that name the offset, node or tensor.
OwningOpRef<ModuleOp> importONNX(MLIRContext *context,
                                 const std::string &path);

/// The element type of ONNX TensorProto data type `dataType` (f32, i8, ui8,
/// i1 for BOOL, i4/ui4, f8 types, complex<f32>, ...); null for types lowbit
/// cannot hold (STRING, UNDEFINED).
Type getONNXElementType(MLIRContext *context, int32_t dataType);
/// The inverse: ONNX's data type of `type`, or 0 (UNDEFINED).
int32_t getONNXDataType(Type type);

} // namespace mlir::lowbit

#endif // LOWBIT_IMPORT_ONNXIMPORT_H
