//===- LowBitToKernels.cpp - convert-lowbit-to-kernels --------------------===//
//
// Every matmul-like op (lowbit.matmul, lowbit.qmatmul, lowbit.matmul_residual)
// whose weight format has a kernel on the target gets a generated kernel
// function (one per distinct weight type in the module), the activation
// quantizer it needs, and `lowbit.kernel` / `lowbit.act_quantizer` naming
// them. The rest get `lowbit.kernel_fallback` and a warning.
//
//===----------------------------------------------------------------------===//
#include "KernelBuilder.h"
#include "LowBit/Conversion/Passes.h"

#include "lowbit/Target/KernelABI.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::lowbit {

#define GEN_PASS_DEF_CONVERTLOWBITTOKERNELS
#define GEN_PASS_DEF_LOWBITISOLATEKERNELS
#include "LowBit/Conversion/Passes.h.inc"

namespace {

namespace fmt = ::lowbit::formats;
using kernels::Format;
using kernels::KernelSpec;
using ::lowbit::target::TargetInfo;

/// The `lb_matmul_kernel_fn` and `lb_quantize_act_fn` signatures.
FunctionType matmulKernelType(MLIRContext *ctx) {
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i64 = IntegerType::get(ctx, 64);
  return FunctionType::get(ctx, {ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64},
                           {});
}
FunctionType quantizerType(MLIRContext *ctx) {
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i64 = IntegerType::get(ctx, 64);
  return FunctionType::get(ctx, {ptr, ptr, i64, i64, i64}, {});
}

/// Creates a public function at the end of `module` with the entry-point
/// attributes, or returns the existing one.
func::FuncOp getOrCreateEntry(RewriterBase &rewriter, ModuleOp module,
                              StringRef name, FunctionType type,
                              const TargetInfo &target, bool &created) {
  created = false;
  if (auto fn = module.lookupSymbol<func::FuncOp>(name))
    return fn;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(rewriter, module.getLoc(), name, type);
  fn->setAttr(kKernelEntryAttrName, rewriter.getUnitAttr());
  kernels::setTargetAttributes(fn, target);
  created = true;
  return fn;
}

/// `int32_t lb_abi_version(void)`.
void ensureAbiVersion(RewriterBase &rewriter, ModuleOp module,
                      const TargetInfo &target) {
  MLIRContext *ctx = module.getContext();
  bool created;
  func::FuncOp fn = getOrCreateEntry(
      rewriter, module, LB_ABI_VERSION_SYMBOL,
      FunctionType::get(ctx, {}, {IntegerType::get(ctx, 32)}), target, created);
  if (!created)
    return;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(fn.addEntryBlock());
  Value version = arith::ConstantOp::create(
      rewriter, fn.getLoc(), rewriter.getI32IntegerAttr(LB_KERNEL_ABI_VERSION));
  func::ReturnOp::create(rewriter, fn.getLoc(), version);
}

/// The weight operand and, for qmatmul, the activation format it carries.
Value weightOf(Operation *op) {
  if (auto m = dyn_cast<MatmulOp>(op))
    return m.getWeight();
  if (auto m = dyn_cast<QMatmulOp>(op))
    return m.getWeight();
  if (auto m = dyn_cast<MatmulResidualOp>(op))
    return m.getWeight();
  return {};
}

/// Decides the kernel of a matmul-like op, or of one expert's matrix of a
/// moe_ffn weight (3-D; the kernel multiplies one expert's rows): fills
/// `spec` and `kernel` and returns "", or returns why there is none (the
/// fall-back's reason).
std::string planKernel(Operation *op, Value weight, const TargetInfo &target,
                       KernelSpec &spec,
                       std::unique_ptr<kernels::FormatKernel> &kernel) {
  auto type = dyn_cast<QTensorType>(weight.getType());
  if (!type)
    return "the weight is an f32 tensor, not a stored !lowbit.qtensor";
  const size_t rank = type.getShape().size();
  if (rank != 2 && !(rank == 3 && isa<MoEFFNOp>(op)))
    return "the weight is not 2-D";
  spec.format = type.getFormat().getFormat();
  spec.rows = type.getShape()[rank - 2];
  spec.cols = type.getShape()[rank - 1];
  spec.interleave = type.getLayout() ? type.getLayout().getRows() : 1;
  spec.target = &target;
  spec.choice = target.find(spec.format);
  const std::string name = fmt::info(spec.format).name;
  if (!spec.choice)
    return "no kernel for " + name + " in the " + target.name + " table";
  kernel = kernels::createFormatKernel(spec.format, target.isa);
  if (!kernel)
    return "no kernel generator for " + name;
  const Format act = kernel->activation();
  if (act != spec.choice->activation)
    return "the " + std::string(target.name) + " table pairs " + name +
           " with " + fmt::info(spec.choice->activation).name +
           " activations; the generator consumes " + fmt::info(act).name;
  if (act == Format::F32 && spec.interleave != 1)
    return "float weights are read row by row; no interleaved layout";
  if (auto q = dyn_cast<QMatmulOp>(op))
    if (q.getActFormat().getFormat() != act)
      return "activations arrive in " + q.getActFormat().getName().str() +
             "; the " + name + " kernel takes " + fmt::info(act).name;
  return "";
}

/// The kernel function of `spec` and, for quantized activations, the
/// quantizer it needs (created once per module): their symbols, or "" in
/// `why` on success.
std::string emitKernel(RewriterBase &rewriter, ModuleOp module,
                       const KernelSpec &spec,
                       kernels::FormatKernel &kernel,
                       const TargetInfo &target, std::string &symbol,
                       std::string &quantizer) {
  MLIRContext *ctx = module.getContext();
  bool created;
  symbol = kernels::kernelSymbol(spec);
  func::FuncOp fn = getOrCreateEntry(rewriter, module, symbol,
                                     matmulKernelType(ctx), target, created);
  if (created) {
    fn->setAttr(kDotPathAttrName, rewriter.getStringAttr(spec.choice->dotPath));
    OpBuilder::InsertionGuard guard(rewriter);
    if (failed(kernels::buildMatmulKernel(fn, spec, kernel))) {
      rewriter.eraseOp(fn);
      return "kernel generation failed";
    }
  }
  quantizer.clear();
  if (kernel.activation() != Format::F32) {
    quantizer = kernels::quantizerSymbol(kernel.activation());
    func::FuncOp q = getOrCreateEntry(rewriter, module, quantizer,
                                      quantizerType(ctx), target, created);
    if (created &&
        failed(kernels::buildQuantizer(q, kernel.activation(), target.isa)))
      return "quantizer generation failed";
  }
  ensureAbiVersion(rewriter, module, target);
  return "";
}

template <typename OpTy> struct MatmulToKernel : OpRewritePattern<OpTy> {
  MatmulToKernel(MLIRContext *ctx, const TargetInfo &target)
      : OpRewritePattern<OpTy>(ctx), target(target) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    if (op->hasAttr(kKernelAttrName) || op->hasAttr(kKernelFallbackAttrName))
      return rewriter.notifyMatchFailure(op, "already has a kernel");
    KernelSpec spec;
    std::unique_ptr<kernels::FormatKernel> kernel;
    std::string why = planKernel(op, weightOf(op), target, spec, kernel);
    if (!why.empty())
      return rewriter.notifyMatchFailure(op, why);

    auto module = op->template getParentOfType<ModuleOp>();
    if (!module)
      return rewriter.notifyMatchFailure(op, "not inside a module");
    MLIRContext *ctx = op->getContext();
    std::string symbol, quantizer;
    why = emitKernel(rewriter, module, spec, *kernel, target, symbol, quantizer);
    if (!why.empty())
      return rewriter.notifyMatchFailure(op, why);
    rewriter.modifyOpInPlace(op, [&] {
      op->setAttr(kKernelAttrName, FlatSymbolRefAttr::get(ctx, symbol));
      if (!quantizer.empty())
        op->setAttr(kActQuantizerAttrName,
                    FlatSymbolRefAttr::get(ctx, quantizer));
    });
    return success();
  }

  const TargetInfo &target;
};

/// A moe_ffn's routed experts (gate, up, down: stacked 3-D weights) get one
/// kernel each for a single expert's matrix; the runtime calls it on the
/// expert's rows. `lowbit.expert_kernels` / `lowbit.expert_act_quantizers`
/// list them in operand order ("" = none: the expert is decoded to f32).
struct MoEToKernels : OpRewritePattern<MoEFFNOp> {
  MoEToKernels(MLIRContext *ctx, const TargetInfo &target)
      : OpRewritePattern<MoEFFNOp>(ctx), target(target) {}

  LogicalResult matchAndRewrite(MoEFFNOp op,
                                PatternRewriter &rewriter) const override {
    if (op->hasAttr(kExpertKernelsAttrName))
      return rewriter.notifyMatchFailure(op, "already has kernels");
    auto module = op->getParentOfType<ModuleOp>();
    if (!module)
      return rewriter.notifyMatchFailure(op, "not inside a module");
    SmallVector<Attribute> kernelNames, quantizerNames;
    for (Value weight : {op.getGateExps(), op.getUpExps(), op.getDownExps()}) {
      KernelSpec spec;
      std::unique_ptr<kernels::FormatKernel> kernel;
      std::string symbol, quantizer;
      std::string why = planKernel(op, weight, target, spec, kernel);
      if (why.empty())
        why = emitKernel(rewriter, module, spec, *kernel, target, symbol,
                         quantizer);
      if (!why.empty()) {
        symbol.clear();
        quantizer.clear();
        if (auto type = dyn_cast<QTensorType>(weight.getType()))
          op.emitWarning() << "slow fall-back for the experts' "
                           << type.getFormat().getName() << " weight: " << why
                           << "; the runtime decodes it to f32";
      }
      kernelNames.push_back(rewriter.getStringAttr(symbol));
      quantizerNames.push_back(rewriter.getStringAttr(quantizer));
    }
    rewriter.modifyOpInPlace(op, [&] {
      op->setAttr(kExpertKernelsAttrName, rewriter.getArrayAttr(kernelNames));
      op->setAttr(kExpertActQuantizersAttrName,
                  rewriter.getArrayAttr(quantizerNames));
    });
    return success();
  }

  const TargetInfo &target;
};

struct ConvertLowBitToKernelsPass
    : impl::ConvertLowBitToKernelsBase<ConvertLowBitToKernelsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    const TargetInfo *target = ::lowbit::target::findTarget(targetName);
    if (!target) {
      if (targetName == "host")
        module.emitError() << "the host CPU runs none of the registered "
                              "targets ("
                           << ::lowbit::target::targetNames() << ")";
      else
        module.emitError() << "unknown target '" << targetName
                           << "'; known targets: "
                           << ::lowbit::target::targetNames();
      return signalPassFailure();
    }
    module->setAttr(kCodegenTargetAttrName,
                    StringAttr::get(module.getContext(), target->name));
    RewritePatternSet patterns(&getContext());
    populateLowBitToKernelsPatterns(patterns, *target);
    // A single walk, not the greedy driver: the matmuls are annotated once,
    // and the greedy driver's dead-code elimination would erase matmuls
    // whose results are unused (they would get no kernel).
    walkAndApplyPatterns(module, std::move(patterns));
    SmallVector<Operation *> matmuls;
    module.walk([&](Operation *op) {
      if (weightOf(op))
        matmuls.push_back(op);
    });
    // Whatever did not get a kernel falls back to f32 decoding: say so.
    for (Operation *op : matmuls) {
      if (op->hasAttr(kKernelAttrName))
        continue;
      auto type = dyn_cast<QTensorType>(weightOf(op).getType());
      if (!type)
        continue; // f32 tensors computed by the graph, not stored weights.
      StringRef name = type.getFormat().getName();
      KernelSpec spec;
      std::unique_ptr<kernels::FormatKernel> kernel;
      std::string why = planKernel(op, weightOf(op), *target, spec, kernel);
      if (why.empty())
        why = "kernel generation failed";
      op->setAttr(kKernelFallbackAttrName,
                  StringAttr::get(op->getContext(), why));
      op->emitWarning() << "slow fall-back: " << why
                        << "; the runtime decodes this " << name
                        << " weight to f32";
    }
  }
};

struct LowBitIsolateKernelsPass
    : impl::LowBitIsolateKernelsBase<LowBitIsolateKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (Operation &op : llvm::make_early_inc_range(*module.getBody())) {
      auto fn = dyn_cast<func::FuncOp>(op);
      if ((fn && fn->hasAttr(kKernelEntryAttrName)) ||
          op.hasAttr(kKernelDataAttrName))
        continue;
      op.erase();
    }
    SmallVector<NamedAttribute> keep;
    for (NamedAttribute attr : module->getAttrs())
      if (!attr.getName().getValue().starts_with("lowbit.") ||
          attr.getName() == kCodegenTargetAttrName)
        keep.push_back(attr);
    module->setAttrs(keep);
    if (auto name = module->getAttrOfType<StringAttr>(kCodegenTargetAttrName))
      if (const TargetInfo *target =
              ::lowbit::target::findTarget(name.getValue().str()))
        module->setAttr(LLVM::LLVMDialect::getTargetTripleAttrName(),
                        StringAttr::get(module.getContext(), target->triple));
  }
};

} // namespace

void populateLowBitToKernelsPatterns(
    RewritePatternSet &patterns, const ::lowbit::target::TargetInfo &target) {
  patterns.add<MatmulToKernel<MatmulOp>, MatmulToKernel<QMatmulOp>,
               MatmulToKernel<MatmulResidualOp>, MoEToKernels>(
      patterns.getContext(), target);
}

} // namespace mlir::lowbit
