//===- Analysis.h - Names shared by the analysis passes ---------*- C++ -*-===//
//
// Attribute names and the progress hook of lowbit-calibrate,
// lowbit-sensitivity and lowbit-allocate-bits.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_DIALECT_LOWBIT_TRANSFORMS_ANALYSIS_H
#define LOWBIT_DIALECT_LOWBIT_TRANSFORMS_ANALYSIS_H

#include "llvm/ADT/StringRef.h"

#include <functional>

namespace mlir::lowbit {

/// Module attribute set by lowbit-calibrate: where its statistics went
/// ({state = "...", imatrix = "...", chunks, tokens, ppl, passes}); the
/// default source of statistics for lowbit-sensitivity.
constexpr llvm::StringLiteral kCalibrationAttrName = "lowbit.calibration";
/// Attribute on lowbit.global_weight set by lowbit-sensitivity: the
/// predicted damage of each candidate format ({q4_k = 1.5e-3 : f64, ...}).
constexpr llvm::StringLiteral kSensitivityAttrName = "lowbit.sensitivity";
/// Module attribute set by lowbit-sensitivity: what was measured and how
/// ({measure, computed, reused, seconds, kld_seconds}).
constexpr llvm::StringLiteral kSensitivityReportAttrName =
    "lowbit.sensitivity_report";
/// Module attribute set by lowbit-allocate-bits: the budget and the
/// predicted file ({budget, predicted_bytes, elements, damage, method}).
constexpr llvm::StringLiteral kAllocationAttrName = "lowbit.allocation";

/// Progress of the analysis passes: (step, done, total, item), step being
/// "calibrate", "sample", "sensitivity" or "kld". The driver draws progress
/// bars with it; null by default.
using AnalysisProgressFn = std::function<void(
    llvm::StringRef step, size_t done, size_t total, llvm::StringRef item)>;
void setAnalysisProgressCallback(AnalysisProgressFn fn);
void reportAnalysisProgress(llvm::StringRef step, size_t done, size_t total,
                            llvm::StringRef item = "");

} // namespace mlir::lowbit

#endif // LOWBIT_DIALECT_LOWBIT_TRANSFORMS_ANALYSIS_H
