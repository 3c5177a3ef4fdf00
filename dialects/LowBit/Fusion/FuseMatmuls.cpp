//===- FuseMatmuls.cpp - q/k/v and gate/up into one matmul ----------------===//
//
// Sibling matmuls that read the same activations become one matmul over a
// weight holding their rows back to back, followed by lowbit.split. One
// kernel call streams the activations once and covers more rows, which
// matters most at one token per step, when a matmul is a memory-bound pass
// over its weight. The bytes are concatenated, never re-encoded.
//
//===----------------------------------------------------------------------===//

#include "LowBit/Fusion/Passes.h"

#include "lowbit/GGUF/TensorNames.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/SymbolTable.h"

#include <cstring>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITFUSEQKV
#define GEN_PASS_DEF_LOWBITFUSEGATEUP
#include "LowBit/Fusion/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;

namespace {

/// The global weight a matmul multiplies by, or null.
GlobalWeightOp globalOf(MatmulOp op, SymbolTable &symbols) {
  auto ref = op.getWeight().getDefiningOp<WeightOp>();
  return ref ? symbols.lookup<GlobalWeightOp>(ref.getName()) : GlobalWeightOp();
}

/// The fused weight's name and role: when the pieces' roles are `parts` of
/// one layer, the role `fused` of that layer and its GGUF name (the one
/// role <-> name map); otherwise a name derived from the first piece's.
std::pair<std::string, RoleAttr> fusedName(SmallVector<GlobalWeightOp> globals,
                                           ArrayRef<StringRef> parts,
                                           StringRef fused) {
  RoleAttr first = getWeightRole(globals.front());
  bool roles = first && globals.size() == parts.size();
  for (size_t i = 0; roles && i < parts.size(); ++i) {
    RoleAttr r = getWeightRole(globals[i]);
    roles = r && r.getKind() == parts[i] && r.getLayer() == first.getLayer() &&
            r.getExpert() == first.getExpert();
  }
  if (roles) {
    ::lowbit::gguf::TensorRole role{fused.str(), first.getLayer(),
                                    first.getExpert()};
    return {::lowbit::gguf::tensorNameOfRole(role),
            RoleAttr::get(first.getContext(), fused, first.getLayer(),
                          first.getExpert())};
  }
  return {(globals.front().getSymName() + "." + fused).str(), RoleAttr()};
}

/// Empty when `ops` (all reading one input) can be fused; else the reason.
std::string whyNot(SmallVector<MatmulOp> ops, SymbolTable &symbols,
                   SmallVectorImpl<GlobalWeightOp> &globals) {
  for (MatmulOp op : ops) {
    if (op.getBias())
      return "a projection has a bias";
    if (op->getBlock() != ops.front()->getBlock())
      return "the projections are in different blocks";
    GlobalWeightOp g = globalOf(op, symbols);
    if (!g)
      return "a weight is not a lowbit.global_weight";
    if (g->hasAttr("lowbit.target"))
      return "@" + g.getSymName().str() +
             " is still to be quantized (run lowbit-quantize first)";
    if (g.getWeightType().getLayout())
      return "@" + g.getSymName().str() + " is already packed";
    if (g.getWeightType().getShape().size() != 2)
      return "@" + g.getSymName().str() + " is not a matrix";
    globals.push_back(g);
  }
  QTensorType first = globals.front().getWeightType();
  for (GlobalWeightOp g : globals) {
    QTensorType t = g.getWeightType();
    if (t.getFormat() != first.getFormat())
      return "@" + g.getSymName().str() + " is " +
             t.getFormat().getName().str() + " but @" +
             globals.front().getSymName().str() + " is " +
             first.getFormat().getName().str();
    if (t.getRowLength() != first.getRowLength())
      return "the weights have different row lengths";
  }
  return "";
}

/// Replaces `ops` by one matmul over a new weight holding their rows in
/// order, and a split. Old weights without other users are erased.
LogicalResult fuse(ModuleOp module, SymbolTable &symbols,
                   SmallVector<MatmulOp> ops, SmallVector<GlobalWeightOp> globals,
                   const std::string &name, RoleAttr role) {
  MLIRContext *context = module.getContext();
  QTensorType first = globals.front().getWeightType();
  int64_t rows = 0;
  uint64_t bytes = 0;
  SmallVector<int64_t> pieceRows;
  SmallVector<Attribute> pieceNames;
  for (GlobalWeightOp g : globals) {
    pieceRows.push_back(g.getWeightType().getNumRows());
    pieceNames.push_back(g.getSymNameAttr());
    rows += pieceRows.back();
    bytes += g.getWeightType().getByteSize();
  }
  AsmResourceBlob blob = HeapAsmResourceBlob::allocate(bytes, alignof(uint64_t));
  uint8_t *out = reinterpret_cast<uint8_t *>(blob.getMutableData().data());
  for (GlobalWeightOp g : globals) {
    std::string error;
    const uint8_t *src = getWeightBytes(g, error);
    if (!src)
      return g.emitOpError() << "cannot read its data: " << error;
    uint64_t n = g.getWeightType().getByteSize();
    std::memcpy(out, src, n);
    out += n;
  }
  auto type = QTensorType::get(context, {rows, first.getRowLength()},
                               first.getFormat(), LayoutAttr());
  auto blobType = RankedTensorType::get({static_cast<int64_t>(bytes)},
                                        IntegerType::get(context, 8));
  // Created detached: SymbolTable::insert places it (before the first
  // piece, keeping module order close to the file's) and keeps the name
  // unique.
  OpBuilder builder(context);
  SmallVector<Location> locs;
  for (GlobalWeightOp g : globals)
    locs.push_back(g.getLoc());
  auto fused = GlobalWeightOp::create(
      builder, FusedLoc::get(context, locs), name, type,
      DenseResourceElementsAttr::get(blobType, name, std::move(blob)), role);
  fused->setAttr(kFusedFromAttrName, builder.getArrayAttr(pieceNames));
  fused->setAttr(kFusedRowsAttrName, builder.getDenseI64ArrayAttr(pieceRows));
  symbols.insert(fused, Block::iterator(globals.front()));

  // The new matmul goes where the first of the siblings was.
  MatmulOp head = ops.front();
  for (MatmulOp op : ops)
    if (op->isBeforeInBlock(head))
      head = op;
  builder.setInsertionPoint(head);
  SmallVector<Location> opLocs;
  for (MatmulOp op : ops)
    opLocs.push_back(op.getLoc());
  Location loc = FusedLoc::get(context, opLocs);
  Value input = head.getInput();
  auto inputType = cast<RankedTensorType>(input.getType());
  auto weight =
      WeightOp::create(builder, loc, type, FlatSymbolRefAttr::get(fused));
  auto resultType = RankedTensorType::get(
      {inputType.getShape()[0], rows}, builder.getF32Type());
  auto matmul = MatmulOp::create(builder, loc, resultType, input, weight,
                                 /*bias=*/Value());
  SmallVector<Type> pieceTypes;
  for (MatmulOp op : ops)
    pieceTypes.push_back(op.getResult().getType());
  auto split = SplitOp::create(builder, loc, pieceTypes, matmul.getResult(),
                               builder.getDenseI64ArrayAttr(pieceRows));
  for (auto [op, result] : llvm::zip(ops, split.getResults())) {
    Operation *weightRef = op.getWeight().getDefiningOp();
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    if (weightRef && weightRef->use_empty())
      weightRef->erase();
  }
  for (GlobalWeightOp g : globals)
    if (SymbolTable::symbolKnownUseEmpty(g, module))
      symbols.erase(g);
  return success();
}

/// Follows a value back through lowbit.rope and a per-head lowbit.rms_norm
/// (qwen3's q/k norms) to the matmul producing it.
MatmulOp producer(Value v) {
  if (auto rope = v.getDefiningOp<RopeOp>())
    v = rope.getInput();
  if (auto norm = v.getDefiningOp<RMSNormOp>(); norm && norm.getGroup())
    v = norm.getInput();
  return v.getDefiningOp<MatmulOp>();
}

struct FuseQKVPass : public mlir::lowbit::impl::LowBitFuseQKVBase<FuseQKVPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<AttentionOp> attentions;
    module.walk([&](AttentionOp op) { attentions.push_back(op); });
    for (AttentionOp att : attentions) {
      MatmulOp q = producer(att.getQuery()), k = producer(att.getKey()),
               v = producer(att.getValue());
      if (!q || !k || !v || q == k || k == v || q == v)
        continue;
      if (q.getInput() != k.getInput() || q.getInput() != v.getInput()) {
        att.emitRemark() << "q/k/v not fused: the projections read different "
                            "inputs";
        continue;
      }
      SmallVector<MatmulOp> ops = {q, k, v};
      SmallVector<GlobalWeightOp> globals;
      std::string why = whyNot(ops, symbols, globals);
      if (!why.empty()) {
        att.emitRemark() << "q/k/v not fused: " << why;
        continue;
      }
      auto [name, role] =
          fusedName(globals, {"attn_q", "attn_k", "attn_v"}, "attn_qkv");
      if (failed(fuse(module, symbols, ops, globals, name, role)))
        return signalPassFailure();
    }
  }
};

/// The matmuls (gate, up) of silu(gate) * up, or nulls.
std::pair<MatmulOp, MatmulOp> gateUp(Operation *op) {
  if (auto swiglu = dyn_cast<SwiGLUOp>(op))
    return {swiglu.getGate().getDefiningOp<MatmulOp>(),
            swiglu.getUp().getDefiningOp<MatmulOp>()};
  auto mul = dyn_cast<MulOp>(op);
  if (!mul)
    return {};
  for (auto [a, b] : {std::pair(mul.getLhs(), mul.getRhs()),
                      std::pair(mul.getRhs(), mul.getLhs())})
    if (auto silu = a.getDefiningOp<SiLUOp>())
      if (auto g = silu.getInput().getDefiningOp<MatmulOp>())
        if (auto u = b.getDefiningOp<MatmulOp>())
          return {g, u};
  return {};
}

struct FuseGateUpPass : public mlir::lowbit::impl::LowBitFuseGateUpBase<FuseGateUpPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<Operation *> candidates;
    module.walk([&](Operation *op) {
      if (isa<SwiGLUOp, MulOp>(op))
        candidates.push_back(op);
    });
    for (Operation *op : candidates) {
      auto [gate, up] = gateUp(op);
      if (!gate || !up || gate == up)
        continue;
      if (gate.getInput() != up.getInput()) {
        op->emitRemark() << "gate/up not fused: the projections read "
                            "different inputs";
        continue;
      }
      SmallVector<MatmulOp> ops = {gate, up};
      SmallVector<GlobalWeightOp> globals;
      std::string why = whyNot(ops, symbols, globals);
      if (!why.empty()) {
        op->emitRemark() << "gate/up not fused: " << why;
        continue;
      }
      auto [name, role] =
          fusedName(globals, {"ffn_gate", "ffn_up"}, "ffn_gate_up");
      if (failed(fuse(module, symbols, ops, globals, name, role)))
        return signalPassFailure();
    }
  }
};

} // namespace
