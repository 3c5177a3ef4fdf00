//===- ONNXExport.cpp - lowbit dialect -> ONNX file -----------------------===//
//
// Writes func.func @forward of lowbit.onnx.node ops (as ONNXImport makes
// them, or as passes leave them) back as an ONNX ModelProto. Everything the
// importer recorded (names, orders, dim_param names, producer fields, how
// each tensor was stored) is written as it was, so an imported model that no
// pass changed comes out byte for byte the same.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Translation/ONNXExport.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/ONNXImport.h"
#include "lowbit/Support/MappedFile.h"

#include "onnx/onnx_pb.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSet.h"

#include "lowbit/Formats/Formats.h"

#include <climits>
#include <deque>

using namespace mlir;
using namespace mlir::lowbit;

namespace {

class ONNXExporter {
public:
  ONNXExporter(ModuleOp module, const ONNXExportOptions &options)
      : module(module), options(options) {}

  LogicalResult run(onnx::ModelProto &proto);

  /// Tensors to write to the external data file, in order.
  struct ExternalTensor {
    onnx::TensorProto *proto;
    const uint8_t *bytes;
    uint64_t size;
  };
  std::vector<ExternalTensor> externalTensors;

private:
  LogicalResult fail(Operation *op, const llvm::Twine &message) {
    return op->emitError() << message;
  }
  std::string nameOf(Value value);
  void setName(Value value, llvm::StringRef name);
  LogicalResult exportType(Type type, ArrayAttr dims, onnx::TypeProto &out,
                           Location at);
  LogicalResult exportValueInfo(DictionaryAttr info, Value value,
                                onnx::ValueInfoProto &out, Location at);
  LogicalResult exportTensor(ONNXInitializerOp op, onnx::TensorProto &out);
  LogicalResult exportNode(ONNXNodeOp op, onnx::NodeProto &out);
  LogicalResult exportBlock(Block &block, ArrayAttr inputInfos,
                            ArrayAttr outputInfos, ArrayAttr valueInfo,
                            onnx::GraphProto &out);
  LogicalResult exportMatmul(MatmulOp op, onnx::GraphProto &graph);
  /// A Gather whose table is a lowbit weight: Gather over f32, or
  /// com.microsoft GatherBlockQuantized.
  LogicalResult exportGather(ONNXNodeOp op, onnx::GraphProto &graph);
  /// Adds an initializer holding `bytes` (kept alive by the exporter).
  void addInitializer(onnx::GraphProto &graph, const std::string &name,
                      int32_t dataType, ArrayRef<int64_t> dims,
                      std::vector<uint8_t> bytes, bool external);
  /// A name no value or initializer has yet, from `base`.
  std::string freshName(const std::string &base);

  ModuleOp module;
  const ONNXExportOptions &options;
  /// Bytes of the initializers the exporter makes (MatMulNBits weights).
  std::deque<std::vector<uint8_t>> ownedBytes;
  /// The initializer names of the weights already written (tied weights),
  /// as matmul weights and as gather tables.
  llvm::DenseMap<Operation *, SmallVector<std::string>> writtenWeights;
  llvm::DenseMap<Operation *, SmallVector<std::string>> writtenTables;

public:
  /// Whether a com.microsoft op was written (the opset import it needs).
  bool usesContribOps = false;
  /// The model's opset of the default domain (0 when it imports none).
  int64_t defaultOpset = 0;

private:
  llvm::DenseMap<Value, std::string> names;
  llvm::StringSet<> usedNames;
  SymbolTableCollection symbolTables;
};

} // namespace

void ONNXExporter::setName(Value value, llvm::StringRef name) {
  names[value] = name.str();
  usedNames.insert(name);
}

std::string ONNXExporter::nameOf(Value value) {
  if (auto it = names.find(value); it != names.end())
    return it->second;
  // A value a pass created: give it a fresh name.
  for (unsigned n = names.size();; ++n) {
    std::string candidate = "lowbit_" + std::to_string(n);
    if (!usedNames.count(candidate)) {
      setName(value, candidate);
      return candidate;
    }
  }
}

LogicalResult ONNXExporter::exportType(Type type, ArrayAttr dims,
                                       onnx::TypeProto &out, Location at) {
  if (isa<NoneType>(type))
    return success();
  auto tensor = dyn_cast<TensorType>(type);
  int32_t dataType = tensor ? getONNXDataType(tensor.getElementType()) : 0;
  if (!dataType)
    return emitError(at) << "type " << type << " has no ONNX form";
  auto *tensorType = out.mutable_tensor_type();
  tensorType->set_elem_type(dataType);
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked)
    return success();
  auto *shape = tensorType->mutable_shape();
  for (auto [index, size] : llvm::enumerate(ranked.getShape())) {
    auto *dim = shape->add_dim();
    StringRef param;
    if (dims && index < dims.size())
      param = cast<StringAttr>(dims[index]).getValue();
    if (!ShapedType::isDynamic(size))
      dim->set_dim_value(size);
    else if (!param.empty())
      dim->set_dim_param(param.str());
  }
  return success();
}

LogicalResult ONNXExporter::exportValueInfo(DictionaryAttr info, Value value,
                                            onnx::ValueInfoProto &out,
                                            Location at) {
  if (!info) {
    out.set_name(nameOf(value));
    return exportType(value.getType(), nullptr, *out.mutable_type(), at);
  }
  out.set_name(cast<StringAttr>(info.get("name")).str());
  if (auto type = info.getAs<TypeAttr>("type"))
    if (failed(exportType(type.getValue(), info.getAs<ArrayAttr>("dims"),
                          *out.mutable_type(), at)))
      return failure();
  if (auto doc = info.getAs<StringAttr>("doc_string"))
    out.set_doc_string(doc.str());
  return success();
}

/// Appends the `count` elements of `elements` (in memory order) to the
/// typed repeated field ONNX keeps `dataType` in.
static void appendTypedValues(DenseElementsAttr elements, int32_t dataType,
                              onnx::TensorProto &out) {
  Type element = elements.getElementType();
  int64_t count = elements.getNumElements();
  if (count == 0)
    return;
  if (element.isInteger(1)) {
    for (bool v : elements.getValues<bool>())
      out.add_int32_data(v ? 1 : 0);
    return;
  }
  ArrayRef<char> raw = elements.getRawData();
  int64_t width = int64_t(raw.size()) / (elements.isSplat() ? 1 : count);
  auto at = [&](int64_t i) {
    return raw.data() + (elements.isSplat() ? 0 : i * width);
  };
  for (int64_t i = 0; i < count; ++i) {
    const char *p = at(i);
    // The element at p as a T (unaligned, little-endian like the host).
    auto load = [p](auto sample) {
      decltype(sample) v;
      memcpy(&v, p, sizeof(v));
      return v;
    };
    switch (dataType) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::COMPLEX64:
      for (int64_t part = 0; part < width / 4; ++part) {
        float v;
        memcpy(&v, p + 4 * part, 4);
        out.add_float_data(v);
      }
      break;
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::COMPLEX128:
      for (int64_t part = 0; part < width / 8; ++part) {
        double v;
        memcpy(&v, p + 8 * part, 8);
        out.add_double_data(v);
      }
      break;
    case onnx::TensorProto::INT64:
      out.add_int64_data(load(int64_t()));
      break;
    case onnx::TensorProto::UINT32:
      out.add_uint64_data(load(uint32_t()));
      break;
    case onnx::TensorProto::UINT64:
      out.add_uint64_data(load(uint64_t()));
      break;
    case onnx::TensorProto::INT8:
      out.add_int32_data(load(int8_t()));
      break;
    case onnx::TensorProto::INT16:
      out.add_int32_data(load(int16_t()));
      break;
    case onnx::TensorProto::INT32:
      out.add_int32_data(load(int32_t()));
      break;
    default: {
      // UINT8, UINT16, the 16- and 8-bit floats: their bit patterns.
      uint32_t v = 0;
      memcpy(&v, p, std::min<int64_t>(width, 4));
      out.add_int32_data(int32_t(v));
      break;
    }
    }
  }
}

LogicalResult ONNXExporter::exportTensor(ONNXInitializerOp op,
                                         onnx::TensorProto &out) {
  RankedTensorType type = op.getTensorType();
  for (int64_t size : type.getShape())
    out.add_dims(size);
  int32_t dataType = getONNXDataType(type.getElementType());
  if (!dataType)
    return fail(op, "element type " + llvm::Twine(type.getElementType()
                                                      .getAbstractType()
                                                      .getName()) +
                        " has no ONNX form");
  out.set_data_type(dataType);
  if (!op->hasAttr("unnamed"))
    out.set_name(op.getONNXName().str());
  if (auto elements = dyn_cast<DenseElementsAttr>(op.getData())) {
    appendTypedValues(elements, dataType, out);
    return success();
  }
  std::string error;
  const uint8_t *bytes = getONNXTensorBytes(op, error);
  if (!bytes)
    return fail(op, error);
  uint64_t size = uint64_t(getONNXStorageBytes(type));
  if (op.getExternal() || size >= options.externalDataThreshold) {
    externalTensors.push_back({&out, bytes, size});
    return success();
  }
  out.set_raw_data(bytes, size);
  return success();
}

LogicalResult ONNXExporter::exportNode(ONNXNodeOp op, onnx::NodeProto &out) {
  for (Value input : op.getInputs())
    out.add_input(isa_and_nonnull<ONNXNoneOp>(input.getDefiningOp())
                      ? std::string()
                      : nameOf(input));
  for (auto [index, result] : llvm::enumerate(op.getResults())) {
    StringRef name;
    if (std::optional<ArrayAttr> outputs = op.getOutputs())
      name = cast<StringAttr>((*outputs)[index]).getValue();
    if (!name.empty())
      setName(result, name);
    // An unnamed result nothing uses is an omitted optional output.
    out.add_output(name.empty() && result.use_empty() ? std::string()
                                                      : nameOf(result));
  }
  if (op.getName())
    out.set_name(op.getName()->str());
  out.set_op_type(op.getOpType().str());
  if (op.getDomain())
    out.set_domain(op.getDomain()->str());
  if (op.getDocString())
    out.set_doc_string(op.getDocString()->str());

  // Attribute order: as recorded, else sorted by name.
  SmallVector<StringRef> order;
  if (std::optional<ArrayAttr> recorded = op.getAttributeOrder()) {
    for (Attribute name : *recorded)
      order.push_back(cast<StringAttr>(name).getValue());
  } else {
    for (NamedAttribute attr : op.getOnnxAttributes())
      order.push_back(attr.getName().getValue());
    if (std::optional<ArrayAttr> subgraphs = op.getSubgraphs())
      for (Attribute name : *subgraphs)
        order.push_back(cast<StringAttr>(name).getValue());
    llvm::sort(order);
  }
  for (StringRef name : order) {
    onnx::AttributeProto *attr = out.add_attribute();
    attr->set_name(name.str());
    if (std::optional<ArrayAttr> subgraphs = op.getSubgraphs()) {
      auto names = subgraphs->getAsValueRange<StringAttr>();
      auto found = llvm::find(names, name);
      if (found != names.end()) {
        Region &region =
            op.getGraphs()[std::distance(names.begin(), found)];
        Block &block = region.front();
        auto yield = cast<ONNXYieldOp>(block.getTerminator());
        attr->set_type(onnx::AttributeProto::GRAPH);
        onnx::GraphProto *graph = attr->mutable_g();
        if (auto graphName = yield->getAttrOfType<StringAttr>("name"))
          graph->set_name(graphName.str());
        if (auto doc = yield->getAttrOfType<StringAttr>("doc_string"))
          graph->set_doc_string(doc.str());
        if (failed(exportBlock(block,
                               yield->getAttrOfType<ArrayAttr>("inputs"),
                               yield->getAttrOfType<ArrayAttr>("outputs"),
                               yield->getAttrOfType<ArrayAttr>("value_info"),
                               *graph)))
          return failure();
        continue;
      }
    }
    Attribute value = op.getOnnxAttributes().get(name);
    if (auto real = dyn_cast<FloatAttr>(value)) {
      attr->set_type(onnx::AttributeProto::FLOAT);
      attr->set_f(real.getValueAsDouble());
    } else if (auto integer = dyn_cast<IntegerAttr>(value)) {
      attr->set_type(onnx::AttributeProto::INT);
      attr->set_i(integer.getInt());
    } else if (auto string = dyn_cast<StringAttr>(value)) {
      attr->set_type(onnx::AttributeProto::STRING);
      attr->set_s(string.str());
    } else if (auto floats = dyn_cast<DenseF32ArrayAttr>(value)) {
      attr->set_type(onnx::AttributeProto::FLOATS);
      for (float v : floats.asArrayRef())
        attr->add_floats(v);
    } else if (auto ints = dyn_cast<DenseI64ArrayAttr>(value)) {
      attr->set_type(onnx::AttributeProto::INTS);
      for (int64_t v : ints.asArrayRef())
        attr->add_ints(v);
    } else if (auto strings = dyn_cast<ArrayAttr>(value)) {
      attr->set_type(onnx::AttributeProto::STRINGS);
      for (Attribute s : strings)
        attr->add_strings(cast<StringAttr>(s).str());
    } else if (auto symbol = dyn_cast<FlatSymbolRefAttr>(value)) {
      auto tensor = symbolTables.lookupNearestSymbolFrom<ONNXInitializerOp>(
          op, symbol);
      if (!tensor)
        return fail(op, "attribute '" + name + "' names no tensor");
      attr->set_type(onnx::AttributeProto::TENSOR);
      if (failed(exportTensor(tensor, *attr->mutable_t())))
        return failure();
    } else {
      return fail(op, "attribute '" + name + "' has no ONNX form");
    }
  }
  return success();
}

std::string ONNXExporter::freshName(const std::string &base) {
  if (!usedNames.count(base)) {
    usedNames.insert(base);
    return base;
  }
  for (int n = 1;; ++n) {
    std::string candidate = base + "_" + std::to_string(n);
    if (!usedNames.count(candidate)) {
      usedNames.insert(candidate);
      return candidate;
    }
  }
}

void ONNXExporter::addInitializer(onnx::GraphProto &graph,
                                  const std::string &name, int32_t dataType,
                                  ArrayRef<int64_t> dims,
                                  std::vector<uint8_t> bytes, bool external) {
  onnx::TensorProto *tensor = graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(dataType);
  for (int64_t d : dims)
    tensor->add_dims(d);
  if (external || bytes.size() >= options.externalDataThreshold) {
    ownedBytes.push_back(std::move(bytes));
    externalTensors.push_back(
        {tensor, ownedBytes.back().data(), ownedBytes.back().size()});
    return;
  }
  tensor->set_raw_data(bytes.data(), bytes.size());
}

static void addIntAttribute(onnx::NodeProto &node, const char *name,
                            int64_t value) {
  onnx::AttributeProto *attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
}

/// Packs `count` codes of `bits` bits low-first into bytes (ONNX Runtime's
/// MatMulNBits order: element i at bit (i * bits) % 8 of byte i * bits / 8).
static void packCodes(const uint8_t *codes, int64_t count, unsigned bits,
                      uint8_t *out) {
  std::memset(out, 0, (count * bits + 7) / 8);
  for (int64_t i = 0; i < count; ++i)
    out[i * bits / 8] |= uint8_t(codes[i] << ((i * bits) % 8));
}

/// lowbit.matmul over a stored weight, as
///  - MatMul with the weight (transposed back to ONNX's [K, N]) when it is
///    f32, or decoded on request (--dequantize);
///  - com.microsoft MatMulNBits (the default for quantized weights), which
///    holds the formats with an affine form (Formats.h) bit for bit: packed
///    codes, f32 scales, zero points unless they are 2^(bits - 1);
///  - or DequantizeLinear (opset 21, blocked along K) feeding MatMul, the
///    standard QDQ form, for the formats with integer zero points.
LogicalResult ONNXExporter::exportMatmul(MatmulOp op, onnx::GraphProto &graph) {
  namespace formats = ::lowbit::formats;
  auto ref = op.getWeight().getDefiningOp<WeightOp>();
  GlobalWeightOp weight =
      ref ? symbolTables.lookupNearestSymbolFrom<GlobalWeightOp>(
                ref, ref.getNameAttr())
          : nullptr;
  if (!weight)
    return fail(op, "a matmul whose weight is computed has no ONNX form yet");
  QTensorType type = weight.getWeightType();
  const int64_t rows = type.getShape()[0], cols = type.getShape()[1];
  const formats::Format format = type.getFormat().getFormat();
  const std::string base =
      weight->hasAttr("onnx.name")
          ? weight->getAttrOfType<StringAttr>("onnx.name").str()
          : weight.getSymName().str();
  std::string nodeName;
  if (auto name = op->getAttrOfType<StringAttr>("onnx.name"))
    nodeName = name.str();
  std::string output;
  if (auto outputs = op->getAttrOfType<ArrayAttr>("onnx.outputs"))
    output = cast<StringAttr>(outputs[0]).str();
  if (output.empty())
    output = nameOf(op.getResult());
  else
    setName(op.getResult(), output);
  const std::string product =
      op.getBias() ? freshName(output + "_matmul") : output;

  formats::AffineForm form;
  const bool affine =
      formats::affineForm(format, form) && !options.dequantizeWeights;
  const bool qdq = affine && options.weightStyle == ONNXWeightStyle::QDQ;
  if (!affine && format != formats::Format::F32 && !options.dequantizeWeights)
    return fail(op, "weight '" + base + "' is in format " +
                        formats::info(format).name +
                        ", which ONNX Runtime's MatMulNBits cannot hold (it "
                        "takes 2, 4 and 8 bits with linear groups: q4_0, "
                        "q4_1, q4_k, q8_0, q2_k, i4_*, i8_*); choose those "
                        "formats, export GGUF, or export with --dequantize");
  if (qdq && !form.integerZeros)
    return fail(op, "weight '" + base + "' is in format " +
                        formats::info(format).name +
                        ", whose zero points are not integers: "
                        "DequantizeLinear cannot hold it (MatMulNBits can: "
                        "leave out --onnx-weights qdq)");
  if (qdq && form.bits == 2)
    return fail(op, "weight '" + base +
                        "': DequantizeLinear has no 2-bit type (MatMulNBits "
                        "has: leave out --onnx-weights qdq)");
  if (qdq && defaultOpset < 21)
    return fail(op, "QDQ weights need DequantizeLinear with block_size "
                    "(opset 21) but the model imports opset " +
                        llvm::Twine(defaultOpset) +
                        " of the default domain; leave out --onnx-weights "
                        "qdq (MatMulNBits works with any opset)");
  std::string error;
  const uint8_t *bytes = getWeightBytes(weight, error);
  if (!bytes)
    return fail(op, error);
  const bool external = weight->hasAttr("onnx.external");
  const uint64_t rowBytes = formats::rowBytes(formats::info(format), cols);

  // The weight's initializers (and DequantizeLinear node), once per weight.
  SmallVector<std::string> &written = writtenWeights[weight];
  if (written.empty() && !affine) {
    std::vector<float> values(rows * cols);
    formats::dequantizeRows(format, bytes, values.data(), rows, cols, 0);
    std::vector<uint8_t> transposed(values.size() * sizeof(float));
    float *t = reinterpret_cast<float *>(transposed.data());
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < cols; ++k)
        t[k * rows + n] = values[n * cols + k];
    written.push_back(freshName(base));
    addInitializer(graph, written[0], onnx::TensorProto::FLOAT, {cols, rows},
                   std::move(transposed), external);
  } else if (written.empty()) {
    const int64_t groups = cols / form.groupSize;
    std::vector<uint8_t> codes(rows * cols);
    std::vector<float> scales(rows * groups), zeros(rows * groups);
    for (int64_t n = 0; n < rows; ++n)
      formats::decodeAffineRow(format, bytes + n * rowBytes, cols,
                               &codes[n * cols], &scales[n * groups],
                               &zeros[n * groups]);
    auto floatBytes = [](const std::vector<float> &values) {
      std::vector<uint8_t> out(values.size() * sizeof(float));
      std::memcpy(out.data(), values.data(), out.size());
      return out;
    };
    if (!qdq) {
      const int64_t blob = int64_t(form.groupSize) * form.bits / 8;
      const int64_t zeroBytes = (groups * form.bits + 7) / 8;
      std::vector<uint8_t> packed(rows * groups * blob);
      for (int64_t n = 0; n < rows; ++n)
        packCodes(&codes[n * cols], cols, form.bits, &packed[n * groups * blob]);
      const std::string bits = std::to_string(form.bits);
      written.push_back(freshName(base + "_Q" + bits));
      written.push_back(freshName(base + "_scales"));
      addInitializer(graph, written[0], onnx::TensorProto::UINT8,
                     {rows, groups, blob}, std::move(packed), external);
      addInitializer(graph, written[1], onnx::TensorProto::FLOAT,
                     {rows, groups}, floatBytes(scales), external);
      if (!form.defaultZeros) {
        written.push_back(freshName(base + "_zero_points"));
        if (form.integerZeros) {
          std::vector<uint8_t> zeroCodes(groups), packedZeros(rows * zeroBytes);
          for (int64_t n = 0; n < rows; ++n) {
            for (int64_t g = 0; g < groups; ++g)
              zeroCodes[g] = uint8_t(zeros[n * groups + g]);
            packCodes(zeroCodes.data(), groups, form.bits,
                      &packedZeros[n * zeroBytes]);
          }
          addInitializer(graph, written[2], onnx::TensorProto::UINT8,
                         {rows * zeroBytes}, std::move(packedZeros), external);
        } else {
          addInitializer(graph, written[2], onnx::TensorProto::FLOAT,
                         {rows, groups}, floatBytes(zeros), external);
        }
      }
    } else {
      // ONNX's [K, N] layout, blocked along K (axis 0): codes, scales and
      // zero points transposed. Symmetric formats store signed values
      // (code - 2^(bits-1), INT4/INT8) and no zero point; the others their
      // unsigned codes (UINT4/UINT8) and zero points of that type.
      const bool sym = form.defaultZeros;
      const int32_t dataType =
          form.bits == 4 ? (sym ? 22 /*INT4*/ : 21 /*UINT4*/)
                         : (sym ? int32_t(onnx::TensorProto::INT8)
                                : int32_t(onnx::TensorProto::UINT8));
      const uint8_t shift = sym ? uint8_t(1u << (form.bits - 1)) : 0;
      std::vector<uint8_t> values(rows * cols);
      for (int64_t n = 0; n < rows; ++n)
        for (int64_t k = 0; k < cols; ++k)
          values[k * rows + n] = uint8_t(codes[n * cols + k] - shift) &
                                 uint8_t((1u << form.bits) - 1);
      std::vector<float> scalesKN(groups * rows);
      std::vector<uint8_t> zerosKN(groups * rows);
      for (int64_t n = 0; n < rows; ++n)
        for (int64_t g = 0; g < groups; ++g) {
          scalesKN[g * rows + n] = scales[n * groups + g];
          zerosKN[g * rows + n] = uint8_t(zeros[n * groups + g]);
        }
      auto pack = [&](std::vector<uint8_t> v) {
        if (form.bits == 8)
          return v;
        std::vector<uint8_t> out((v.size() + 1) / 2);
        packCodes(v.data(), int64_t(v.size()), 4, out.data());
        return out;
      };
      written.push_back(freshName(base + "_dequantized"));
      const std::string quantized = freshName(base + "_quantized");
      const std::string scale = freshName(base + "_scale");
      addInitializer(graph, quantized, dataType, {cols, rows},
                     pack(std::move(values)), external);
      addInitializer(graph, scale, onnx::TensorProto::FLOAT, {groups, rows},
                     floatBytes(scalesKN), external);
      onnx::NodeProto *dq = graph.add_node();
      dq->set_op_type("DequantizeLinear");
      dq->set_name(written[0]);
      dq->add_input(quantized);
      dq->add_input(scale);
      if (!sym) {
        const std::string zero = freshName(base + "_zero_point");
        addInitializer(graph, zero, dataType, {groups, rows},
                       pack(std::move(zerosKN)), external);
        dq->add_input(zero);
      }
      dq->add_output(written[0]);
      addIntAttribute(*dq, "axis", 0);
      addIntAttribute(*dq, "block_size", form.groupSize);
    }
  }

  onnx::NodeProto *node = graph.add_node();
  node->add_input(nameOf(op.getInput()));
  for (const std::string &name : written)
    node->add_input(name);
  node->add_output(product);
  if (!nodeName.empty())
    node->set_name(nodeName);
  if (!affine || qdq) {
    node->set_op_type("MatMul");
  } else {
    node->set_op_type("MatMulNBits");
    node->set_domain("com.microsoft");
    usesContribOps = true;
    addIntAttribute(*node, "K", cols);
    addIntAttribute(*node, "N", rows);
    addIntAttribute(*node, "bits", form.bits);
    addIntAttribute(*node, "block_size", form.groupSize);
    if (options.accuracyLevel >= 0)
      addIntAttribute(*node, "accuracy_level", options.accuracyLevel);
  }
  if (Value bias = op.getBias()) {
    onnx::NodeProto *add = graph.add_node();
    add->set_op_type("Add");
    if (!nodeName.empty())
      add->set_name(nodeName + "_bias");
    add->add_input(product);
    add->add_input(nameOf(bias));
    add->add_output(output);
  }
  return success();
}

LogicalResult ONNXExporter::exportGather(ONNXNodeOp op,
                                         onnx::GraphProto &graph) {
  namespace formats = ::lowbit::formats;
  auto ref = op.getInputs()[0].getDefiningOp<WeightOp>();
  if (op.getOpType() != "Gather" || !ref || op.getInputs().size() != 2 ||
      isa_and_nonnull<WeightOp>(op.getInputs()[1].getDefiningOp()))
    return fail(op, "only a Gather may read a lowbit weight (as its table); "
                    "this node has no ONNX form");
  GlobalWeightOp weight =
      symbolTables.lookupNearestSymbolFrom<GlobalWeightOp>(ref,
                                                           ref.getNameAttr());
  if (!weight)
    return fail(op, "names no lowbit.global_weight");
  QTensorType type = weight.getWeightType();
  const int64_t rows = type.getShape()[0], cols = type.getShape()[1];
  const formats::Format format = type.getFormat().getFormat();
  const std::string base =
      weight->hasAttr("onnx.name")
          ? weight->getAttrOfType<StringAttr>("onnx.name").str()
          : weight.getSymName().str();
  formats::AffineForm form;
  const bool quantized = format != formats::Format::F32 &&
                         !options.dequantizeWeights;
  if (quantized && !(formats::affineForm(format, form) && form.integerZeros &&
                     form.bits != 2))
    return fail(op, "table '" + base + "' is in format " +
                        formats::info(format).name +
                        ", which ONNX Runtime's GatherBlockQuantized cannot "
                        "hold (it takes 4 and 8 bits with integer zero "
                        "points: q4_0, q8_0, i4_*, i8_*); choose those "
                        "formats, or export with --dequantize");
  std::string error;
  const uint8_t *bytes = getWeightBytes(weight, error);
  if (!bytes)
    return fail(op, error);
  const bool external = weight->hasAttr("onnx.external");
  SmallVector<std::string> &written = writtenTables[weight];
  if (!quantized) {
    if (written.empty()) {
      std::vector<uint8_t> values(rows * cols * sizeof(float));
      formats::dequantizeRows(format, bytes,
                              reinterpret_cast<float *>(values.data()), rows,
                              cols, 0);
      written.push_back(freshName(base));
      addInitializer(graph, written[0], onnx::TensorProto::FLOAT,
                     {rows, cols}, std::move(values), external);
    }
    setName(op.getInputs()[0], written[0]);
    return exportNode(op, *graph.add_node());
  }
  if (written.empty()) {
    const uint64_t rowBytes = formats::rowBytes(formats::info(format), cols);
    const int64_t groups = cols / form.groupSize;
    const int64_t packedRow = cols * form.bits / 8;
    const int64_t zeroRow = (groups * form.bits + 7) / 8;
    std::vector<uint8_t> packed(rows * packedRow), zeroCodes(groups),
        packedZeros(rows * zeroRow), codes(cols);
    std::vector<uint8_t> scaleBytes(rows * groups * sizeof(float));
    std::vector<float> zeros(groups);
    float *scales = reinterpret_cast<float *>(scaleBytes.data());
    for (int64_t n = 0; n < rows; ++n) {
      formats::decodeAffineRow(format, bytes + n * rowBytes, cols,
                               codes.data(), scales + n * groups,
                               zeros.data());
      packCodes(codes.data(), cols, form.bits, &packed[n * packedRow]);
      for (int64_t g = 0; g < groups; ++g)
        zeroCodes[g] = uint8_t(zeros[g]);
      packCodes(zeroCodes.data(), groups, form.bits, &packedZeros[n * zeroRow]);
    }
    written.push_back(freshName(base + "_Q" + std::to_string(form.bits)));
    written.push_back(freshName(base + "_scales"));
    addInitializer(graph, written[0], onnx::TensorProto::UINT8,
                   {rows, packedRow}, std::move(packed), external);
    addInitializer(graph, written[1], onnx::TensorProto::FLOAT,
                   {rows, groups}, std::move(scaleBytes), external);
    if (!form.defaultZeros) {
      written.push_back(freshName(base + "_zero_points"));
      addInitializer(graph, written[2], onnx::TensorProto::UINT8,
                     {rows, zeroRow}, std::move(packedZeros), external);
    }
  }
  onnx::NodeProto *node = graph.add_node();
  node->add_input(written[0]);
  node->add_input(nameOf(op.getInputs()[1]));
  for (size_t i = 1; i < written.size(); ++i)
    node->add_input(written[i]);
  std::string output;
  if (std::optional<ArrayAttr> outputs = op.getOutputs())
    output = cast<StringAttr>((*outputs)[0]).str();
  if (output.empty())
    output = nameOf(op.getResult(0));
  else
    setName(op.getResult(0), output);
  node->add_output(output);
  if (op.getName())
    node->set_name(op.getName()->str());
  node->set_op_type("GatherBlockQuantized");
  node->set_domain("com.microsoft");
  usesContribOps = true;
  addIntAttribute(*node, "bits", form.bits);
  addIntAttribute(*node, "block_size", form.groupSize);
  addIntAttribute(*node, "gather_axis", 0);
  addIntAttribute(*node, "quantize_axis", 1);
  return success();
}

LogicalResult ONNXExporter::exportBlock(Block &block, ArrayAttr inputInfos,
                                        ArrayAttr outputInfos,
                                        ArrayAttr valueInfo,
                                        onnx::GraphProto &out) {
  for (BlockArgument arg : block.getArguments()) {
    DictionaryAttr info;
    if (inputInfos && arg.getArgNumber() < inputInfos.size())
      info = cast<DictionaryAttr>(inputInfos[arg.getArgNumber()]);
    if (info)
      setName(arg, cast<StringAttr>(info.get("name")).getValue());
    if (failed(exportValueInfo(info, arg, *out.add_input(), arg.getLoc())))
      return failure();
  }
  for (Operation &op : block) {
    if (auto constant = dyn_cast<ONNXConstantOp>(op)) {
      auto tensor = symbolTables.lookupNearestSymbolFrom<ONNXInitializerOp>(
          constant, constant.getTensorAttr());
      if (!tensor)
        return fail(&op, "names no lowbit.onnx.initializer");
      onnx::TensorProto *proto = out.add_initializer();
      if (failed(exportTensor(tensor, *proto)))
        return failure();
      if (proto->name().empty())
        return fail(&op, "an initializer needs a name");
      setName(constant, proto->name());
    } else if (auto node = dyn_cast<ONNXNodeOp>(op)) {
      bool readsWeight = llvm::any_of(node.getInputs(), [](Value v) {
        return isa_and_nonnull<WeightOp>(v.getDefiningOp());
      });
      if (readsWeight ? failed(exportGather(node, out))
                      : failed(exportNode(node, *out.add_node())))
        return failure();
    } else if (isa<ONNXNoneOp, WeightOp>(op)) {
      continue; // Written where they are used.
    } else if (auto matmul = dyn_cast<MatmulOp>(op)) {
      if (failed(exportMatmul(matmul, out)))
        return failure();
    } else if (isa<ONNXYieldOp, func::ReturnOp>(op)) {
      for (auto [index, value] : llvm::enumerate(op.getOperands())) {
        DictionaryAttr info;
        if (outputInfos && index < outputInfos.size())
          info = cast<DictionaryAttr>(outputInfos[index]);
        if (failed(exportValueInfo(info, value, *out.add_output(),
                                   op.getLoc())))
          return failure();
        if (info && cast<StringAttr>(info.get("name")).getValue() !=
                        nameOf(value))
          return fail(&op, "output " + llvm::Twine(index) + " is named '" +
                               cast<StringAttr>(info.get("name")).getValue() +
                               "' but its value is '" + nameOf(value) + "'");
      }
    } else {
      return fail(&op, "'" + op.getName().getStringRef() +
                           "' has no ONNX form yet");
    }
  }
  if (valueInfo)
    for (Attribute entry : valueInfo) {
      auto info = cast<DictionaryAttr>(entry);
      // Values a pass removed lose their declaration.
      if (!usedNames.count(cast<StringAttr>(info.get("name")).getValue()))
        continue;
      onnx::ValueInfoProto *proto = out.add_value_info();
      if (failed(exportValueInfo(info, nullptr, *proto, block.back().getLoc())))
        return failure();
    }
  return success();
}

LogicalResult ONNXExporter::run(onnx::ModelProto &proto) {
  auto func = module.lookupSymbol<func::FuncOp>("forward");
  if (!func || func.isExternal())
    return module.emitError() << "no func.func @forward to export";
  auto str = [&](StringRef name) {
    return module->getAttrOfType<StringAttr>(name);
  };
  auto integer = [&](StringRef name) {
    return module->getAttrOfType<IntegerAttr>(name);
  };
  if (auto v = integer("onnx.ir_version"))
    proto.set_ir_version(v.getInt());
  if (auto opsets = module->getAttrOfType<ArrayAttr>("onnx.opset_import")) {
    for (Attribute entry : opsets) {
      // [domain, version], or [version] when the file gave no domain.
      auto pair = cast<ArrayAttr>(entry);
      auto *opset = proto.add_opset_import();
      if (pair.size() == 2)
        opset->set_domain(cast<StringAttr>(pair[0]).str());
      opset->set_version(cast<IntegerAttr>(pair.getValue().back()).getInt());
      if (opset->domain().empty() || opset->domain() == "ai.onnx")
        defaultOpset = opset->version();
    }
  }
  if (auto v = str("onnx.producer_name"))
    proto.set_producer_name(v.str());
  if (auto v = str("onnx.producer_version"))
    proto.set_producer_version(v.str());
  if (auto v = str("onnx.domain"))
    proto.set_domain(v.str());
  if (auto v = integer("onnx.model_version"))
    proto.set_model_version(v.getInt());
  if (auto v = str("onnx.doc_string"))
    proto.set_doc_string(v.str());
  onnx::GraphProto *graph = proto.mutable_graph();
  if (auto v = str("onnx.graph_name"))
    graph->set_name(v.str());
  if (auto v = str("onnx.graph_doc_string"))
    graph->set_doc_string(v.str());
  if (auto props = module->getAttrOfType<ArrayAttr>("onnx.metadata_props"))
    for (Attribute entry : props) {
      auto pair = cast<ArrayAttr>(entry);
      auto *prop = proto.add_metadata_props();
      prop->set_key(cast<StringAttr>(pair[0]).str());
      prop->set_value(cast<StringAttr>(pair[1]).str());
    }

  auto infos = [&](bool results) {
    SmallVector<Attribute> list;
    unsigned count = results ? func.getNumResults() : func.getNumArguments();
    for (unsigned i = 0; i < count; ++i) {
      Attribute info = results ? func.getResultAttr(i, "onnx.value")
                               : func.getArgAttr(i, "onnx.value");
      if (!info)
        return ArrayAttr();
      list.push_back(info);
    }
    return ArrayAttr::get(module.getContext(), list);
  };
  if (failed(exportBlock(func.front(), infos(false), infos(true),
                         func->getAttrOfType<ArrayAttr>("onnx.value_info"),
                         *graph)))
    return failure();
  if (usesContribOps &&
      llvm::none_of(proto.opset_import(), [](const auto &opset) {
        return opset.domain() == "com.microsoft";
      })) {
    auto *opset = proto.add_opset_import();
    opset->set_domain("com.microsoft");
    opset->set_version(1);
  }
  return success();
}

LogicalResult mlir::lowbit::exportONNX(ModuleOp module,
                                       const std::string &path,
                                       const ONNXExportOptions &options) {
  onnx::ModelProto proto;
  ONNXExporter exporter(module, options);
  if (failed(exporter.run(proto)))
    return failure();

  std::string error;
  auto fail = [&]() {
    module.emitError() << error;
    return failure();
  };
  // External data: one file next to the model, each tensor 64-byte aligned.
  std::unique_ptr<::lowbit::AtomicFileWriter> dataWriter;
  if (!exporter.externalTensors.empty()) {
    std::string dataPath = path + ".data";
    std::string location = dataPath.substr(dataPath.rfind('/') + 1);
    dataWriter = std::make_unique<::lowbit::AtomicFileWriter>(dataPath);
    if (!dataWriter->open(error))
      return fail();
    uint64_t offset = 0;
    static const char zeros[64] = {};
    for (auto &tensor : exporter.externalTensors) {
      uint64_t padding = (64 - offset % 64) % 64;
      if (!dataWriter->write(zeros, padding, error) ||
          !dataWriter->write(tensor.bytes, tensor.size, error))
        return fail();
      offset += padding;
      tensor.proto->set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const char *key, const std::string &value) {
        auto *entry = tensor.proto->add_external_data();
        entry->set_key(key);
        entry->set_value(value);
      };
      add("location", location);
      add("offset", std::to_string(offset));
      add("length", std::to_string(tensor.size));
      offset += tensor.size;
    }
  }
  if (proto.ByteSizeLong() > size_t(INT_MAX)) {
    error = path + ": the model would be larger than 2 GiB, which protobuf "
                   "cannot write; lower --external-data-threshold";
    return fail();
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) {
    error = path + ": cannot serialize the model";
    return fail();
  }
  ::lowbit::AtomicFileWriter writer(path);
  if (!writer.open(error) || !writer.write(bytes.data(), bytes.size(), error))
    return fail();
  if (dataWriter && !dataWriter->commit(error))
    return fail();
  if (!writer.commit(error))
    return fail();
  return success();
}
