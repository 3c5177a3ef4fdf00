//===- ConvertONNX.cpp - ONNX nodes -> lowbit ops -------------------------===//
#include "LowBit/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <map>

#include <cstring>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITCONVERTONNX
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;

namespace {

/// A matmul node this pass rewrites: y = x * W (+ bias), W's bytes in
/// `tensor`, stored [K, N] (transposed = false) or [N, K].
struct MatmulMatch {
  ONNXNodeOp node;
  Value input;
  ONNXInitializerOp tensor;
  bool weightIsNK = false;
  Value bias;
  /// A Gather over the table `tensor` ([rows, width], read in place): the
  /// node stays, its data input becomes the weight.
  bool gather = false;
};

int64_t intAttr(ONNXNodeOp node, StringRef name, int64_t fallback) {
  if (auto value = node.getOnnxAttributes().getAs<IntegerAttr>(name))
    return value.getInt();
  return fallback;
}
float floatAttr(ONNXNodeOp node, StringRef name, float fallback) {
  if (auto value = node.getOnnxAttributes().getAs<FloatAttr>(name))
    return float(value.getValueAsDouble());
  return fallback;
}

bool isDefaultDomain(ONNXNodeOp node) {
  return !node.getDomain() || node.getDomain()->empty() ||
         *node.getDomain() == "ai.onnx";
}

struct ConvertONNXPass
    : public mlir::lowbit::impl::LowBitConvertONNXBase<ConvertONNXPass> {
  using Base::Base;

  /// The f32 rank-2 initializer `value` reads, or null.
  /// The value of a Constant node (many exports carry every weight that
  /// way): its `value` tensor's symbol, or null.
  static FlatSymbolRefAttr constantNodeValue(Operation *op) {
    auto node = dyn_cast_or_null<ONNXNodeOp>(op);
    if (!node || node.getOpType() != "Constant" || !isDefaultDomain(node) ||
        !node.getInputs().empty() || node.getNumResults() != 1 ||
        node.getOnnxAttributes().size() != 1)
      return nullptr;
    return node.getOnnxAttributes().getAs<FlatSymbolRefAttr>("value");
  }

  /// The f32 rank-2 tensor `value` reads (an initializer, or a Constant
  /// node's value), or null.
  ONNXInitializerOp constantMatrix(Value value) {
    Operation *source = value.getDefiningOp();
    FlatSymbolRefAttr symbol;
    if (auto constant = dyn_cast_or_null<ONNXConstantOp>(source))
      symbol = constant.getTensorAttr();
    else
      symbol = constantNodeValue(source);
    if (!symbol)
      return nullptr;
    auto tensor =
        symbols->lookupNearestSymbolFrom<ONNXInitializerOp>(source, symbol);
    if (!tensor || tensor.getTensorType().getRank() != 2 ||
        !tensor.getTensorType().getElementType().isF32())
      return nullptr;
    return tensor;
  }

  static bool isF32Ranked(Value value, int64_t minRank) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    return type && type.getElementType().isF32() && type.getRank() >= minRank;
  }

  std::optional<MatmulMatch> match(ONNXNodeOp node) {
    if (!isDefaultDomain(node) || node.getNumResults() != 1)
      return std::nullopt;
    StringRef op = node.getOpType();
    if (op == "Gather" && node.getInputs().size() == 2 &&
        intAttr(node, "axis", 0) == 0) {
      ONNXInitializerOp tensor = constantMatrix(node.getInputs()[0]);
      if (!tensor)
        return std::nullopt;
      MatmulMatch m{node, node.getInputs()[1], tensor, true, nullptr};
      m.gather = true;
      return m;
    }
    if (op == "MatMul" && node.getInputs().size() == 2) {
      ONNXInitializerOp tensor = constantMatrix(node.getInputs()[1]);
      if (!tensor || !isF32Ranked(node.getInputs()[0], 2))
        return std::nullopt;
      return MatmulMatch{node, node.getInputs()[0], tensor, false, nullptr};
    }
    if (op == "Gemm" && (node.getInputs().size() == 2 ||
                         node.getInputs().size() == 3)) {
      if (floatAttr(node, "alpha", 1.0f) != 1.0f ||
          intAttr(node, "transA", 0) != 0)
        return std::nullopt;
      ONNXInitializerOp tensor = constantMatrix(node.getInputs()[1]);
      if (!tensor || !isF32Ranked(node.getInputs()[0], 2) ||
          cast<RankedTensorType>(node.getInputs()[0].getType()).getRank() != 2)
        return std::nullopt;
      MatmulMatch m{node, node.getInputs()[0], tensor,
                    intAttr(node, "transB", 0) != 0, nullptr};
      if (node.getInputs().size() == 3 &&
          !isa<NoneType>(node.getInputs()[2].getType())) {
        // Only a per-output bias [N] maps onto the matmul's bias.
        auto biasType = dyn_cast<RankedTensorType>(node.getInputs()[2].getType());
        int64_t n = tensor.getTensorType().getDimSize(m.weightIsNK ? 0 : 1);
        if (floatAttr(node, "beta", 1.0f) != 1.0f || !biasType ||
            !biasType.getElementType().isF32() || biasType.getRank() != 1 ||
            biasType.getDimSize(0) != n)
          return std::nullopt;
        m.bias = node.getInputs()[2];
      }
      return m;
    }
    return std::nullopt;
  }

  /// The lowbit.global_weight holding `tensor` as [N, K] rows (created
  /// once per tensor; tied weights share it).
  FailureOr<GlobalWeightOp> weightFor(MatmulMatch m, OpBuilder &b) {
    std::pair<Operation *, bool> key(m.tensor.getOperation(), m.weightIsNK);
    if (auto it = weights.find(key); it != weights.end())
      return it->second;
    RankedTensorType type = m.tensor.getTensorType();
    int64_t rows = type.getDimSize(m.weightIsNK ? 0 : 1);
    int64_t cols = type.getDimSize(m.weightIsNK ? 1 : 0);
    Attribute data;
    if (m.weightIsNK && isa<ExternalDataAttr>(m.tensor.getData())) {
      data = m.tensor.getData(); // Same bytes, same order: no copy.
    } else {
      std::string error;
      const uint8_t *bytes = getONNXTensorBytes(m.tensor, error);
      if (!bytes)
        return LogicalResult(emitError(m.tensor.getLoc()) << error);
      uint64_t size = uint64_t(rows * cols) * sizeof(float);
      AsmResourceBlob blob =
          HeapAsmResourceBlob::allocate(size, alignof(uint64_t));
      float *out = reinterpret_cast<float *>(blob.getMutableData().data());
      const float *in = reinterpret_cast<const float *>(bytes);
      if (m.weightIsNK) {
        std::memcpy(out, in, size);
      } else {
        // [K, N] -> [N, K], in tiles so both sides stay in cache.
        constexpr int64_t kTile = 64;
        for (int64_t k0 = 0; k0 < cols; k0 += kTile)
          for (int64_t n0 = 0; n0 < rows; n0 += kTile)
            for (int64_t k = k0; k < std::min(cols, k0 + kTile); ++k)
              for (int64_t n = n0; n < std::min(rows, n0 + kTile); ++n)
                out[n * cols + k] = in[k * rows + n];
      }
      auto blobType = RankedTensorType::get({int64_t(size)}, b.getI8Type());
      data = DenseResourceElementsAttr::get(blobType, m.tensor.getSymName(),
                                            std::move(blob));
    }
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(m.tensor);
    auto qtype = QTensorType::get(b.getContext(), {rows, cols},
                                  formats::Format::F32);
    std::string symbol = m.tensor.getSymName().str();
    if (m.weightIsNK != pendingLayout(m.tensor))
      symbol += ".t"; // Read in both layouts: two weights.
    auto weight = GlobalWeightOp::create(b, 
        m.tensor.getLoc(), b.getStringAttr(symbol + ".lowbit"),
        TypeAttr::get(qtype), data, /*role=*/nullptr);
    // The ONNX name: the tensor's, or for a Constant node's value the
    // value the node defines (the name the graph uses).
    std::string onnxName = m.tensor.getONNXName().str();
    if (std::optional<SymbolTable::UseRange> uses =
            SymbolTable::getSymbolUses(m.tensor, getOperation()))
      for (const SymbolTable::SymbolUse &use : *uses)
        if (constantNodeValue(use.getUser()))
          if (std::optional<ArrayAttr> outputs =
                  cast<ONNXNodeOp>(use.getUser()).getOutputs())
            onnxName = cast<StringAttr>((*outputs)[0]).str();
    weight->setAttr("onnx.name", b.getStringAttr(onnxName));
    // Written back to external data, where the model kept it.
    if (m.tensor.getExternal())
      weight->setAttr("onnx.external", b.getUnitAttr());
    weights[key] = weight;
    return weight;
  }

  /// The layout the first match of `tensor` reads it in.
  bool pendingLayout(ONNXInitializerOp tensor) {
    return firstLayout.try_emplace(tensor.getOperation(), false).first->second;
  }

  LogicalResult rewrite(MatmulMatch m, OpBuilder &b) {
    FailureOr<GlobalWeightOp> weight = weightFor(m, b);
    if (failed(weight))
      return failure();
    b.setInsertionPoint(m.node);
    QTensorType qtype = weight->getWeightType();
    Value w = WeightOp::create(b, m.node.getLoc(), qtype,
                                 FlatSymbolRefAttr::get(weight->getSymNameAttr()));
    if (m.gather) {
      // An embedding table: ONNX's Gather keeps its semantics (any index
      // rank, negative indices); lowbit quantizes the table it reads.
      m.node->setOperand(0, w);
      return success();
    }
    auto inputType = cast<RankedTensorType>(m.input.getType());
    SmallVector<int64_t> shape(inputType.getShape());
    shape.back() = qtype.getShape()[0];
    auto resultType = RankedTensorType::get(shape, b.getF32Type());
    auto matmul = MatmulOp::create(b, m.node.getLoc(), resultType, m.input, w,
                                     m.bias);
    if (StringAttr name = m.node.getNameAttr())
      matmul->setAttr("onnx.name", name);
    if (m.node.getOutputs())
      matmul->setAttr("onnx.outputs", *m.node.getOutputs());
    Value old = m.node.getResult(0);
    if (old.getType() != resultType)
      changedTypes = true;
    old.replaceAllUsesWith(matmul.getResult());
    m.node.erase();
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTableCollection table;
    symbols = &table;
    SmallVector<MatmulMatch> matches;
    module.walk([&](ONNXNodeOp node) {
      if (std::optional<MatmulMatch> m = match(node)) {
        firstLayout.try_emplace(m->tensor.getOperation(), m->weightIsNK);
        matches.push_back(*m);
      }
    });
    OpBuilder b(module.getContext());
    for (MatmulMatch &m : matches)
      if (failed(rewrite(m, b)))
        return signalPassFailure();

    // Initializers only the rewritten nodes read go, with their constants;
    // their weights then take their symbols.
    llvm::SmallPtrSet<Operation *, 8> tensors;
    for (auto &[key, weight] : weights)
      tensors.insert(key.first);
    for (Operation *op : tensors) {
      auto tensor = cast<ONNXInitializerOp>(op);
      std::optional<SymbolTable::UseRange> uses =
          SymbolTable::getSymbolUses(tensor, module);
      if (!uses)
        continue;
      SmallVector<Operation *> constants;
      bool unused = true;
      for (const SymbolTable::SymbolUse &use : *uses) {
        Operation *user = use.getUser();
        bool reader = isa<ONNXConstantOp>(user) || constantNodeValue(user);
        unused &= reader && user->use_empty();
        constants.push_back(user);
      }
      if (!unused)
        continue;
      for (Operation *constant : constants)
        constant->erase();
      tensor.erase();
    }
    renameWeights(module);
    if (changedTypes)
      updateFunctionTypes(module);
  }

  /// Weights whose initializer went away take its symbol; the others keep
  /// "<symbol>.lowbit".
  void renameWeights(ModuleOp module) {
    for (auto &[key, weight] : weights) {
      StringRef symbol = weight.getSymName();
      if (!symbol.ends_with(".lowbit"))
        continue;
      StringRef base = symbol.drop_back(strlen(".lowbit"));
      if (SymbolTable::lookupSymbolIn(module, base))
        continue;
      StringAttr newName = StringAttr::get(module.getContext(), base);
      if (failed(SymbolTable::replaceAllSymbolUses(weight.getSymNameAttr(),
                                                   newName, module)))
        return signalPassFailure();
      weight.setSymName(base);
    }
  }

  /// A matmul result may be typed more precisely than the node's: function
  /// results follow their returned values.
  static void updateFunctionTypes(ModuleOp module) {
    module.walk([](func::FuncOp func) {
      if (func.isExternal())
        return;
      Operation *terminator = func.front().getTerminator();
      func.setFunctionType(FunctionType::get(
          func.getContext(), func.getArgumentTypes(),
          terminator->getOperandTypes()));
    });
  }

  SymbolTableCollection *symbols = nullptr;
  std::map<std::pair<Operation *, bool>, GlobalWeightOp> weights;
  llvm::DenseMap<Operation *, bool> firstLayout;
  bool changedTypes = false;
};

} // namespace
