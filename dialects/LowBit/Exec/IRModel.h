//===- IRModel.h - lowbit IR as a model the executor runs -------*- C++ -*-===//
//
// The reference executor (lowbit/Exec) runs an exec::ModelDesc: a graph of
// ops and the weights it names. This glue translates a module's
// `func.func @forward` into that graph op for op (no architecture is known
// here: the importer's or the user's IR is what runs), the weights from the
// `lowbit.global_weight` ops wherever their bytes are (mapped file or
// resource blob), and the tokenizer's metadata from `lowbit.metadata`.
// Passes that run the model (calibration, measured sensitivity) and
// `lowbit run/eval/bench` use it.
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
/// module must outlive `out`. Fails with a diagnostic located at the op the
/// executor cannot run (an unknown op, a weight computed in the graph or
/// packed for a target, a shape mismatch, a missing @forward).
/// With `allowPackedWeights`, weights packed for a target are accepted and
/// described by their plain shape (for the native artifact's manifest; the
/// executor itself cannot read them). Without `readWeightData` the weights'
/// bytes are not reached (WeightRef::data stays null): the graph and the
/// shapes only, for code generation.
LogicalResult translateModel(ModuleOp module, ::lowbit::exec::ModelDesc &out,
                             bool allowPackedWeights = false,
                             bool readWeightData = true);

/// translateModel with the first error as text in `err`
/// ("<file>:<line>:<col> (<name>): <message>").
bool buildModelDesc(ModuleOp module, ::lowbit::exec::ModelDesc &out,
                    std::string &err);

/// Imports the GGUF file at `path` (lib/Import) and translates its graph: the
/// model `lowbit run/eval` execute for a GGUF file. `out.storage` keeps the
/// module alive.
bool loadGGUFModel(const std::string &path, ::lowbit::exec::ModelDesc &out,
                   std::string &err);

/// A 64-bit fingerprint of the model's weights: names, shapes and formats of
/// every weight and a sample of its bytes (up to 16 spans of 4 KiB spread over
/// the tensor, so a 100 GB model is fingerprinted in milliseconds). Used to
/// recognise calibration and sensitivity state written for this model.
/// Empty with `err` set when a weight's data cannot be reached.
std::string modelFingerprint(ModuleOp module, std::string &err);

} // namespace mlir::lowbit

#endif // LOWBIT_ANALYSIS_IRMODEL_H
