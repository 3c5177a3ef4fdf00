//===- FuseNormQuant.cpp - RMSNorm + activation quantization --------------===//
//
// Quantized kernels consume activations in a block format (q8_0, q8_k). The
// norm before the q/k/v or gate/up projections is the last op to touch those
// activations in f32, so it quantizes them as it writes them, once for all
// the matmuls that read them.
//
//===----------------------------------------------------------------------===//

#include "LowBit/Fusion/Passes.h"
#include "lowbit/Target/TargetTable.h"

#include "mlir/IR/Builders.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITFUSENORMQUANT
#include "LowBit/Fusion/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;

namespace {

struct FuseNormQuantPass
    : public mlir::lowbit::impl::LowBitFuseNormQuantBase<FuseNormQuantPass> {
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
    SmallVector<RMSNormOp> norms;
    module.walk([&](RMSNormOp op) { norms.push_back(op); });
    for (RMSNormOp norm : norms)
      fuse(norm, *target);
  }

  /// The activation format `op`'s kernel consumes, or nullopt when it takes
  /// f32 (float weights, no kernel on the target).
  std::optional<formats::Format>
  activationFormat(MatmulOp op, const ::lowbit::target::TargetInfo &target) {
    auto weight = dyn_cast<QTensorType>(op.getWeight().getType());
    if (!weight || op.getBias())
      return std::nullopt;
    const ::lowbit::target::KernelChoice *choice =
        target.find(weight.getFormat().getFormat());
    if (!choice || choice->activation == formats::Format::F32)
      return std::nullopt;
    return choice->activation;
  }

  void fuse(RMSNormOp norm, const ::lowbit::target::TargetInfo &target) {
    if (norm.getGroup())
      return; // per-head norms (q/k) feed RoPE, not matmuls
    SmallVector<MatmulOp> consumers;
    std::optional<formats::Format> act;
    for (Operation *user : norm->getUsers()) {
      auto matmul = dyn_cast<MatmulOp>(user);
      if (!matmul || matmul.getInput() != norm.getResult())
        continue;
      std::optional<formats::Format> f = activationFormat(matmul, target);
      if (!f)
        continue;
      if (act && *act != *f) {
        StringRef a = formats::info(*act).name, b = formats::info(*f).name;
        norm.emitRemark()
            << "not fused with activation quantization: its matmuls need "
            << std::min(a, b) << " and " << std::max(a, b)
            << " activations on " << target.name;
        return;
      }
      act = f;
      consumers.push_back(matmul);
    }
    if (consumers.empty())
      return;
    MLIRContext *context = norm.getContext();
    auto format = FormatAttr::get(context, *act);
    RankedTensorType type = norm.getResult().getType();
    int64_t width = type.getShape().back();
    if (ShapedType::isDynamic(width) || width % format.getBlockSize() != 0) {
      norm.emitRemark() << "not fused with activation quantization: rows of "
                        << width << " do not fill " << format.getName()
                        << " blocks";
      return;
    }
    auto quantizedType = RankedTensorType::get(
        {type.getShape()[0], static_cast<int64_t>(format.getByteSize(1, width))},
        IntegerType::get(context, 8));
    OpBuilder builder(norm);
    auto fused = RMSNormQuantOp::create(
        builder, norm.getLoc(), type, quantizedType, norm.getInput(),
        norm.getWeight(), norm.getEpsilonAttr(), format);
    for (MatmulOp matmul : consumers) {
      builder.setInsertionPoint(matmul);
      auto q = QMatmulOp::create(builder, matmul.getLoc(), matmul.getType(),
                                 fused.getQuantized(), matmul.getWeight(),
                                 format);
      matmul.replaceAllUsesWith(q.getResult());
      matmul.erase();
    }
    norm.replaceAllUsesWith(fused.getResult());
    norm.erase();
  }
};

} // namespace
