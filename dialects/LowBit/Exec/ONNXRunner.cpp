//===- ONNXRunner.cpp - Run an imported ONNX graph ------------------------===//
#include "LowBit/Exec/ONNXRunner.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/ONNXImport.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/ONNX/ONNXFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <map>

using namespace mlir;
using namespace mlir::lowbit;
namespace onnxrt = ::lowbit::onnxrt;

namespace {

class Runner {
public:
  Runner(ModuleOp module, const MatmulObserver &observe)
      : module(module), observe(observe) {
    if (auto imports = module->getAttrOfType<ArrayAttr>("onnx.opset_import"))
      for (Attribute entry : imports) {
        auto pair = cast<ArrayAttr>(entry);
        std::string domain =
            pair.size() == 2 ? cast<StringAttr>(pair[0]).str() : "";
        if (domain == "ai.onnx")
          domain = "";
        opsets[domain] = cast<IntegerAttr>(pair.getValue().back()).getInt();
      }
  }

  FailureOr<std::vector<onnxrt::Tensor>>
  run(ArrayRef<onnxrt::Tensor> inputs) {
    auto func = module.lookupSymbol<func::FuncOp>("forward");
    if (!func || func.isExternal())
      return module.emitError() << "no func.func @forward to run", failure();
    Block &block = func.front();
    if (inputs.size() != block.getNumArguments())
      return func.emitError() << "takes " << block.getNumArguments()
                              << " inputs, got " << inputs.size(),
             failure();
    for (auto [arg, tensor] : llvm::zip(block.getArguments(), inputs))
      values[arg] = tensor;
    for (Operation &op : block) {
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        std::vector<onnxrt::Tensor> results;
        for (Value v : ret.getOperands()) {
          const onnxrt::Tensor *t = lookup(v);
          if (!t)
            return ret.emitError() << "returns a value without data",
                   failure();
          results.push_back(*t);
        }
        return results;
      }
      if (failed(step(op)))
        return failure();
    }
    return func.emitError() << "@forward has no return", failure();
  }

private:
  const onnxrt::Tensor *lookup(Value v) {
    auto it = values.find(v);
    return it == values.end() ? nullptr : &it->second;
  }

  /// An ONNX tensor's values.
  FailureOr<onnxrt::Tensor> loadTensor(ONNXInitializerOp op) {
    auto it = tensors.find(op);
    if (it != tensors.end())
      return it->second;
    onnxrt::Tensor t;
    RankedTensorType type = op.getTensorType();
    t.dataType = getONNXDataType(type.getElementType());
    t.shape.assign(type.getShape().begin(), type.getShape().end());
    int64_t count = type.getNumElements();
    if (auto dense = dyn_cast<DenseElementsAttr>(op.getData());
        dense && (dense.isSplat() || type.getElementType().isInteger(1))) {
      if (type.getElementType().isInteger(1)) {
        for (bool b : dense.getValues<bool>())
          t.values.push_back(b);
      } else {
        std::vector<double> one;
        if (!::lowbit::onnxfile::decodeElements(
                t.dataType,
                reinterpret_cast<const uint8_t *>(dense.getRawData().data()),
                1, one))
          return op.emitError() << "element type " << type.getElementType()
                                << " is not run by the executor yet",
                 failure();
        t.values.assign(count, one[0]);
      }
    } else {
      std::string error;
      const uint8_t *bytes = getONNXTensorBytes(op, error);
      if (!bytes)
        return op.emitError() << error, failure();
      if (!::lowbit::onnxfile::decodeElements(t.dataType, bytes, count,
                                              t.values))
        return op.emitError() << "element type " << type.getElementType()
                              << " is not run by the executor yet",
               failure();
    }
    return tensors[op] = t;
  }

  /// A stored weight decoded to f32 [rows, cols].
  FailureOr<onnxrt::Tensor> loadWeight(WeightOp ref) {
    auto weight = symbols.lookupNearestSymbolFrom<GlobalWeightOp>(
        ref, ref.getNameAttr());
    if (!weight)
      return ref.emitError() << "names no weight", failure();
    QTensorType type = weight.getWeightType();
    std::string error;
    const uint8_t *bytes = getWeightBytes(weight, error);
    if (!bytes)
      return weight.emitError() << error, failure();
    onnxrt::Tensor t;
    t.shape.assign(type.getShape().begin(), type.getShape().end());
    std::vector<float> decoded(type.getNumElements());
    ::lowbit::formats::dequantizeRows(type.getFormat().getFormat(), bytes,
                                      decoded.data(), type.getNumRows(),
                                      type.getRowLength(), 0);
    t.values.assign(decoded.begin(), decoded.end());
    return t;
  }

  LogicalResult attributesOf(ONNXNodeOp node, onnxrt::Attributes &out) {
    for (NamedAttribute attr : node.getOnnxAttributes()) {
      std::string name = attr.getName().str();
      Attribute value = attr.getValue();
      if (auto i = dyn_cast<IntegerAttr>(value))
        out.ints[name] = i.getInt();
      else if (auto f = dyn_cast<FloatAttr>(value))
        out.floats[name] = f.getValueAsDouble();
      else if (auto s = dyn_cast<StringAttr>(value))
        out.strings[name] = s.str();
      else if (auto ints = dyn_cast<DenseI64ArrayAttr>(value))
        out.intLists[name].assign(ints.asArrayRef().begin(),
                                  ints.asArrayRef().end());
      else if (auto floats = dyn_cast<DenseF32ArrayAttr>(value))
        out.floatLists[name].assign(floats.asArrayRef().begin(),
                                    floats.asArrayRef().end());
      else if (auto symbol = dyn_cast<FlatSymbolRefAttr>(value)) {
        auto tensor =
            symbols.lookupNearestSymbolFrom<ONNXInitializerOp>(node, symbol);
        if (!tensor)
          return node.emitError() << "attribute '" << name
                                  << "' names no tensor";
        FailureOr<onnxrt::Tensor> t = loadTensor(tensor);
        if (failed(t))
          return failure();
        out.tensors[name] = *t;
      }
    }
    return success();
  }

  LogicalResult step(Operation &op) {
    if (auto constant = dyn_cast<ONNXConstantOp>(op)) {
      auto tensor = symbols.lookupNearestSymbolFrom<ONNXInitializerOp>(
          constant, constant.getTensorAttr());
      if (!tensor)
        return constant.emitError() << "names no tensor";
      FailureOr<onnxrt::Tensor> t = loadTensor(tensor);
      if (failed(t))
        return failure();
      values[constant] = *t;
      return success();
    }
    if (isa<ONNXNoneOp>(op))
      return success();
    if (auto ref = dyn_cast<WeightOp>(op)) {
      // Gathers read the decoded table; matmuls decode it themselves.
      if (llvm::any_of(ref->getUsers(),
                       [](Operation *u) { return isa<ONNXNodeOp>(u); })) {
        FailureOr<onnxrt::Tensor> t = loadWeight(ref);
        if (failed(t))
          return failure();
        values[ref] = *t;
      }
      return success();
    }
    if (auto matmul = dyn_cast<MatmulOp>(op))
      return runMatmul(matmul);
    auto node = dyn_cast<ONNXNodeOp>(op);
    if (!node)
      return op.emitError() << "'" << op.getName()
                            << "' is not run by the ONNX executor";
    if (!node.getGraphs().empty())
      return node.emitError()
             << node.getOpType()
             << ": subgraphs (If/Loop/Scan) are not run by the executor yet";
    std::vector<const onnxrt::Tensor *> inputs;
    for (Value v : node.getInputs()) {
      if (isa_and_nonnull<ONNXNoneOp>(v.getDefiningOp())) {
        inputs.push_back(nullptr);
        continue;
      }
      const onnxrt::Tensor *t = lookup(v);
      if (!t)
        return node.emitError() << "an input has no data";
      inputs.push_back(t);
    }
    onnxrt::Attributes attrs;
    if (failed(attributesOf(node, attrs)))
      return failure();
    std::string domain = node.getDomain() ? node.getDomain()->str() : "";
    if (domain == "ai.onnx")
      domain = "";
    int64_t opset = opsets.count(domain) ? opsets[domain] : 1;
    std::vector<onnxrt::Tensor> outputs;
    std::string error;
    if (!onnxrt::runOperator(domain, node.getOpType().str(), opset, inputs,
                             attrs, node.getNumResults(), outputs, error))
      return node.emitError() << error;
    for (auto [index, result] : llvm::enumerate(node.getResults())) {
      if (index < outputs.size()) {
        values[result] = std::move(outputs[index]);
        continue;
      }
      if (!result.use_empty())
        return node.emitError() << node.getOpType() << ": output " << index
                                << " is not run by the executor yet";
    }
    return success();
  }

  LogicalResult runMatmul(MatmulOp op) {
    const onnxrt::Tensor *x = lookup(op.getInput());
    auto ref = op.getWeight().getDefiningOp<WeightOp>();
    if (!x || !ref)
      return op.emitError() << "needs an input and a stored weight";
    auto weight = symbols.lookupNearestSymbolFrom<GlobalWeightOp>(
        ref, ref.getNameAttr());
    FailureOr<onnxrt::Tensor> w = loadWeight(ref);
    if (failed(w))
      return failure();
    int64_t n = w->shape[0], k = w->shape[1];
    if (x->shape.empty() || x->shape.back() != k)
      return op.emitError() << "input width differs from the weight's";
    if (observe)
      observe(weight, *x);
    onnxrt::Tensor y;
    y.dataType = 1;
    y.shape = x->shape;
    y.shape.back() = n;
    int64_t rows = x->count() / k;
    y.values.assign(rows * n, 0.0);
    const onnxrt::Tensor *bias = op.getBias() ? lookup(op.getBias()) : nullptr;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double s = bias ? bias->values[j] : 0.0;
        for (int64_t i = 0; i < k; ++i)
          s += x->values[r * k + i] * w->values[j * k + i];
        y.values[r * n + j] = s;
      }
    y.round();
    values[op.getResult()] = std::move(y);
    return success();
  }

  ModuleOp module;
  const MatmulObserver &observe;
  SymbolTableCollection symbols;
  llvm::DenseMap<Value, onnxrt::Tensor> values;
  llvm::DenseMap<Operation *, onnxrt::Tensor> tensors;
  std::map<std::string, int64_t> opsets;
};

} // namespace

FailureOr<std::vector<onnxrt::Tensor>>
mlir::lowbit::runONNXGraph(ModuleOp module, ArrayRef<onnxrt::Tensor> inputs,
                           const MatmulObserver &observe) {
  return Runner(module, observe).run(inputs);
}
