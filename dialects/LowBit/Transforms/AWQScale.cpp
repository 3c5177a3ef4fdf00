//===- AWQScale.cpp - AWQ channel scales folded into the float model ------===//
//
// Finds, in the IR, each set of weights that read one activation and the op
// that produces it, searches AWQ scales for the set (lowbit/Quant/AWQ.h) and
// rewrites both sides so that the float model is unchanged.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Calibration/Hessian.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Quant/AWQ.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cmath>
#include <cstring>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITAWQSCALE
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;
namespace quant = ::lowbit::quant;

namespace {

/// What produces the scaled activation, and so what absorbs 1 / s.
enum class Producer {
  Norm,      // rms_norm weight (one value per channel)
  ValueRows, // rows of the value projection feeding attention
  UpRows,    // rows of `up` in mul(act(gate), up)
};

struct ScaleGroup {
  Producer kind;
  Operation *anchor; // the op producing the activation, for diagnostics
  SmallVector<GlobalWeightOp> consumers;
  GlobalWeightOp producer;
  GlobalWeightOp producerBias; // null when the projection has no bias
  // Attention groups: query heads h and h' read the same V rows when
  // h / group == h' / group, so their scales must agree.
  int64_t heads = 0, kvHeads = 0, headDim = 0;
};

bool isFloatFormat(formats::Format f) {
  return formats::info(f).kind == formats::FormatKind::Float;
}

struct AWQScalePass
    : public mlir::lowbit::impl::LowBitAWQScaleBase<AWQScalePass> {
  using Base::Base;

  llvm::StringMap<GlobalWeightOp> globals;
  /// Every op that uses a global (through any lowbit.weight naming it).
  llvm::StringMap<SmallVector<Operation *>> uses;
  llvm::StringMap<SmallVector<WeightOp>> weightOps;

  std::shared_ptr<::lowbit::calib::HessianStore> hessians;
  ::lowbit::calib::IMatrix stats;
  bool haveStats = false;

  GlobalWeightOp globalOf(Value value) {
    auto ref = value ? value.getDefiningOp<WeightOp>() : WeightOp();
    return ref ? globals.lookup(ref.getName()) : GlobalWeightOp();
  }

  /// True when every use of `weight` is one of `allowed`.
  bool onlyUsedBy(GlobalWeightOp weight, ArrayRef<Operation *> allowed) {
    for (Operation *user : uses.lookup(weight.getSymName()))
      if (!llvm::is_contained(allowed, user))
        return false;
    return true;
  }

  /// The matmuls that read `value` as their input, if those are all its
  /// users; their weights become the group's consumers.
  bool collectConsumers(Value value, ScaleGroup &group) {
    SmallVector<Operation *> matmuls;
    for (Operation *user : value.getUsers()) {
      auto mm = dyn_cast<MatmulOp>(user);
      if (!mm || mm.getInput() != value || mm.getWeight() == value)
        return false;
      matmuls.push_back(mm);
    }
    // Program order (use lists are not), so the first consumer, whose name
    // the group's Hessian is looked up by, is q / gate as calibration saw it.
    Block *block = value.getParentBlock();
    if (llvm::all_of(matmuls,
                     [&](Operation *op) { return op->getBlock() == block; }))
      llvm::sort(matmuls, [](Operation *a, Operation *b) {
        return a->isBeforeInBlock(b);
      });
    for (Operation *op : matmuls) {
      GlobalWeightOp w = globalOf(cast<MatmulOp>(op).getWeight());
      if (!w || !onlyUsedBy(w, matmuls))
        return false; // e.g. a tied embedding also used for lookups
      if (!llvm::is_contained(group.consumers, w))
        group.consumers.push_back(w);
    }
    return !group.consumers.empty();
  }

  /// `value` is a matmul result with no other use; its weight (and bias)
  /// become the producer.
  bool takeProjection(Value value, ScaleGroup &group) {
    auto mm = value.getDefiningOp<MatmulOp>();
    if (!mm || !value.hasOneUse())
      return false;
    group.producer = globalOf(mm.getWeight());
    if (!group.producer || !onlyUsedBy(group.producer, {mm}))
      return false;
    if (Value bias = mm.getBias()) {
      group.producerBias = globalOf(bias);
      if (!group.producerBias || !onlyUsedBy(group.producerBias, {mm}))
        return false;
    }
    return true;
  }

  SmallVector<ScaleGroup> findGroups(ModuleOp module) {
    SmallVector<ScaleGroup> norms, others;
    module.walk([&](Operation *op) {
      ScaleGroup group;
      group.anchor = op;
      if (auto norm = dyn_cast<RMSNormOp>(op)) {
        if (norm.getGroup())
          return; // a per-head gain cannot absorb per-channel scales
        group.kind = Producer::Norm;
        group.producer = globalOf(norm.getWeight());
        if (group.producer && onlyUsedBy(group.producer, {op}) &&
            collectConsumers(norm.getResult(), group))
          norms.push_back(group);
      } else if (auto att = dyn_cast<AttentionOp>(op)) {
        group.kind = Producer::ValueRows;
        auto q = dyn_cast<RankedTensorType>(att.getQuery().getType());
        auto v = dyn_cast<RankedTensorType>(att.getValue().getType());
        group.heads = static_cast<int64_t>(att.getHeads());
        if (!q || !v || group.heads <= 0 || q.getRank() != 2 ||
            v.getRank() != 2 || q.getDimSize(1) % group.heads != 0)
          return;
        group.headDim = q.getDimSize(1) / group.heads;
        if (group.headDim <= 0 || v.getDimSize(1) % group.headDim != 0)
          return;
        group.kvHeads = v.getDimSize(1) / group.headDim;
        if (group.kvHeads <= 0 || group.heads % group.kvHeads != 0 ||
            att.getValue() == att.getKey() || att.getValue() == att.getQuery())
          return;
        if (takeProjection(att.getValue(), group) &&
            collectConsumers(att.getResult(), group))
          others.push_back(group);
      } else if (auto mul = dyn_cast<MulOp>(op)) {
        group.kind = Producer::UpRows;
        // mul(act(gate), up) is linear in up: either operand may be it.
        Value lhs = mul.getLhs(), rhs = mul.getRhs();
        if (lhs == rhs)
          return;
        ScaleGroup tryRhs = group;
        if (takeProjection(rhs, tryRhs))
          group = tryRhs;
        else if (!takeProjection(lhs, group))
          return;
        if (collectConsumers(mul.getResult(), group))
          others.push_back(group);
      }
    });
    // Norm groups first: they see V and up before their rows are divided by
    // the scales of attn_output and ffn_down, so each group's search weighs
    // its own weights' errors as the model will.
    norms.append(others.begin(), others.end());
    return norms;
  }

  LogicalResult readFloats(GlobalWeightOp weight, std::vector<float> &out) {
    QTensorType type = weight.getWeightType();
    formats::Format f = type.getFormat().getFormat();
    if (!isFloatFormat(f))
      return emitError(weight.getLoc())
             << "tensor '" << weight.getSymName() << "' is stored as "
             << formats::info(f).name
             << "; lowbit-awq-scale needs float weights (f32, f16, bf16)";
    std::string error;
    const uint8_t *bytes = getWeightBytes(weight, error);
    if (!bytes)
      return emitError(weight.getLoc())
             << "tensor '" << weight.getSymName() << "': " << error;
    int64_t rows = type.getNumRows(), n = type.getRowLength();
    out.resize(rows * n);
    formats::dequantizeRows(f, bytes, out.data(), rows, n, threads);
    return success();
  }

  /// Stores `values` as the weight's new data in `format`.
  LogicalResult writeFloats(GlobalWeightOp weight, ArrayRef<float> values,
                            formats::Format format) {
    QTensorType type = weight.getWeightType();
    int64_t rows = type.getNumRows(), n = type.getRowLength();
    uint64_t bytes = formats::rowBytes(formats::info(format), n) * rows;
    AsmResourceBlob blob =
        HeapAsmResourceBlob::allocate(bytes, alignof(uint64_t));
    std::string why;
    if (!formats::quantizeRows(
            format, values.data(),
            reinterpret_cast<uint8_t *>(blob.getMutableData().data()), rows, n,
            nullptr, threads, &why))
      return emitError(weight.getLoc())
             << "tensor '" << weight.getSymName()
             << "': the scaled weights do not fit: " << why;
    MLIRContext *context = weight.getContext();
    auto blobType = RankedTensorType::get({static_cast<int64_t>(bytes)},
                                          IntegerType::get(context, 8));
    weight.setDataAttr(DenseResourceElementsAttr::get(
        blobType, weight.getSymName(), std::move(blob)));
    QTensorType newType = type.withFormat(format);
    weight.setTypeAttr(TypeAttr::get(newType));
    for (WeightOp ref : weightOps.lookup(weight.getSymName()))
      ref.getResult().setType(newType);
    return success();
  }

  /// Format a consumer will be stored in: its target, else its own.
  formats::Format finalFormat(GlobalWeightOp weight) {
    if (auto target = weight->getAttrOfType<FormatAttr>(kTargetFormatAttrName))
      return target.getFormat();
    return weight.getWeightType().getFormat().getFormat();
  }

  LogicalResult runGroup(ScaleGroup &group);

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (state.empty()) {
      module.emitError() << "lowbit-awq-scale needs a calibration state "
                            "(state=FILE, written by lowbit-calibrate with "
                            "hessians=true)";
      return signalPassFailure();
    }
    std::string error;
    hessians = ::lowbit::calib::HessianStore::open(state, error);
    if (!hessians) {
      module.emitError() << error;
      return signalPassFailure();
    }
    // Activation statistics; without them the Hessian's diagonal serves.
    std::string statsError;
    haveStats = ::lowbit::calib::IMatrix::load(state, stats, statsError);

    for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>()) {
      globals[weight.getSymName()] = weight;
      if (weight->hasAttr(kAWQScaledAttrName)) {
        emitError(weight.getLoc())
            << "tensor '" << weight.getSymName()
            << "' is already AWQ-scaled; the calibration statistics no "
               "longer describe its input";
        return signalPassFailure();
      }
    }
    module.walk([&](WeightOp ref) {
      weightOps[ref.getName()].push_back(ref);
      for (Operation *user : ref.getResult().getUsers())
        uses[ref.getName()].push_back(user);
    });
    for (ScaleGroup &group : findGroups(module))
      if (failed(runGroup(group)))
        return signalPassFailure();
  }
};

LogicalResult AWQScalePass::runGroup(ScaleGroup &group) {
  // Only groups that will be quantized have anything to gain.
  bool quantized = false;
  for (GlobalWeightOp w : group.consumers)
    quantized |= !isFloatFormat(finalFormat(w));
  if (!quantized)
    return success();

  GlobalWeightOp first = group.consumers.front();
  std::string name = first.getSymName().str();
  int64_t k = first.getWeightType().getRowLength();
  std::vector<float> hessian;
  int64_t hk = 0;
  std::string error;
  if (!hessians->get(name, hessian, hk, error))
    return emitError(first.getLoc()) << "tensor '" << name << "': " << error;
  if (hk != k)
    return emitError(first.getLoc())
           << "the Hessian of '" << name << "' is " << hk << " x " << hk
           << " but its rows have " << k
           << " columns; was the state computed for another model?";

  // a = RMS activation per input channel.
  std::vector<float> activation =
      haveStats ? stats.importance(name) : std::vector<float>();
  if (!activation.empty() && static_cast<int64_t>(activation.size()) != k)
    return emitError(first.getLoc())
           << "the calibration state has " << activation.size()
           << " activation statistics for '" << name << "' but its rows have "
           << k << " columns";
  if (activation.empty()) {
    double tokens = std::max<double>(1.0, double(hessians->tokens()));
    activation.resize(k);
    for (int64_t c = 0; c < k; ++c)
      activation[c] = static_cast<float>(hessian[c * k + c] / tokens);
  }
  for (float &a : activation)
    a = std::sqrt(std::max(a, 0.0f));
  if (group.kind == Producer::ValueRows) {
    if (k != group.heads * group.headDim)
      return emitError(first.getLoc())
             << "tensor '" << name << "' has " << k
             << " columns but the attention it reads has " << group.heads
             << " heads of " << group.headDim;
    activation = quant::expandFromKVHeads(
        quant::tieToKVHeads(activation, group.heads, group.kvHeads,
                            group.headDim),
        group.heads, group.kvHeads, group.headDim);
  }

  // The consumers in f32, and the search.
  std::vector<std::vector<float>> data(group.consumers.size());
  std::vector<quant::AWQWeight> weights;
  for (auto [w, values] : llvm::zip(group.consumers, data)) {
    if (failed(readFloats(w, values)))
      return failure();
    weights.push_back({w.getSymName().str(), values.data(),
                       w.getWeightType().getNumRows(), finalFormat(w)});
  }
  quant::AWQOptions options;
  options.gridPoints = grid;
  options.maxSearchRows = maxSearchRows;
  options.threads = threads;
  quant::AWQResult result;
  if (!quant::searchAWQ(weights, k, activation, hessian.data(), options, result,
                        error))
    return emitError(first.getLoc()) << error;

  MLIRContext *context = first.getContext();
  auto alphaAttr = FloatAttr::get(Float32Type::get(context),
                                  static_cast<float>(result.alpha));
  for (GlobalWeightOp w : group.consumers)
    w->setAttr(kAWQAlphaAttrName, alphaAttr);
  if (result.alpha == 0)
    return success(); // RTN is best: nothing to fold.
  const std::vector<float> &s = result.scales;

  // The producer absorbs 1 / s ...
  std::vector<float> divisor = s;
  if (group.kind == Producer::ValueRows) {
    // One scale per V row: that of the first query head of its group.
    int64_t perGroup = group.heads / group.kvHeads;
    divisor.resize(group.kvHeads * group.headDim);
    for (int64_t kv = 0; kv < group.kvHeads; ++kv)
      for (int64_t d = 0; d < group.headDim; ++d)
        divisor[kv * group.headDim + d] =
            s[(kv * perGroup) * group.headDim + d];
  }
  for (GlobalWeightOp p : {group.producer, group.producerBias}) {
    if (!p)
      continue;
    QTensorType type = p.getWeightType();
    // A vector (norm weight, bias) holds one value per channel.
    int64_t rows =
        type.getShape().size() == 1 ? type.getRowLength() : type.getNumRows();
    if (rows != static_cast<int64_t>(divisor.size()))
      return emitError(p.getLoc())
             << "tensor '" << p.getSymName() << "' produces " << rows
             << " channels but '" << name << "' reads " << divisor.size();
    std::vector<float> values;
    if (failed(readFloats(p, values)))
      return failure();
    quant::divideRows(values.data(), rows,
                      static_cast<int64_t>(values.size()) / rows,
                      divisor.data());
    if (failed(writeFloats(p, values, type.getFormat().getFormat())))
      return failure();
  }
  // ... and the consumers' columns take s.
  for (auto [w, values] : llvm::zip(group.consumers, data)) {
    quant::scaleColumns(values.data(), w.getWeightType().getNumRows(), k,
                        s.data());
    formats::Format keep = w.getWeightType().getFormat().getFormat();
    // Weights about to be quantized keep full precision until then.
    formats::Format store =
        isFloatFormat(finalFormat(w)) ? keep : formats::Format::F32;
    if (failed(writeFloats(w, values, store)))
      return failure();
    AsmResourceBlob blob =
        HeapAsmResourceBlob::allocate(k * sizeof(float), alignof(uint64_t));
    std::memcpy(blob.getMutableData().data(), s.data(), k * sizeof(float));
    auto type = RankedTensorType::get({k}, Float32Type::get(context));
    w->setAttr(
        kAWQScaledAttrName,
        DenseResourceElementsAttr::get(
            type, (w.getSymName() + ".awq_scales").str(), std::move(blob)));
  }
  return success();
}

} // namespace
