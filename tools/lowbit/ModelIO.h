//===- ModelIO.h - Load and save models in the driver -----------*- C++ -*-===//
#ifndef LOWBIT_TOOLS_MODELIO_H
#define LOWBIT_TOOLS_MODELIO_H

#include "CommandLine.h"

#include "LowBit/Translation/ONNXExport.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace lowbit::driver {

/// A context with the lowbit and upstream dialects the driver uses, whose
/// diagnostics print as "error: <file>: <message>" on stderr.
std::unique_ptr<mlir::MLIRContext> makeContext();

/// Whether `path` is an ONNX model (by its name, or its first byte).
bool isONNX(const std::string &path);

/// Loads a model: a GGUF file (detected by its magic) or an ONNX file
/// (isONNX) is imported, anything else is parsed as lowbit IR and verified.
/// Null after a printed error.
mlir::OwningOpRef<mlir::ModuleOp> loadModel(mlir::MLIRContext &context,
                                            const std::string &path);

/// The options of ONNX output (export and compile share them).
void addONNXExportOptions(::lowbit::cli::CommandLine &cl);
bool parseONNXExportOptions(const ::lowbit::cli::CommandLine &cl,
                            mlir::lowbit::ONNXExportOptions &options,
                            std::string &error);
/// False (with `error`) when an ONNX output option is given for another
/// output.
bool checkNoONNXExportOptions(const ::lowbit::cli::CommandLine &cl,
                              std::string &error);

/// Prints `module` to `path` ("-" = stdout) through a temporary file.
bool writeIR(mlir::ModuleOp module, const std::string &path,
             std::string &error);

} // namespace lowbit::driver

#endif // LOWBIT_TOOLS_MODELIO_H
