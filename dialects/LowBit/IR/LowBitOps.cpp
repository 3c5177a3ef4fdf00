//===- LowBitOps.cpp - lowbit op verifiers --------------------------------===//
#include "LowBit/IR/LowBit.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>

using namespace mlir;
using namespace mlir::lowbit;

/// Shape of a weight-like operand (qtensor or ranked f32 tensor).
static ArrayRef<int64_t> weightShape(Type type) {
  if (auto q = dyn_cast<QTensorType>(type))
    return q.getShape();
  return cast<RankedTensorType>(type).getShape();
}

/// Two dimensions agree when equal or when either is dynamic.
static bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static LogicalResult expectRank(Operation *op, StringRef what, Type type,
                                int64_t rank) {
  if (static_cast<int64_t>(weightShape(type).size()) != rank)
    return op->emitOpError() << what << " must have rank " << rank << ", got "
                             << type;
  return success();
}

//===----------------------------------------------------------------------===//
// GlobalWeightOp / WeightOp
//===----------------------------------------------------------------------===//

LogicalResult GlobalWeightOp::verify() {
  QTensorType type = getWeightType();
  uint64_t expected = type.getByteSize();
  Attribute data = getData();
  if (auto external = dyn_cast<ExternalDataAttr>(data)) {
    if (external.getSize() != expected)
      return emitOpError() << "external data holds " << external.getSize()
                           << " bytes but " << type << " needs " << expected;
    if (external.getPath().empty())
      return emitOpError() << "external data has an empty path";
    return success();
  }
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(data)) {
    ShapedType shaped = resource.getType();
    if (!shaped.getElementType().isInteger(8) || shaped.getRank() != 1)
      return emitOpError() << "resource data must be a 1-D tensor of i8, got "
                           << shaped;
    if (static_cast<uint64_t>(shaped.getNumElements()) != expected)
      return emitOpError() << "resource data holds " << shaped.getNumElements()
                           << " bytes but " << type << " needs " << expected;
    return success();
  }
  return emitOpError() << "data must be #lowbit.external or a dense_resource, "
                          "got "
                       << data;
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto global =
      symbolTable.lookupNearestSymbolFrom<GlobalWeightOp>(*this, getNameAttr());
  if (!global)
    return emitOpError() << "'" << getName()
                         << "' does not name a lowbit.global_weight";
  if (global.getWeightType() != getType())
    return emitOpError() << "type " << getType() << " differs from "
                         << global.getWeightType() << " of @" << getName();
  return success();
}

//===----------------------------------------------------------------------===//
// Compute ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  if (failed(expectRank(*this, "table", getTable().getType(), 2)) ||
      failed(expectRank(*this, "result", getResult().getType(), 2)))
    return failure();
  ArrayRef<int64_t> table = weightShape(getTable().getType());
  ArrayRef<int64_t> result = getResult().getType().getShape();
  int64_t tokens = getIds().getType().getDimSize(0);
  if (!compatible(result[0], tokens) || !compatible(result[1], table[1]))
    return emitOpError() << "result " << getResult().getType()
                         << " must be [tokens, " << table[1] << "]";
  return success();
}

LogicalResult MatmulOp::verify() {
  if (failed(expectRank(*this, "weight", getWeight().getType(), 2)))
    return failure();
  ArrayRef<int64_t> input = getInput().getType().getShape();
  ArrayRef<int64_t> weight = weightShape(getWeight().getType());
  ArrayRef<int64_t> result = getResult().getType().getShape();
  // [tokens, K] in models lowbit builds; ONNX graphs may add leading
  // (batch) dimensions, which pass through.
  if (input.size() < 2)
    return emitOpError() << "input must have rank 2 or more, got "
                         << getInput().getType();
  if (result.size() != input.size())
    return emitOpError() << "result " << getResult().getType()
                         << " must have the input's rank " << input.size();
  if (!compatible(input.back(), weight[1]))
    return emitOpError() << "input width " << input.back()
                         << " does not match the weight's row length "
                         << weight[1];
  for (size_t i = 0; i + 1 < input.size(); ++i)
    if (!compatible(result[i], input[i]))
      return emitOpError() << "result " << getResult().getType()
                           << " must keep the input's leading dimensions";
  if (!compatible(result.back(), weight[0]))
    return emitOpError() << "result " << getResult().getType()
                         << " must end in the weight's " << weight[0]
                         << " rows";
  if (Value bias = getBias()) {
    ArrayRef<int64_t> b = weightShape(bias.getType());
    if (b.size() != 1 || !compatible(b[0], weight[0]))
      return emitOpError() << "bias must be 1-D of size " << weight[0];
  }
  return success();
}

/// Norm weights are 1-D and as wide as the normalised dimension.
static LogicalResult verifyNorm(Operation *op, RankedTensorType input,
                                Type weight, Value bias, Type result) {
  if (input != result)
    return op->emitOpError() << "result type " << result
                             << " must equal the input type " << input;
  int64_t width = input.getShape().back();
  ArrayRef<int64_t> w = weightShape(weight);
  if (w.size() != 1 || !compatible(w[0], width))
    return op->emitOpError() << "weight must be 1-D of size " << width
                             << ", got " << weight;
  if (bias) {
    ArrayRef<int64_t> b = weightShape(bias.getType());
    if (b.size() != 1 || !compatible(b[0], width))
      return op->emitOpError() << "bias must be 1-D of size " << width;
  }
  return success();
}

LogicalResult RMSNormOp::verify() {
  if (getEpsilon().convertToFloat() <= 0)
    return emitOpError() << "epsilon must be positive";
  std::optional<int64_t> group = getGroup();
  if (!group)
    return verifyNorm(*this, getInput().getType(), getWeight().getType(), {},
                      getResult().getType());
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type " << getResult().getType()
                         << " must equal the input type "
                         << getInput().getType();
  int64_t width = getInput().getType().getShape().back();
  if (*group <= 0 || (!ShapedType::isDynamic(width) && width % *group != 0))
    return emitOpError() << "group " << *group
                         << " must be positive and divide the width " << width;
  ArrayRef<int64_t> w = weightShape(getWeight().getType());
  if (w.size() != 1 || !compatible(w[0], *group))
    return emitOpError() << "weight must be 1-D of size group = " << *group
                         << ", got " << getWeight().getType();
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (getEpsilon().convertToFloat() <= 0)
    return emitOpError() << "epsilon must be positive";
  return verifyNorm(*this, getInput().getType(), getWeight().getType(),
                    getBias(), getResult().getType());
}

LogicalResult RopeOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)))
    return failure();
  int64_t heads = getHeads(), headDim = getHeadDim(), ropeDims = getRopeDims();
  if (heads <= 0 || headDim <= 0)
    return emitOpError() << "heads and head_dim must be positive";
  if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0)
    return emitOpError() << "rope_dims must be even and in (0, head_dim = "
                         << headDim << "], got " << ropeDims;
  ArrayRef<int64_t> input = getInput().getType().getShape();
  if (!compatible(input[1], heads * headDim))
    return emitOpError() << "input width " << input[1]
                         << " must be heads * head_dim = " << heads * headDim;
  if (!compatible(input[0], getPositions().getType().getDimSize(0)))
    return emitOpError() << "needs one position per token";
  if (getTheta().convertToFloat() <= 0)
    return emitOpError() << "theta must be positive";
  if (!(getFreqScale().convertToFloat() > 0))
    return emitOpError() << "freq_scale must be positive";
  if (getExtFactor().convertToFloat() != 0 && getOriginalContext() <= 0)
    return emitOpError()
           << "YaRN (ext_factor != 0) needs the original context length "
              "(original_context > 0)";
  for (Value factors : {getFactors(), getLongFactors()}) {
    if (!factors)
      continue;
    ArrayRef<int64_t> f = weightShape(factors.getType());
    if (f.size() != 1 || !compatible(f[0], ropeDims / 2))
      return emitOpError() << "factors must be 1-D of size rope_dims / 2 = "
                           << ropeDims / 2 << ", got " << factors.getType();
  }
  if (getLongFactors() && (!getFactors() || getOriginalContext() <= 0))
    return emitOpError() << "long_factors need factors (the short ones) and "
                            "original_context > 0";
  return success();
}

LogicalResult MoEFFNOp::verify() {
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type must equal the input type";
  const int64_t width = getInput().getType().getShape().back();
  ArrayRef<int64_t> router = weightShape(getRouter().getType());
  if (router.size() != 2 || !compatible(router[1], width))
    return emitOpError() << "router must be [experts, " << width << "]";
  const int64_t experts = router[0];
  ArrayRef<int64_t> gate = weightShape(getGateExps().getType());
  ArrayRef<int64_t> up = weightShape(getUpExps().getType());
  ArrayRef<int64_t> down = weightShape(getDownExps().getType());
  if (gate.size() != 3 || up != gate || down.size() != 3 ||
      gate[0] != experts || down[0] != experts || gate[2] != width ||
      down[1] != width || down[2] != gate[1])
    return emitOpError() << "expert weights must be gate/up [" << experts
                         << ", ffn, " << width << "] and down [" << experts
                         << ", " << width << ", ffn]";
  const int64_t topK = static_cast<int64_t>(getTopK());
  if (topK <= 0 || topK > experts)
    return emitOpError() << "top_k must be in [1, " << experts << "], got "
                         << topK;
  if (!getShared().empty()) {
    if (getShared().size() != 4)
      return emitOpError() << "shared expert needs gate, up, down and gate_inp";
    ArrayRef<int64_t> sg = weightShape(getShared()[0].getType());
    ArrayRef<int64_t> su = weightShape(getShared()[1].getType());
    ArrayRef<int64_t> sd = weightShape(getShared()[2].getType());
    ArrayRef<int64_t> si = weightShape(getShared()[3].getType());
    if (sg.size() != 2 || su != sg || sg[1] != width || sd.size() != 2 ||
        sd[0] != width || sd[1] != sg[0] || si.size() != 1 || si[0] != width)
      return emitOpError() << "shared expert weights must be gate/up [ffn, "
                           << width << "], down [" << width
                           << ", ffn] and gate_inp [" << width << "]";
  }
  return success();
}

LogicalResult SoftCapOp::verify() {
  const float cap = getCap().convertToFloat();
  if (!(cap > 0) || !std::isfinite(cap))
    return emitOpError() << "cap must be positive and finite";
  return success();
}

LogicalResult AttentionOp::verify() {
  if (std::optional<int64_t> window = getWindow(); window && *window <= 0)
    return emitOpError() << "window must be positive, got " << *window;
  const float softcap = getSoftcap().convertToFloat();
  if (!(softcap >= 0) || !std::isfinite(softcap))
    return emitOpError() << "softcap must be >= 0 and finite";
  KVCacheType cache = getCache().getType();
  for (Value v : {getQuery(), getKey(), getValue()})
    if (failed(expectRank(*this, "query, key and value", v.getType(), 2)))
      return failure();
  int64_t heads = getHeads(), layer = getLayer();
  if (layer < 0 || layer >= cache.getLayers())
    return emitOpError() << "layer " << layer << " is outside the cache's "
                         << cache.getLayers() << " layers";
  if (heads <= 0 || heads % cache.getKvHeads() != 0)
    return emitOpError() << "heads (" << heads
                         << ") must be a positive multiple of the cache's "
                         << cache.getKvHeads() << " kv heads";
  int64_t qWidth = heads * cache.getHeadDim();
  int64_t kvWidth = cache.getKvHeads() * cache.getHeadDim();
  auto width = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getShape()[1];
  };
  if (!compatible(width(getQuery()), qWidth))
    return emitOpError() << "query width must be heads * head_dim = " << qWidth;
  if (!compatible(width(getKey()), kvWidth) ||
      !compatible(width(getValue()), kvWidth))
    return emitOpError() << "key and value width must be kv_heads * head_dim = "
                         << kvWidth;
  if (getResult().getType() != getQuery().getType())
    return emitOpError() << "result type must equal the query type";
  int64_t tokens = getQuery().getType().getShape()[0];
  for (Value v : {getKey(), getValue()})
    if (!compatible(cast<RankedTensorType>(v.getType()).getShape()[0], tokens))
      return emitOpError() << "query, key and value must have the same tokens";
  if (!compatible(getPositions().getType().getDimSize(0), tokens))
    return emitOpError() << "needs one position per token";
  return success();
}

//===----------------------------------------------------------------------===//
// Quantize / dequantize
//===----------------------------------------------------------------------===//

static LogicalResult verifySameShape(Operation *op, RankedTensorType tensor,
                                     QTensorType qtensor) {
  if (tensor.getShape() != qtensor.getShape())
    return op->emitOpError() << "shapes of " << tensor << " and " << qtensor
                             << " differ";
  return success();
}

LogicalResult QuantizeOp::verify() {
  return verifySameShape(*this, getInput().getType(), getResult().getType());
}

LogicalResult DequantizeOp::verify() {
  return verifySameShape(*this, getResult().getType(), getInput().getType());
}

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

LogicalResult SplitOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)))
    return failure();
  ArrayRef<int64_t> sizes = getSizes();
  if (sizes.size() != getResults().size())
    return emitOpError() << "has " << sizes.size() << " sizes but "
                         << getResults().size() << " results";
  int64_t total = 0;
  for (auto [size, result] : llvm::zip(sizes, getResults())) {
    if (size <= 0)
      return emitOpError() << "sizes must be positive";
    total += size;
    auto type = cast<RankedTensorType>(result.getType());
    if (type.getRank() != 2 ||
        !compatible(type.getShape()[0], getInput().getType().getShape()[0]) ||
        !compatible(type.getShape()[1], size))
      return emitOpError() << "result " << type << " must be [tokens, " << size
                           << "]";
  }
  if (!compatible(getInput().getType().getShape()[1], total))
    return emitOpError() << "sizes add up to " << total
                         << " but the input has "
                         << getInput().getType().getShape()[1] << " columns";
  return success();
}

/// Bytes of one row of `cols` activations in `format`, or an error when the
/// row does not fill whole blocks.
static FailureOr<int64_t> quantizedRowBytes(Operation *op, FormatAttr format,
                                            int64_t cols) {
  if (cols % format.getBlockSize() != 0)
    return op->emitOpError() << "rows of " << cols << " values do not fill "
                             << format.getName() << " blocks of "
                             << format.getBlockSize();
  return static_cast<int64_t>(format.getByteSize(1, cols));
}

LogicalResult RMSNormQuantOp::verify() {
  if (getEpsilon().convertToFloat() <= 0)
    return emitOpError() << "epsilon must be positive";
  if (failed(verifyNorm(*this, getInput().getType(), getWeight().getType(), {},
                        getResult().getType())))
    return failure();
  if (failed(expectRank(*this, "quantized", getQuantized().getType(), 2)))
    return failure();
  int64_t width = getInput().getType().getShape().back();
  if (ShapedType::isDynamic(width))
    return emitOpError() << "needs a static row width";
  FailureOr<int64_t> bytes = quantizedRowBytes(*this, getActFormat(), width);
  if (failed(bytes))
    return failure();
  ArrayRef<int64_t> q = getQuantized().getType().getShape();
  if (!compatible(q[0], getInput().getType().getShape()[0]) ||
      !compatible(q[1], *bytes))
    return emitOpError() << "quantized rows of " << width << " values in "
                         << getActFormat().getName() << " are " << *bytes
                         << " bytes, got " << getQuantized().getType();
  return success();
}

LogicalResult QMatmulOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "weight", getWeight().getType(), 2)) ||
      failed(expectRank(*this, "result", getResult().getType(), 2)))
    return failure();
  ArrayRef<int64_t> weight = getWeight().getType().getShape();
  FailureOr<int64_t> bytes = quantizedRowBytes(*this, getActFormat(), weight[1]);
  if (failed(bytes))
    return failure();
  ArrayRef<int64_t> input = getInput().getType().getShape();
  if (!compatible(input[1], *bytes))
    return emitOpError() << "input rows must be " << *bytes << " bytes ("
                         << weight[1] << " values in "
                         << getActFormat().getName() << "), got " << input[1];
  ArrayRef<int64_t> result = getResult().getType().getShape();
  if (!compatible(result[0], input[0]) || !compatible(result[1], weight[0]))
    return emitOpError() << "result " << getResult().getType()
                         << " must be [tokens, " << weight[0] << "]";
  return success();
}

LogicalResult MatmulResidualOp::verify() {
  if (failed(expectRank(*this, "input", getInput().getType(), 2)) ||
      failed(expectRank(*this, "weight", getWeight().getType(), 2)))
    return failure();
  ArrayRef<int64_t> input = getInput().getType().getShape();
  ArrayRef<int64_t> weight = weightShape(getWeight().getType());
  if (!compatible(input[1], weight[1]))
    return emitOpError() << "input width " << input[1]
                         << " does not match the weight's row length "
                         << weight[1];
  if (getResidual().getType() != getResult().getType())
    return emitOpError() << "residual type " << getResidual().getType()
                         << " must equal the result type "
                         << getResult().getType();
  ArrayRef<int64_t> result = getResult().getType().getShape();
  if (result.size() != 2 || !compatible(result[0], input[0]) ||
      !compatible(result[1], weight[0]))
    return emitOpError() << "result " << getResult().getType()
                         << " must be [tokens, " << weight[0] << "]";
  return success();
}

//===----------------------------------------------------------------------===//
// ONNX graphs
//===----------------------------------------------------------------------===//

int64_t mlir::lowbit::getONNXStorageBytes(RankedTensorType type) {
  Type element = type.getElementType();
  int64_t bits = 0;
  if (auto complex = dyn_cast<ComplexType>(element))
    bits = 2 * complex.getElementType().getIntOrFloatBitWidth();
  else if (element.isIntOrFloat())
    // ONNX stores a bool in a byte.
    bits = std::max<int64_t>(element.getIntOrFloatBitWidth(),
                             element.isInteger(1) ? 8 : 1);
  if (bits == 0 || !type.hasStaticShape())
    return -1;
  int64_t count = type.getNumElements();
  if (count < 0 || count > (INT64_MAX - 7) / bits)
    return -1;
  return (count * bits + 7) / 8;
}

LogicalResult ONNXInitializerOp::verify() {
  RankedTensorType type = getTensorType();
  if (!type.hasStaticShape())
    return emitOpError() << "type " << type << " must have a static shape";
  Attribute data = getData();
  if (auto external = dyn_cast<ExternalDataAttr>(data)) {
    int64_t bytes = getONNXStorageBytes(type);
    if (bytes < 0 || external.getSize() != uint64_t(bytes))
      return emitOpError() << "external data of " << external.getSize()
                           << " bytes, but " << type << " takes " << bytes;
    return success();
  }
  if (auto elements = dyn_cast<ElementsAttr>(data)) {
    if (elements.getShapedType() != type)
      return emitOpError() << "data of type " << elements.getShapedType()
                           << " differs from " << type;
    return success();
  }
  return emitOpError() << "data must be #lowbit.external or elements";
}

LogicalResult
ONNXConstantOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto tensor = symbolTable.lookupNearestSymbolFrom<ONNXInitializerOp>(
      *this, getTensorAttr());
  if (!tensor)
    return emitOpError() << "'" << getTensor()
                         << "' does not name a lowbit.onnx.initializer";
  if (tensor.getType() != getType())
    return emitOpError() << "type " << getType() << " differs from "
                         << tensor.getType() << " of @" << getTensor();
  return success();
}

LogicalResult ONNXNodeOp::verify() {
  if (getOpType().empty())
    return emitOpError() << "needs an op_type";
  if (std::optional<ArrayAttr> outputs = getOutputs();
      outputs && outputs->size() != getNumResults())
    return emitOpError() << "names " << outputs->size() << " outputs but has "
                         << getNumResults() << " results";
  size_t subgraphCount = getSubgraphs() ? getSubgraphs()->size() : 0;
  if (subgraphCount != getGraphs().size())
    return emitOpError() << "names " << subgraphCount << " subgraphs but has "
                         << getGraphs().size() << " regions";
  for (Region &region : getGraphs())
    if (region.empty() || !isa<ONNXYieldOp>(region.front().getTerminator()))
      return emitOpError() << "subgraph regions must end in lowbit.onnx.yield";
  for (NamedAttribute attr : getOnnxAttributes()) {
    Attribute value = attr.getValue();
    bool stringArray =
        isa<ArrayAttr>(value) &&
        llvm::all_of(cast<ArrayAttr>(value),
                     [](Attribute a) { return isa<StringAttr>(a); });
    auto integer = dyn_cast<IntegerAttr>(value);
    auto real = dyn_cast<FloatAttr>(value);
    if (!(integer && integer.getType().isInteger(64)) &&
        !(real && real.getType().isF32()) && !isa<StringAttr>(value) &&
        !isa<DenseI64ArrayAttr, DenseF32ArrayAttr, FlatSymbolRefAttr>(value) &&
        !stringArray)
      return emitOpError() << "attribute '" << attr.getName().getValue()
                           << "' has no ONNX attribute type: " << value;
  }
  if (std::optional<ArrayAttr> order = getAttributeOrder()) {
    size_t expected = getOnnxAttributes().size() + subgraphCount;
    llvm::StringSet<> seen;
    for (Attribute name : *order) {
      StringRef text = cast<StringAttr>(name).getValue();
      bool known = getOnnxAttributes().contains(text) ||
                   (getSubgraphs() &&
                    llvm::is_contained(getSubgraphs()->getAsValueRange<StringAttr>(),
                                       text));
      if (!known || !seen.insert(text).second)
        return emitOpError() << "attribute_order names '" << text
                             << "', which is not an attribute or is repeated";
    }
    if (seen.size() != expected)
      return emitOpError() << "attribute_order must name all " << expected
                           << " attributes";
  }
  return success();
}

#define GET_OP_CLASSES
#include "LowBit/IR/LowBitOps.cpp.inc"
