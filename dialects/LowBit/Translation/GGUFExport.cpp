//===- GGUFExport.cpp - lowbit dialect -> GGUF file -----------------------===//
#include "LowBit/Translation/GGUFExport.h"
#include "LowBit/IR/LowBit.h"
#include "lowbit/GGUF/GGUF.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"

using namespace mlir;
using namespace mlir::lowbit;
namespace gguf = ::lowbit::gguf;

namespace {

class GGUFExporter {
public:
  explicit GGUFExporter(ModuleOp module) : module(module) {}
  LogicalResult run(const std::string &path);
  LogicalResult collectMetadata(std::vector<gguf::KeyValue> &out);

private:
  FailureOr<gguf::Value> convert(Attribute attr, StringRef key, Location loc);
  FailureOr<gguf::Value> readArrayRef(GGUFArrayRefAttr ref, StringRef key,
                                      Location loc);

  ModuleOp module;
  llvm::StringMap<std::unique_ptr<gguf::Reader>> sources;
};

} // namespace

FailureOr<gguf::Value> GGUFExporter::readArrayRef(GGUFArrayRefAttr ref,
                                                  StringRef key, Location loc) {
  auto &reader = sources[ref.getPath()];
  if (!reader) {
    gguf::Error err;
    reader = gguf::Reader::open(ref.getPath().str(), err);
    if (!reader) {
      sources.erase(ref.getPath());
      return emitError(loc) << "metadata '" << key
                            << "' refers to a file that cannot be read: "
                            << err.message();
    }
  }
  const gguf::KeyValue *kv = reader->find(key);
  if (!kv || kv->value.type != gguf::ValueType::Array ||
      static_cast<uint32_t>(kv->value.elementType) != ref.getElementType() ||
      kv->value.elements.size() != ref.getCount())
    return emitError(loc) << "metadata '" << key << "' refers to "
                          << ref.getPath() << ", which no longer holds an array "
                          << "of " << ref.getCount() << " "
                          << ggufTypeName(ref.getElementType())
                          << " under that key";
  return kv->value;
}

FailureOr<gguf::Value> GGUFExporter::convert(Attribute attr, StringRef key,
                                             Location loc) {
  gguf::Value v;
  if (auto s = dyn_cast<StringAttr>(attr)) {
    v.type = gguf::ValueType::String;
    v.str = s.getValue().str();
    return v;
  }
  if (auto f = dyn_cast<FloatAttr>(attr)) {
    v.type = f.getType().isF32() ? gguf::ValueType::F32 : gguf::ValueType::F64;
    v.f = f.getValueAsDouble();
    return v;
  }
  if (auto i = dyn_cast<IntegerAttr>(attr)) {
    auto type = cast<IntegerType>(i.getType());
    if (type.getWidth() == 1) {
      v.type = gguf::ValueType::Bool;
      v.u = i.getValue().getBoolValue();
      return v;
    }
    bool isSigned = type.isSigned();
    switch (type.getWidth()) {
    case 8:
      v.type = isSigned ? gguf::ValueType::I8 : gguf::ValueType::U8;
      break;
    case 16:
      v.type = isSigned ? gguf::ValueType::I16 : gguf::ValueType::U16;
      break;
    case 32:
      v.type = isSigned ? gguf::ValueType::I32 : gguf::ValueType::U32;
      break;
    case 64:
      v.type = isSigned ? gguf::ValueType::I64 : gguf::ValueType::U64;
      break;
    default:
      return emitError(loc) << "metadata '" << key << "': unsupported " << type;
    }
    if (isSigned)
      v.i = i.getValue().getSExtValue();
    else
      v.u = i.getValue().getZExtValue();
    return v;
  }
  if (auto array = dyn_cast<GGUFArrayAttr>(attr)) {
    v.type = gguf::ValueType::Array;
    v.elementType = static_cast<gguf::ValueType>(array.getElementType());
    for (Attribute element : array.getElements()) {
      FailureOr<gguf::Value> converted = convert(element, key, loc);
      if (failed(converted))
        return failure();
      v.elements.push_back(std::move(*converted));
    }
    return v;
  }
  if (auto ref = dyn_cast<GGUFArrayRefAttr>(attr))
    return readArrayRef(ref, key, loc);
  if (isa<ModelKeyAttr>(attr)) {
    // An architecture key: its value is the typed lowbit.model's.
    ModelAttr model = getModelAttr(module);
    if (!model)
      return emitError(loc) << "metadata '" << key
                            << "' refers to lowbit.model, which the module "
                               "does not have";
    StringRef field = modelFieldOfKey(model.getArchitecture(), key);
    Attribute value = field.empty() ? Attribute() : model.getFields().get(field);
    if (!value)
      return emitError(loc) << "metadata '" << key << "' refers to field '"
                            << (field.empty() ? StringRef("?") : field)
                            << "' of lowbit.model (architecture '"
                            << model.getArchitecture() << "'), which is absent";
    return convert(value, key, loc);
  }
  return emitError(loc) << "metadata '" << key << "' has value " << attr
                        << ", which GGUF cannot hold";
}

LogicalResult
GGUFExporter::collectMetadata(std::vector<gguf::KeyValue> &out) {
  out.clear();
  auto metadata = module->getAttrOfType<ArrayAttr>(kMetadataAttrName);
  if (!metadata)
    return success();
  for (Attribute entry : metadata) {
    auto kv = dyn_cast<MetadataEntryAttr>(entry);
    if (!kv)
      return module.emitError()
             << "lowbit.metadata holds " << entry << ", expected #lowbit.kv";
    FailureOr<gguf::Value> value =
        convert(kv.getValue(), kv.getKey(), module.getLoc());
    if (failed(value))
      return failure();
    gguf::KeyValue converted;
    converted.key = kv.getKey().str();
    converted.value = std::move(*value);
    out.push_back(std::move(converted));
  }
  return success();
}

LogicalResult GGUFExporter::run(const std::string &path) {
  int32_t version = 3;
  if (auto v = module->getAttrOfType<IntegerAttr>(kGGUFVersionAttrName))
    version = static_cast<int32_t>(v.getInt());
  gguf::Writer writer(version);
  std::vector<gguf::KeyValue> metadata;
  if (failed(collectMetadata(metadata)))
    return failure();
  for (gguf::KeyValue &kv : metadata)
    writer.set(kv.key, std::move(kv.value));
  for (auto weight : module.getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    if (type.getLayout() && type.getLayout().getRows() != 1)
      return weight.emitOpError()
             << "has a packed layout for a target; GGUF holds only the "
                "row-major GGML layout";
    int32_t ggmlType = type.getFormat().getInfo().ggmlType;
    if (ggmlType < 0)
      return weight.emitOpError() << "format " << type.getFormat().getName()
                                  << " has no GGUF type; choose a GGML format "
                                     "or export to ONNX";
    std::string error;
    const uint8_t *bytes = getWeightBytes(weight, error);
    if (!bytes)
      return weight.emitOpError() << error;
    std::vector<uint64_t> dims(type.getShape().rbegin(), type.getShape().rend());
    writer.addTensor(weight.getSymName().str(), std::move(dims),
                     static_cast<uint32_t>(ggmlType), bytes,
                     type.getByteSize());
  }
  gguf::Error err;
  if (!writer.write(path, err))
    return module.emitError() << err.message();
  return success();
}

LogicalResult mlir::lowbit::exportGGUF(ModuleOp module,
                                       const std::string &path) {
  return GGUFExporter(module).run(path);
}

LogicalResult
mlir::lowbit::collectGGUFMetadata(ModuleOp module,
                                  std::vector<gguf::KeyValue> &out) {
  return GGUFExporter(module).collectMetadata(out);
}

namespace {
/// Bytes a value takes in a GGUF file (after its type tag), as the writer
/// lays it out.
uint64_t encodedValueBytes(const gguf::Value &v) {
  switch (v.type) {
  case gguf::ValueType::String:
    return 8 + v.str.size();
  case gguf::ValueType::Array: {
    uint64_t bytes = 4 + 8; // element type, count
    for (const gguf::Value &e : v.elements)
      bytes += encodedValueBytes(e);
    return bytes;
  }
  default:
    return gguf::scalarSize(v.type);
  }
}

/// general.alignment as the writer reads it (a UINT32 power of two), else 32.
uint64_t alignmentOf(const std::vector<gguf::KeyValue> &metadata) {
  for (const gguf::KeyValue &kv : metadata)
    if (kv.key == "general.alignment" &&
        kv.value.type == gguf::ValueType::U32 && kv.value.u != 0 &&
        (kv.value.u & (kv.value.u - 1)) == 0)
      return kv.value.u;
  return 32;
}
} // namespace

FailureOr<GGUFLayout> mlir::lowbit::computeGGUFLayout(ModuleOp module) {
  std::vector<gguf::KeyValue> metadata;
  if (failed(collectGGUFMetadata(module, metadata)))
    return failure();
  GGUFLayout layout;
  layout.alignment = alignmentOf(metadata);
  // Magic, version, tensor count, key/value count.
  uint64_t bytes = 4 + 4 + 8 + 8;
  for (const gguf::KeyValue &kv : metadata)
    bytes += 8 + kv.key.size() + 4 + encodedValueBytes(kv.value);
  for (auto weight : module.getOps<GlobalWeightOp>()) {
    // Name, dimension count, dimensions, ggml type, offset.
    bytes += 8 + weight.getSymName().size() + 4 +
             8 * weight.getWeightType().getShape().size() + 4 + 8;
    ++layout.tensorCount;
  }
  layout.headerBytes = bytes;
  return layout;
}
