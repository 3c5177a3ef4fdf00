//===- lowbit-opt.cpp - Run lowbit and upstream passes on textual IR ------===//
#include "LowBit/Conversion/Passes.h"
#include "LowBit/IR/LowBit.h"
#include "LowBit/Fusion/Passes.h"
#include "LowBit/Transforms/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::lowbit::registerLowBitPasses();
  mlir::lowbit::registerLowBitFusionPasses();
  mlir::lowbit::registerLowBitConversionPasses();
  mlir::lowbit::registerLowBitKernelsToLLVMPipeline();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  registry.insert<mlir::lowbit::LowBitDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "lowbit pass driver\n", registry));
}
