//===- PackWeights.cpp - Interleave weights into the target's layout ------===//
//
// The interleave comes from the target's table and nowhere else: the kernel
// generator reads the same table to decide what layout its kernels address,
// and the runtime splits rows in multiples of it. The byte order is
// lowbit/Formats/Layout.h's, shared with both.
//
//===----------------------------------------------------------------------===//

#include "LowBit/Fusion/Passes.h"
#include "lowbit/Formats/Layout.h"
#include "lowbit/Target/TargetTable.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITPACKWEIGHTS
#include "LowBit/Fusion/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;

namespace {

/// True when `use` is the weight operand of a matmul-like op.
bool isMatmulWeight(OpOperand &use) {
  Operation *op = use.getOwner();
  if (auto m = dyn_cast<MatmulOp>(op))
    return &use == &m.getWeightMutable();
  if (auto m = dyn_cast<QMatmulOp>(op))
    return &use == &m.getWeightMutable();
  if (auto m = dyn_cast<MatmulResidualOp>(op))
    return &use == &m.getWeightMutable();
  return false;
}

struct PackWeightsPass : public mlir::lowbit::impl::LowBitPackWeightsBase<PackWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    const ::lowbit::target::TargetInfo *target =
        ::lowbit::target::findTarget(targetName);
    if (!target) {
      module.emitError() << "unknown target '" << targetName << "' (known: "
                         << ::lowbit::target::targetNames() << ")";
      return signalPassFailure();
    }
    // Weight references by global, to check their uses and retype them.
    llvm::StringMap<SmallVector<WeightOp>> refs;
    module.walk([&](WeightOp op) { refs[op.getName()].push_back(op); });
    for (GlobalWeightOp global :
         llvm::make_early_inc_range(module.getOps<GlobalWeightOp>()))
      if (failed(pack(global, refs[global.getSymName()], *target)))
        return signalPassFailure();
  }

  LogicalResult pack(GlobalWeightOp global, ArrayRef<WeightOp> refs,
                     const ::lowbit::target::TargetInfo &target) {
    QTensorType type = global.getWeightType();
    if (type.getLayout() || type.getShape().size() != 2)
      return success();
    bool matmul = false;
    Operation *other = nullptr;
    for (WeightOp ref : refs)
      for (OpOperand &use : ref->getUses()) {
        if (isMatmulWeight(use))
          matmul = true;
        else
          other = use.getOwner();
      }
    if (!matmul)
      return success();
    if (other) {
      global.emitRemark() << "left plain: also read by '"
                          << other->getName() << "'";
      return success();
    }
    formats::Format format = type.getFormat().getFormat();
    const ::lowbit::target::KernelChoice *choice = target.find(format);
    if (!choice) {
      global.emitRemark() << "left plain: " << target.name
                          << " has no kernel for "
                          << type.getFormat().getName()
                          << " (the runtime decodes it to f32)";
      return success();
    }
    const uint32_t n = choice->interleaveRows;
    if (n <= 1)
      return success();
    if (type.getNumRows() % n != 0) {
      global.emitRemark() << "left plain: " << type.getNumRows()
                          << " rows are not a multiple of the " << n
                          << "-row interleave of " << target.name;
      return success();
    }
    std::string error;
    const uint8_t *src = getWeightBytes(global, error);
    if (!src)
      return global.emitOpError() << "cannot read its data: " << error;
    MLIRContext *context = global.getContext();
    const uint64_t bytes = type.getByteSize();
    AsmResourceBlob blob =
        HeapAsmResourceBlob::allocate(bytes, alignof(uint64_t));
    if (!formats::packRows(format, src, blob.getMutableData().data(),
                           type.getNumRows(), type.getRowLength(), n))
      return global.emitOpError() << "cannot interleave by " << n;
    auto packed = QTensorType::get(context, type.getShape(), type.getFormat(),
                                   LayoutAttr::get(context, n));
    auto blobType = RankedTensorType::get({static_cast<int64_t>(bytes)},
                                          IntegerType::get(context, 8));
    global.setTypeAttr(TypeAttr::get(packed));
    global.setDataAttr(DenseResourceElementsAttr::get(
        blobType, (global.getSymName() + ".packed").str(), std::move(blob)));
    for (WeightOp ref : refs)
      ref.getResult().setType(packed);
    return success();
  }
};

} // namespace
