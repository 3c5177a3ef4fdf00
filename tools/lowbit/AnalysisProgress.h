//===- AnalysisProgress.h - Progress bars of analysis passes ----*- C++ -*-===//
#ifndef LOWBIT_TOOLS_ANALYSISPROGRESS_H
#define LOWBIT_TOOLS_ANALYSISPROGRESS_H

#include "Progress.h"

#include "LowBit/Transforms/Analysis.h"

#include <memory>
#include <string>

namespace lowbit::driver {

/// Draws one progress bar per analysis step (calibrate, sample, sensitivity,
/// kld), each finished when the next step starts.
class AnalysisProgress {
public:
  explicit AnalysisProgress(bool enabled) : enabled_(enabled) {
    mlir::lowbit::setAnalysisProgressCallback([this](llvm::StringRef step,
                                                     size_t done, size_t total,
                                                     llvm::StringRef item) {
      if (step != step_) {
        bar_.reset();
        step_ = step.str();
        bar_ = std::make_unique<cli::ProgressBar>(labelFor(step_), enabled_);
      }
      bar_->update(done, total, item.str());
    });
  }
  ~AnalysisProgress() {
    mlir::lowbit::setAnalysisProgressCallback(nullptr);
    bar_.reset();
  }

private:
  static std::string labelFor(const std::string &step) {
    if (step == "calibrate")
      return "calibrating ";
    if (step == "sample")
      return "sampling    ";
    if (step == "kld")
      return "measuring   ";
    return "sensitivity ";
  }
  bool enabled_;
  std::string step_;
  std::unique_ptr<cli::ProgressBar> bar_;
};

} // namespace lowbit::driver

#endif // LOWBIT_TOOLS_ANALYSISPROGRESS_H
