//===- FuseElementwise.cpp - SwiGLU and residual fusions ------------------===//
//
// Both remove a full write and read of an activation tensor: silu(gate) is
// never stored before the multiply, and a matmul's update is added to the
// residual stream as it is produced instead of being stored and re-read by
// lowbit.add.
//
//===----------------------------------------------------------------------===//

#include "LowBit/Fusion/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITFUSESWIGLU
#define GEN_PASS_DEF_LOWBITFUSERESIDUAL
#include "LowBit/Fusion/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// mul(silu(g), u) | mul(u, silu(g)) -> swiglu(g, u).
struct SiLUMulToSwiGLU : public OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp op,
                                PatternRewriter &rewriter) const override {
    for (auto [a, b] : {std::pair(op.getLhs(), op.getRhs()),
                        std::pair(op.getRhs(), op.getLhs())}) {
      auto silu = a.getDefiningOp<SiLUOp>();
      if (!silu)
        continue;
      if (!silu->hasOneUse())
        return rewriter.notifyMatchFailure(
            op, "the silu has other users and would be computed twice");
      rewriter.replaceOpWithNewOp<SwiGLUOp>(op, op.getType(), silu.getInput(),
                                            b);
      rewriter.eraseOp(silu);
      return success();
    }
    return rewriter.notifyMatchFailure(op, "no operand is a lowbit.silu");
  }
};

/// add(r, matmul(x, w)) | add(matmul(x, w), r) -> matmul_residual(x, w, r).
struct AddOfMatmulToResidual : public OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp op,
                                PatternRewriter &rewriter) const override {
    for (auto [a, r] : {std::pair(op.getLhs(), op.getRhs()),
                        std::pair(op.getRhs(), op.getLhs())}) {
      auto matmul = a.getDefiningOp<MatmulOp>();
      if (!matmul)
        continue;
      if (matmul.getBias())
        return rewriter.notifyMatchFailure(op, "the matmul has a bias");
      if (!matmul->hasOneUse())
        return rewriter.notifyMatchFailure(
            op, "the matmul's result has other users");
      rewriter.replaceOpWithNewOp<MatmulResidualOp>(
          op, op.getType(), matmul.getInput(), matmul.getWeight(), r);
      rewriter.eraseOp(matmul);
      return success();
    }
    return rewriter.notifyMatchFailure(op, "no operand is a lowbit.matmul");
  }
};

struct FuseSwiGLUPass : public mlir::lowbit::impl::LowBitFuseSwiGLUBase<FuseSwiGLUPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SiLUMulToSwiGLU>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

struct FuseResidualPass
    : public mlir::lowbit::impl::LowBitFuseResidualBase<FuseResidualPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<AddOfMatmulToResidual>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
