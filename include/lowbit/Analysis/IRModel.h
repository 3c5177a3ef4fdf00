//===- IRModel.h - lowbit IR as a model the executor runs -------*- C++ -*-===//
//
// The reference executor (lowbit/Exec) sees a model as an exec::ModelDesc.
// This adapter fills one from a lowbit module: the hyperparameters and the
// tokenizer's metadata from `lowbit.metadata` (arrays held as
// #lowbit.array_ref are read back from their source file, as the GGUF
// exporter does), the weights from the `lowbit.global_weight` ops wherever
// their bytes are (mapped file or resource blob). Passes that run the model
// (calibration, measured sensitivity) and `lowbit run/eval` on .mlir use it.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ANALYSIS_IRMODEL_H
#define LOWBIT_ANALYSIS_IRMODEL_H

#include "lowbit/Exec/Model.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::lowbit {

/// Fills `out` from `module`. The weights point into memory owned by the
/// module's context (resource blobs) or by the process (mapped files): the
/// module must outlive `out`. False with `err` set (naming the tensor or key)
/// when the module is not a llama-family model the executor can run, a weight
/// is packed for a target, or its data cannot be reached.
bool buildModelDesc(ModuleOp module, ::lowbit::exec::ModelDesc &out,
                    std::string &err);

/// A 64-bit fingerprint of the model's weights: names, shapes and formats of
/// every weight and a sample of its bytes (up to 16 spans of 4 KiB spread over
/// the tensor, so a 100 GB model is fingerprinted in milliseconds). Used to
/// recognise calibration and sensitivity state written for this model.
/// Empty with `err` set when a weight's data cannot be reached.
std::string modelFingerprint(ModuleOp module, std::string &err);

} // namespace mlir::lowbit

#endif // LOWBIT_ANALYSIS_IRMODEL_H
