//===- KernelsToLLVM.cpp - Lowering the kernels to the LLVM dialect -------===//
//
// lowbit-kernels-to-llvm: lowbit-isolate-kernels, then the standard lowering
// (TOOLCHAIN.md: scf -> cf, vector/memref/arith/math/func/cf -> llvm,
// reconcile-unrealized-casts), then lowbit-emit-kernel-table.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Conversion/Passes.h"

#include "lowbit/Target/KernelABI.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::lowbit {

#define GEN_PASS_DEF_LOWBITEMITKERNELTABLE
#include "LowBit/Conversion/Passes.h.inc"

namespace {

struct LowBitEmitKernelTablePass
    : impl::LowBitEmitKernelTableBase<LowBitEmitKernelTablePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    SmallVector<LLVM::LLVMFuncOp> entries;
    for (auto fn : module.getOps<LLVM::LLVMFuncOp>())
      if (fn->hasAttr(kKernelEntryAttrName))
        entries.push_back(fn);
    if (module.lookupSymbol(LB_KERNEL_TABLE_SYMBOL))
      return;

    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    Location loc = module.getLoc();
    auto ptr = LLVM::LLVMPointerType::get(ctx);
    auto entryType = LLVM::LLVMStructType::getLiteral(ctx, {ptr, ptr});
    auto tableType = LLVM::LLVMArrayType::get(entryType, entries.size() + 1);

    // One private constant string per name.
    SmallVector<std::string> nameSymbols;
    for (auto fn : entries) {
      std::string sym = ("lb_kernel_name." + fn.getName()).str();
      std::string text = fn.getName().str();
      text.push_back('\0');
      auto type =
          LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), text.size());
      LLVM::GlobalOp::create(b, loc, type, /*isConstant=*/true,
                             LLVM::Linkage::Private, sym,
                             b.getStringAttr(text));
      nameSymbols.push_back(sym);
    }

    auto table = LLVM::GlobalOp::create(b, loc, tableType, /*isConstant=*/true,
                                        LLVM::Linkage::External,
                                        LB_KERNEL_TABLE_SYMBOL, Attribute());
    Block *init = b.createBlock(&table.getInitializerRegion());
    b.setInsertionPointToStart(init);
    Value array = LLVM::UndefOp::create(b, loc, tableType);
    for (size_t i = 0; i <= entries.size(); ++i) {
      Value name, fn;
      if (i < entries.size()) {
        name = LLVM::AddressOfOp::create(b, loc, ptr, nameSymbols[i]);
        fn = LLVM::AddressOfOp::create(b, loc, ptr, entries[i].getName());
      } else {
        name = fn = LLVM::ZeroOp::create(b, loc, ptr);
      }
      Value entry = LLVM::UndefOp::create(b, loc, entryType);
      entry = LLVM::InsertValueOp::create(b, loc, entry, name,
                                          ArrayRef<int64_t>{0});
      entry =
          LLVM::InsertValueOp::create(b, loc, entry, fn, ArrayRef<int64_t>{1});
      array = LLVM::InsertValueOp::create(
          b, loc, array, entry, ArrayRef<int64_t>{static_cast<int64_t>(i)});
    }
    LLVM::ReturnOp::create(b, loc, array);
  }
};

} // namespace

void buildLowBitKernelsToLLVMPipeline(OpPassManager &pm) {
  pm.addPass(createLowBitIsolateKernels());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createLowBitEmitKernelTable());
}

void registerLowBitKernelsToLLVMPipeline() {
  PassPipelineRegistration<>(
      "lowbit-kernels-to-llvm",
      "Lower the kernels of convert-lowbit-to-kernels to the LLVM dialect",
      buildLowBitKernelsToLLVMPipeline);
}

} // namespace mlir::lowbit
