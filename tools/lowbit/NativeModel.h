//===- NativeModel.h - Native artifacts in the driver -----------*- C++ -*-===//
#ifndef LOWBIT_TOOLS_NATIVEMODEL_H
#define LOWBIT_TOOLS_NATIVEMODEL_H

#include "lowbit/Target/TargetTable.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace lowbit::driver {

/// `lowbit compile --emit native`: runs the preparation passes (fusions,
/// packing for `target`) on the quantized module and writes the artifact
/// directory, then reports the kernels and, loudly, the fall-backs.
mlir::LogicalResult writeNativeArtifact(mlir::ModuleOp module,
                                        const target::TargetInfo &target,
                                        const std::string &dir, bool report);

} // namespace lowbit::driver

#endif // LOWBIT_TOOLS_NATIVEMODEL_H
