//===- ONNXRunner.h - Run an imported ONNX graph ----------------*- C++ -*-===//
//
// The reference executor for ONNX graphs: interprets func.func @forward of a
// module ONNXImport made (lowbit.onnx.node ops, and lowbit.matmul over stored
// weights once lowbit-convert-onnx ran) op by op with lib/ONNX's kernels.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_ONNXRUNNER_H
#define LOWBIT_EXEC_ONNXRUNNER_H

#include "lowbit/ONNX/Kernels.h"

#include "mlir/IR/BuiltinOps.h"

#include <functional>
#include <vector>

namespace mlir::lowbit {

class GlobalWeightOp;

/// Called with each lowbit.matmul's weight and input (rows of the
/// reduction dimension), e.g. to accumulate calibration statistics.
using MatmulObserver =
    std::function<void(GlobalWeightOp weight, const ::lowbit::onnxrt::Tensor &)>;

/// Runs @forward on `inputs` (one per argument, in order); the results in
/// order, or failure after a diagnostic on the op at fault.
FailureOr<std::vector<::lowbit::onnxrt::Tensor>>
runONNXGraph(ModuleOp module, ArrayRef<::lowbit::onnxrt::Tensor> inputs,
             const MatmulObserver &observe = nullptr);

} // namespace mlir::lowbit

#endif // LOWBIT_EXEC_ONNXRUNNER_H
