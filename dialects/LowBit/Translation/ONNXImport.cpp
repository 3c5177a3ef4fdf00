//===- ONNXImport.cpp - ONNX file -> lowbit dialect -----------------------===//
//
// The generic import: one lowbit.onnx.node per ONNX node, one
// lowbit.onnx.initializer per stored tensor, nothing interpreted. What the
// file says and lowbit does not model (names, orders, dim_param names,
// producer fields) rides along as attributes, so ONNXExport writes the same
// model back.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Translation/ONNXImport.h"

#include "LowBit/IR/LowBit.h"
#include "lowbit/ONNX/ONNXFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mlir::lowbit;
namespace onnxfile = ::lowbit::onnxfile;

Type mlir::lowbit::getONNXElementType(MLIRContext *context, int32_t dataType) {
  Builder b(context);
  auto integer = [&](unsigned width, bool isUnsigned) -> Type {
    return IntegerType::get(context, width,
                            isUnsigned ? IntegerType::Unsigned
                                       : IntegerType::Signless);
  };
  switch (dataType) {
  case onnx::TensorProto::FLOAT:
    return b.getF32Type();
  case onnx::TensorProto::UINT8:
    return integer(8, true);
  case onnx::TensorProto::INT8:
    return integer(8, false);
  case onnx::TensorProto::UINT16:
    return integer(16, true);
  case onnx::TensorProto::INT16:
    return integer(16, false);
  case onnx::TensorProto::INT32:
    return integer(32, false);
  case onnx::TensorProto::INT64:
    return integer(64, false);
  case onnx::TensorProto::BOOL:
    return integer(1, false);
  case onnx::TensorProto::FLOAT16:
    return b.getF16Type();
  case onnx::TensorProto::DOUBLE:
    return b.getF64Type();
  case onnx::TensorProto::UINT32:
    return integer(32, true);
  case onnx::TensorProto::UINT64:
    return integer(64, true);
  case onnx::TensorProto::COMPLEX64:
    return ComplexType::get(b.getF32Type());
  case onnx::TensorProto::COMPLEX128:
    return ComplexType::get(b.getF64Type());
  case onnx::TensorProto::BFLOAT16:
    return b.getBF16Type();
  case 17:
    return Float8E4M3FNType::get(context);
  case 18:
    return Float8E4M3FNUZType::get(context);
  case 19:
    return Float8E5M2Type::get(context);
  case 20:
    return Float8E5M2FNUZType::get(context);
  case 21:
    return integer(4, true);
  case 22:
    return integer(4, false);
  default:
    return nullptr;
  }
}

int32_t mlir::lowbit::getONNXDataType(Type type) {
  if (type.isF32())
    return onnx::TensorProto::FLOAT;
  if (type.isF16())
    return onnx::TensorProto::FLOAT16;
  if (type.isBF16())
    return onnx::TensorProto::BFLOAT16;
  if (type.isF64())
    return onnx::TensorProto::DOUBLE;
  if (isa<Float8E4M3FNType>(type))
    return 17;
  if (isa<Float8E4M3FNUZType>(type))
    return 18;
  if (isa<Float8E5M2Type>(type))
    return 19;
  if (isa<Float8E5M2FNUZType>(type))
    return 20;
  if (auto complex = dyn_cast<ComplexType>(type)) {
    if (complex.getElementType().isF32())
      return onnx::TensorProto::COMPLEX64;
    if (complex.getElementType().isF64())
      return onnx::TensorProto::COMPLEX128;
    return 0;
  }
  auto integer = dyn_cast<IntegerType>(type);
  if (!integer || integer.isSigned())
    return 0;
  bool isUnsigned = integer.isUnsigned();
  switch (integer.getWidth()) {
  case 1:
    return isUnsigned ? 0 : onnx::TensorProto::BOOL;
  case 4:
    return isUnsigned ? 21 : 22;
  case 8:
    return isUnsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
  case 16:
    return isUnsigned ? onnx::TensorProto::UINT16 : onnx::TensorProto::INT16;
  case 32:
    return isUnsigned ? onnx::TensorProto::UINT32 : onnx::TensorProto::INT32;
  case 64:
    return isUnsigned ? onnx::TensorProto::UINT64 : onnx::TensorProto::INT64;
  default:
    return 0;
  }
}

namespace {

/// Values visible by name: a graph's own, then its enclosing graphs'.
struct Scope {
  const Scope *parent = nullptr;
  llvm::StringMap<Value> values;
  Value lookup(llvm::StringRef name) const {
    for (const Scope *s = this; s; s = s->parent)
      if (auto it = s->values.find(name); it != s->values.end())
        return it->second;
    return nullptr;
  }
};

class ONNXImporter {
public:
  ONNXImporter(MLIRContext *context, onnxfile::Model &model)
      : context(context), model(model), builder(context),
        fileLoc(FileLineColLoc::get(context, model.path, 0, 0)) {}

  OwningOpRef<ModuleOp> run();

private:
  Location loc(llvm::StringRef name) {
    return name.empty() ? Location(fileLoc)
                        : Location(NameLoc::get(builder.getStringAttr(name),
                                                fileLoc));
  }
  LogicalResult fail(Location at, const llvm::Twine &message) {
    emitError(at) << message;
    return failure();
  }

  /// The MLIR type of an ONNX value type: a tensor (unranked without a
  /// shape), `none` when the type is not given. `dims` receives the
  /// dim_param names ("" for the other dims) when any dim has one.
  FailureOr<Type> importType(const onnx::TypeProto &type,
                             llvm::StringRef what, ArrayAttr &dims);
  /// {name, type, dims?} of a declared value.
  FailureOr<DictionaryAttr> importValueInfo(const onnx::ValueInfoProto &info,
                                            Type &type);
  /// Creates the lowbit.onnx.initializer of `tensor`; its symbol.
  FailureOr<StringAttr> importTensor(const onnx::TensorProto &tensor,
                                     llvm::StringRef symbolBase,
                                     Location at);
  FailureOr<Attribute> tensorData(const onnx::TensorProto &tensor,
                                  RankedTensorType type, Location at);
  std::string uniqueSymbol(llvm::StringRef base);

  /// Imports `graph` into `block` (whose arguments are already the graph
  /// inputs, bound in `scope`): initializers first, then the nodes. The
  /// values of the graph outputs are returned in `outputs`.
  LogicalResult importGraph(const onnx::GraphProto &graph, Block &block,
                            Scope &scope, SmallVectorImpl<Value> &outputs,
                            SmallVectorImpl<Attribute> &outputInfos,
                            ArrayAttr &valueInfo);
  LogicalResult importNode(const onnx::NodeProto &node, Scope &scope,
                           const llvm::StringMap<Type> &types);
  LogicalResult importSubgraph(const onnx::GraphProto &graph, Region &region,
                               const Scope &outer, Location at);

  MLIRContext *context;
  onnxfile::Model &model;
  OpBuilder builder;
  FileLineColLoc fileLoc;
  ModuleOp module;
  /// Where lowbit.onnx.initializer ops go: before @forward, in file order.
  Operation *initializerAnchor = nullptr;
  llvm::StringSet<> symbols;
};

} // namespace

FailureOr<Type> ONNXImporter::importType(const onnx::TypeProto &type,
                                         llvm::StringRef what,
                                         ArrayAttr &dims) {
  dims = nullptr;
  if (type.value_case() == onnx::TypeProto::VALUE_NOT_SET)
    return Type(NoneType::get(context));
  if (!type.has_tensor_type())
    return fail(fileLoc, what + " has a sequence, map, optional or sparse "
                                "type; lowbit imports tensors only (not "
                                "supported yet)");
  const auto &tensor = type.tensor_type();
  Type element = getONNXElementType(context, tensor.elem_type());
  if (!element)
    return fail(fileLoc, what + " has element type " +
                             onnxfile::dataTypeName(tensor.elem_type()) +
                             ", which lowbit cannot hold (not supported yet)");
  if (!tensor.has_shape())
    return Type(UnrankedTensorType::get(element));
  SmallVector<int64_t> shape;
  SmallVector<Attribute> names;
  bool anyName = false;
  for (const auto &dim : tensor.shape().dim()) {
    if (dim.has_dim_value() && dim.dim_value() >= 0)
      shape.push_back(dim.dim_value());
    else
      shape.push_back(ShapedType::kDynamic);
    std::string name = dim.has_dim_param() ? dim.dim_param() : "";
    anyName |= !name.empty();
    names.push_back(builder.getStringAttr(name));
  }
  if (anyName)
    dims = builder.getArrayAttr(names);
  return Type(RankedTensorType::get(shape, element));
}

FailureOr<DictionaryAttr>
ONNXImporter::importValueInfo(const onnx::ValueInfoProto &info, Type &type) {
  ArrayAttr dims;
  FailureOr<Type> imported =
      importType(info.type(), "value '" + info.name() + "'", dims);
  if (failed(imported))
    return failure();
  type = *imported;
  SmallVector<NamedAttribute> entries;
  entries.push_back(builder.getNamedAttr("name",
                                         builder.getStringAttr(info.name())));
  if (info.has_type())
    entries.push_back(builder.getNamedAttr("type", TypeAttr::get(type)));
  if (dims)
    entries.push_back(builder.getNamedAttr("dims", dims));
  if (info.has_doc_string())
    entries.push_back(builder.getNamedAttr(
        "doc_string", builder.getStringAttr(info.doc_string())));
  return builder.getDictionaryAttr(entries);
}

std::string ONNXImporter::uniqueSymbol(llvm::StringRef base) {
  std::string name = base.empty() ? std::string("tensor") : base.str();
  // @forward is the model's function.
  if (name != "forward" && symbols.insert(name).second)
    return name;
  for (int suffix = 1;; ++suffix) {
    std::string candidate = name + "." + std::to_string(suffix);
    if (symbols.insert(candidate).second)
      return candidate;
  }
}

FailureOr<Attribute> ONNXImporter::tensorData(const onnx::TensorProto &tensor,
                                              RankedTensorType type,
                                              Location at) {
  if (auto it = model.fileBytes.find(&tensor); it != model.fileBytes.end()) {
    const onnxfile::FileBytes &bytes = it->second;
    return Attribute(ExternalDataAttr::get(context, bytes.path, bytes.offset,
                                           bytes.size));
  }
  if (tensor.has_raw_data()) {
    // Bytes protobuf holds that the wire scan did not place (not expected
    // for well-formed files): copy them into a resource blob.
    const std::string &raw = tensor.raw_data();
    AsmResourceBlob blob =
        HeapAsmResourceBlob::allocateAndCopyInferAlign(ArrayRef<char>(
            raw.data(), raw.size()));
    return Attribute(DenseResourceElementsAttr::get(
        type, "onnx_" + tensor.name(), std::move(blob)));
  }
  // Values in the typed repeated fields: small tensors, as dense elements.
  Type element = type.getElementType();
  int64_t count = type.getNumElements();
  if (element.isInteger(1)) {
    SmallVector<bool> values;
    for (int64_t i = 0; i < count; ++i)
      values.push_back(tensor.int32_data(i) != 0);
    return Attribute(DenseElementsAttr::get(type, values));
  }
  std::vector<char> raw;
  auto append = [&](const void *value, size_t size) {
    const char *p = static_cast<const char *>(value);
    raw.insert(raw.end(), p, p + size);
  };
  switch (tensor.data_type()) {
  case onnx::TensorProto::FLOAT:
  case onnx::TensorProto::COMPLEX64:
    for (float v : tensor.float_data())
      append(&v, 4);
    break;
  case onnx::TensorProto::DOUBLE:
  case onnx::TensorProto::COMPLEX128:
    for (double v : tensor.double_data())
      append(&v, 8);
    break;
  case onnx::TensorProto::INT64:
    for (int64_t v : tensor.int64_data())
      append(&v, 8);
    break;
  case onnx::TensorProto::UINT32:
    for (uint64_t v : tensor.uint64_data()) {
      uint32_t narrow = uint32_t(v);
      append(&narrow, 4);
    }
    break;
  case onnx::TensorProto::UINT64:
    for (uint64_t v : tensor.uint64_data())
      append(&v, 8);
    break;
  case 21:
  case 22:
    return fail(at, "4-bit tensor '" + tensor.name() +
                        "' stored in int32_data (not supported yet; store it "
                        "as raw_data)");
  default: {
    // INT32 and the narrower types: one value per int32_data entry, the
    // 16-bit floats as their bit patterns.
    unsigned bytes = element.getIntOrFloatBitWidth() / 8;
    for (int32_t v : tensor.int32_data())
      append(&v, bytes);
    break;
  }
  }
  bool detectedSplat = false;
  if (!DenseElementsAttr::isValidRawBuffer(type, raw, detectedSplat))
    return fail(at, "tensor '" + tensor.name() +
                        "': its values do not fill its type");
  return Attribute(DenseElementsAttr::getFromRawBuffer(type, raw));
}

FailureOr<StringAttr> ONNXImporter::importTensor(const onnx::TensorProto &tensor,
                                                 llvm::StringRef symbolBase,
                                                 Location at) {
  Type element = getONNXElementType(context, tensor.data_type());
  if (!element)
    return fail(at, "tensor '" + tensor.name() + "' of type " +
                        onnxfile::dataTypeName(tensor.data_type()) +
                        " (lowbit cannot hold it; not supported yet)");
  auto type = RankedTensorType::get(
      SmallVector<int64_t>(tensor.dims().begin(), tensor.dims().end()),
      element);
  FailureOr<Attribute> data = tensorData(tensor, type, at);
  if (failed(data))
    return failure();
  std::string symbol = uniqueSymbol(symbolBase);
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPoint(initializerAnchor);
  auto op = ONNXInitializerOp::create(builder, 
      loc(tensor.name()), builder.getStringAttr(symbol), TypeAttr::get(type),
      *data, /*external=*/nullptr, /*name=*/nullptr);
  auto found = model.fileBytes.find(&tensor);
  if (found != model.fileBytes.end() && found->second.external)
    op.setExternal(true);
  if (!tensor.has_name() || tensor.name() != symbol)
    op.setNameAttr(tensor.has_name() ? builder.getStringAttr(tensor.name())
                                     : nullptr);
  if (!tensor.has_name())
    op->setAttr("unnamed", builder.getUnitAttr());
  return op.getSymNameAttr();
}

LogicalResult ONNXImporter::importSubgraph(const onnx::GraphProto &graph,
                                           Region &region, const Scope &outer,
                                           Location at) {
  Block *block = new Block();
  region.push_back(block);
  Scope scope;
  scope.parent = &outer;
  SmallVector<Attribute> inputs;
  for (const auto &input : graph.input()) {
    Type type;
    FailureOr<DictionaryAttr> info = importValueInfo(input, type);
    if (failed(info))
      return failure();
    inputs.push_back(*info);
    scope.values[input.name()] = block->addArgument(type, at);
  }
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(block);
  SmallVector<Value> outputs;
  SmallVector<Attribute> outputInfos;
  ArrayAttr valueInfo;
  if (failed(importGraph(graph, *block, scope, outputs, outputInfos,
                         valueInfo)))
    return failure();
  auto yield = ONNXYieldOp::create(builder, at, outputs);
  yield->setAttr("inputs", builder.getArrayAttr(inputs));
  yield->setAttr("outputs", builder.getArrayAttr(outputInfos));
  if (graph.has_name())
    yield->setAttr("name", builder.getStringAttr(graph.name()));
  if (graph.has_doc_string())
    yield->setAttr("doc_string", builder.getStringAttr(graph.doc_string()));
  if (valueInfo)
    yield->setAttr("value_info", valueInfo);
  return success();
}

LogicalResult ONNXImporter::importNode(const onnx::NodeProto &node,
                                       Scope &scope,
                                       const llvm::StringMap<Type> &types) {
  Location at = loc(node.name().empty() ? node.op_type() : node.name());
  std::string label = "node '" + node.name() + "' (" + node.op_type() + ")";
  SmallVector<Value> operands;
  for (const std::string &input : node.input()) {
    if (input.empty()) {
      operands.push_back(ONNXNoneOp::create(builder, at));
      continue;
    }
    Value value = scope.lookup(input);
    if (!value)
      return fail(at, label + ": input '" + input + "' is not defined");
    operands.push_back(value);
  }
  SmallVector<Type> resultTypes;
  SmallVector<Attribute> outputNames;
  for (const std::string &output : node.output()) {
    auto it = types.find(output);
    resultTypes.push_back(output.empty() || it == types.end()
                              ? Type(NoneType::get(context))
                              : it->second);
    outputNames.push_back(builder.getStringAttr(output));
  }

  SmallVector<NamedAttribute> attributes;
  SmallVector<Attribute> order, subgraphNames;
  SmallVector<const onnx::GraphProto *> subgraphs;
  for (const auto &attr : node.attribute()) {
    std::string what = label + " attribute '" + attr.name() + "'";
    if (attr.has_ref_attr_name())
      return fail(at, what + " refers to a function attribute (only "
                             "function bodies may; not supported)");
    order.push_back(builder.getStringAttr(attr.name()));
    Attribute value;
    switch (attr.type()) {
    case onnx::AttributeProto::FLOAT:
      value = builder.getF32FloatAttr(attr.f());
      break;
    case onnx::AttributeProto::INT:
      value = builder.getI64IntegerAttr(attr.i());
      break;
    case onnx::AttributeProto::STRING:
      value = builder.getStringAttr(attr.s());
      break;
    case onnx::AttributeProto::FLOATS:
      value = builder.getDenseF32ArrayAttr(
          SmallVector<float>(attr.floats().begin(), attr.floats().end()));
      break;
    case onnx::AttributeProto::INTS:
      value = builder.getDenseI64ArrayAttr(
          SmallVector<int64_t>(attr.ints().begin(), attr.ints().end()));
      break;
    case onnx::AttributeProto::STRINGS: {
      SmallVector<Attribute> strings;
      for (const std::string &s : attr.strings())
        strings.push_back(builder.getStringAttr(s));
      value = builder.getArrayAttr(strings);
      break;
    }
    case onnx::AttributeProto::TENSOR: {
      std::string base =
          !attr.t().name().empty()
              ? attr.t().name()
              : (node.name().empty() ? node.op_type() : node.name()) + "." +
                    attr.name();
      FailureOr<StringAttr> symbol = importTensor(attr.t(), base, at);
      if (failed(symbol))
        return failure();
      value = FlatSymbolRefAttr::get(*symbol);
      break;
    }
    case onnx::AttributeProto::GRAPH:
      subgraphNames.push_back(builder.getStringAttr(attr.name()));
      subgraphs.push_back(&attr.g());
      continue;
    default:
      return fail(at, what + " has attribute type " +
                          std::to_string(int(attr.type())) +
                          " (lists of tensors or graphs, sparse tensors and "
                          "type protos are not supported yet)");
    }
    attributes.push_back(builder.getNamedAttr(attr.name(), value));
  }

  auto op = ONNXNodeOp::create(builder, 
      at, resultTypes, builder.getStringAttr(node.op_type()), operands,
      node.has_domain() ? builder.getStringAttr(node.domain()) : nullptr,
      builder.getDictionaryAttr(attributes),
      node.has_name() ? builder.getStringAttr(node.name()) : nullptr,
      builder.getArrayAttr(outputNames),
      subgraphNames.empty() ? nullptr : builder.getArrayAttr(subgraphNames),
      nullptr,
      node.has_doc_string() ? builder.getStringAttr(node.doc_string())
                            : nullptr,
      /*graphsCount=*/subgraphs.size());
  // Keep the file's attribute order where sorting would change it.
  SmallVector<Attribute> sorted(order);
  llvm::sort(sorted, [](Attribute a, Attribute b) {
    return cast<StringAttr>(a).getValue() < cast<StringAttr>(b).getValue();
  });
  if (sorted != order)
    op.setAttributeOrderAttr(builder.getArrayAttr(order));
  for (auto [region, graph] : llvm::zip(op.getGraphs(), subgraphs))
    if (failed(importSubgraph(*graph, region, scope, at)))
      return failure();
  for (auto [name, result] : llvm::zip(node.output(), op.getResults()))
    if (!name.empty())
      scope.values[name] = result;
  return success();
}

LogicalResult ONNXImporter::importGraph(const onnx::GraphProto &graph,
                                        Block &block, Scope &scope,
                                        SmallVectorImpl<Value> &outputs,
                                        SmallVectorImpl<Attribute> &outputInfos,
                                        ArrayAttr &valueInfo) {
  // Types by value name: inferred, overridden by what the file declares
  // (value_info, then the graph outputs).
  llvm::StringMap<Type> types;
  int declared = 0;
  if (auto it = model.declaredValueInfo.find(&graph);
      it != model.declaredValueInfo.end())
    declared = it->second;
  SmallVector<Attribute> declaredInfos;
  for (int i = graph.value_info_size() - 1; i >= declared; --i) {
    const auto &info = graph.value_info(i);
    const onnx::TypeProto &inferred = info.type();
    if (!inferred.has_tensor_type() ||
        !getONNXElementType(context, inferred.tensor_type().elem_type()))
      continue; // Inferred types lowbit cannot hold leave the value untyped.
    ArrayAttr dims;
    FailureOr<Type> type =
        importType(info.type(), "value '" + info.name() + "'", dims);
    if (failed(type)) {
      // Only declared types can fail here: inferred ones are read below
      // only when lowbit can hold them.
      return failure();
    }
    types.try_emplace(info.name(), *type);
  }
  for (int i = 0; i < declared; ++i) {
    Type type;
    FailureOr<DictionaryAttr> info = importValueInfo(graph.value_info(i), type);
    if (failed(info))
      return failure();
    types[graph.value_info(i).name()] = type;
    declaredInfos.push_back(*info);
  }
  SmallVector<Type> outputTypes;
  for (const auto &output : graph.output()) {
    Type type;
    FailureOr<DictionaryAttr> info = importValueInfo(output, type);
    if (failed(info))
      return failure();
    outputInfos.push_back(*info);
    outputTypes.push_back(type);
    if (!isa<NoneType>(type))
      types[output.name()] = type;
  }
  valueInfo = declaredInfos.empty() ? nullptr
                                    : builder.getArrayAttr(declaredInfos);

  for (const auto &tensor : graph.initializer()) {
    Location at = loc(tensor.name());
    FailureOr<StringAttr> symbol = importTensor(tensor, tensor.name(), at);
    if (failed(symbol))
      return failure();
    auto constant = ONNXConstantOp::create(builder, 
        at,
        cast<ONNXInitializerOp>(SymbolTable::lookupSymbolIn(module, *symbol))
            .getType(),
        FlatSymbolRefAttr::get(*symbol));
    // A graph input of the same name overrides the initializer (its
    // default value, in IR version < 4 models).
    scope.values.try_emplace(tensor.name(), constant);
  }
  for (const auto &node : graph.node())
    if (failed(importNode(node, scope, types)))
      return failure();
  for (const auto &output : graph.output()) {
    Value value = scope.lookup(output.name());
    if (!value)
      return fail(fileLoc, "graph output '" + output.name() +
                               "' is not defined");
    outputs.push_back(value);
  }
  (void)block;
  return success();
}

OwningOpRef<ModuleOp> ONNXImporter::run() {
  const onnx::ModelProto &proto = model.proto;
  const onnx::GraphProto &graph = proto.graph();
  OwningOpRef<ModuleOp> owned = ModuleOp::create(fileLoc);
  module = *owned;
  SmallVector<NamedAttribute> moduleAttrs;
  auto set = [&](llvm::StringRef name, Attribute value) {
    moduleAttrs.push_back(builder.getNamedAttr(name, value));
  };
  set("lowbit.source", builder.getStringAttr("onnx"));
  if (proto.has_ir_version())
    set("onnx.ir_version", builder.getI64IntegerAttr(proto.ir_version()));
  SmallVector<Attribute> opsets;
  for (const auto &opset : proto.opset_import()) {
    // [domain, version], or [version] when the file gives no domain.
    SmallVector<Attribute> pair;
    if (opset.has_domain())
      pair.push_back(builder.getStringAttr(opset.domain()));
    pair.push_back(builder.getI64IntegerAttr(opset.version()));
    opsets.push_back(builder.getArrayAttr(pair));
  }
  set("onnx.opset_import", builder.getArrayAttr(opsets));
  if (proto.has_producer_name())
    set("onnx.producer_name", builder.getStringAttr(proto.producer_name()));
  if (proto.has_producer_version())
    set("onnx.producer_version",
        builder.getStringAttr(proto.producer_version()));
  if (proto.has_domain())
    set("onnx.domain", builder.getStringAttr(proto.domain()));
  if (proto.has_model_version())
    set("onnx.model_version", builder.getI64IntegerAttr(proto.model_version()));
  if (proto.has_doc_string())
    set("onnx.doc_string", builder.getStringAttr(proto.doc_string()));
  if (proto.metadata_props_size() > 0) {
    SmallVector<Attribute> props;
    for (const auto &entry : proto.metadata_props())
      props.push_back(builder.getArrayAttr(
          {builder.getStringAttr(entry.key()),
           builder.getStringAttr(entry.value())}));
    set("onnx.metadata_props", builder.getArrayAttr(props));
  }
  if (graph.has_name())
    set("onnx.graph_name", builder.getStringAttr(graph.name()));
  if (graph.has_doc_string())
    set("onnx.graph_doc_string", builder.getStringAttr(graph.doc_string()));
  for (const NamedAttribute &attr : moduleAttrs)
    module->setAttr(attr.getName(), attr.getValue());

  // @forward: the graph inputs are its arguments.
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argInfos;
  for (const auto &input : graph.input()) {
    Type type;
    FailureOr<DictionaryAttr> info = importValueInfo(input, type);
    if (failed(info))
      return nullptr;
    argTypes.push_back(type);
    argInfos.push_back(*info);
  }
  builder.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(builder, 
      fileLoc, "forward", builder.getFunctionType(argTypes, {}));
  initializerAnchor = func;
  Block *entry = func.addEntryBlock();
  Scope scope;
  for (auto [index, info] : llvm::enumerate(argInfos)) {
    func.setArgAttr(index, "onnx.value", info);
    scope.values[graph.input(index).name()] = entry->getArgument(index);
  }
  builder.setInsertionPointToEnd(entry);
  SmallVector<Value> outputs;
  SmallVector<Attribute> outputInfos;
  ArrayAttr valueInfo;
  if (failed(importGraph(graph, *entry, scope, outputs, outputInfos,
                         valueInfo)))
    return nullptr;
  func::ReturnOp::create(builder, fileLoc, outputs);
  SmallVector<Type> resultTypes;
  for (Value v : outputs)
    resultTypes.push_back(v.getType());
  func.setFunctionType(builder.getFunctionType(argTypes, resultTypes));
  for (auto [index, info] : llvm::enumerate(outputInfos))
    func.setResultAttr(index, "onnx.value", info);
  if (valueInfo)
    func->setAttr("onnx.value_info", valueInfo);
  return owned;
}

OwningOpRef<ModuleOp> mlir::lowbit::importONNX(MLIRContext *context,
                                               const std::string &path) {
  context->loadDialect<LowBitDialect, func::FuncDialect>();
  std::string error;
  std::unique_ptr<onnxfile::Model> model = onnxfile::readModel(path, error);
  if (!model) {
    emitError(FileLineColLoc::get(context, path, 0, 0)) << error;
    return nullptr;
  }
  return ONNXImporter(context, *model).run();
}
