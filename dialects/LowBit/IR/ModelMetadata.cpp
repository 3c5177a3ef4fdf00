//===- ModelMetadata.cpp - Ordered GGUF metadata on the module ------------===//
#include "LowBit/IR/LowBit.h"

#include "lowbit/GGUF/TensorNames.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::lowbit;

namespace {
/// The hyperparameters lowbit.model holds: GGUF key suffix (after
/// "<arch>.") -> field name, and whether the value is a float.
struct ModelKey {
  const char *suffix;
  const char *field;
  bool isFloat;
};
constexpr ModelKey kModelKeys[] = {
    {"vocab_size", "vocab_size", false},
    {"context_length", "context_length", false},
    {"embedding_length", "embedding_length", false},
    {"block_count", "block_count", false},
    {"feed_forward_length", "feed_forward_length", false},
    {"attention.head_count", "head_count", false},
    {"attention.head_count_kv", "head_count_kv", false},
    {"attention.key_length", "key_length", false},
    {"attention.value_length", "value_length", false},
    {"attention.sliding_window", "sliding_window", false},
    {"rope.dimension_count", "rope_dimension_count", false},
    {"expert_count", "expert_count", false},
    {"expert_used_count", "expert_used_count", false},
    {"expert_feed_forward_length", "expert_feed_forward_length", false},
    {"attention.layer_norm_rms_epsilon", "rms_epsilon", true},
    {"attention.layer_norm_epsilon", "norm_epsilon", true},
    {"rope.freq_base", "rope_freq_base", true},
    {"rope.scaling.factor", "rope_scaling_factor", true},
};
} // namespace

StringRef mlir::lowbit::modelFieldOfKey(StringRef arch, StringRef key) {
  if (arch.empty() || !key.consume_front(arch) || !key.consume_front("."))
    return "";
  for (const ModelKey &k : kModelKeys)
    if (key == k.suffix)
      return k.field;
  return "";
}

bool mlir::lowbit::isFloatModelField(StringRef field) {
  for (const ModelKey &k : kModelKeys)
    if (field == k.field)
      return k.isFloat;
  return false;
}

ModelAttr mlir::lowbit::getModelAttr(ModuleOp module) {
  return module->getAttrOfType<ModelAttr>(kModelAttrName);
}

LogicalResult ModelAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                StringRef architecture, DictionaryAttr fields) {
  if (architecture.empty())
    return emitError() << "#lowbit.model needs an architecture";
  for (NamedAttribute field : fields) {
    StringRef name = field.getName().getValue();
    const ModelKey *known = nullptr;
    for (const ModelKey &k : kModelKeys)
      if (name == k.field)
        known = &k;
    if (!known)
      return emitError() << "#lowbit.model has no field '" << name << "'";
    bool ok = known->isFloat ? isa<FloatAttr>(field.getValue())
                             : isa<IntegerAttr>(field.getValue());
    if (!ok)
      return emitError() << "#lowbit.model field '" << name << "' must be "
                         << (known->isFloat ? "a float" : "an integer");
  }
  return success();
}

std::optional<int64_t> ModelAttr::getInt(StringRef field) const {
  auto value = dyn_cast_or_null<IntegerAttr>(getFields().get(field));
  if (!value)
    return std::nullopt;
  auto type = cast<IntegerType>(value.getType());
  return type.isUnsigned() ? static_cast<int64_t>(value.getValue().getZExtValue())
                           : value.getValue().getSExtValue();
}

std::optional<double> ModelAttr::getFloat(StringRef field) const {
  if (auto value = dyn_cast_or_null<FloatAttr>(getFields().get(field)))
    return value.getValueAsDouble();
  return std::nullopt;
}

Attribute mlir::lowbit::getMetadata(ModuleOp module, StringRef key) {
  auto entries = module->getAttrOfType<ArrayAttr>(kMetadataAttrName);
  if (!entries)
    return {};
  for (Attribute entry : entries)
    if (auto kv = dyn_cast<MetadataEntryAttr>(entry); kv && kv.getKey() == key) {
      if (!isa<ModelKeyAttr>(kv.getValue()))
        return kv.getValue();
      ModelAttr model = getModelAttr(module);
      return model ? model.getFields().get(
                         modelFieldOfKey(model.getArchitecture(), key))
                   : Attribute();
    }
  return {};
}

std::optional<int64_t> mlir::lowbit::getMetadataInt(ModuleOp module,
                                                    StringRef key) {
  auto value = dyn_cast_or_null<IntegerAttr>(getMetadata(module, key));
  if (!value)
    return std::nullopt;
  auto type = cast<IntegerType>(value.getType());
  return type.isUnsigned() || type.getWidth() == 1
             ? static_cast<int64_t>(value.getValue().getZExtValue())
             : value.getValue().getSExtValue();
}

std::optional<std::string> mlir::lowbit::getMetadataString(ModuleOp module,
                                                           StringRef key) {
  if (auto value = dyn_cast_or_null<StringAttr>(getMetadata(module, key)))
    return value.getValue().str();
  return std::nullopt;
}

void mlir::lowbit::setMetadata(ModuleOp module, StringRef key,
                               Attribute value) {
  MLIRContext *context = module.getContext();
  SmallVector<Attribute> entries;
  if (auto existing = module->getAttrOfType<ArrayAttr>(kMetadataAttrName))
    entries.assign(existing.begin(), existing.end());
  auto entry = MetadataEntryAttr::get(context, key, value);
  bool replaced = false;
  for (Attribute &slot : entries)
    if (auto kv = dyn_cast<MetadataEntryAttr>(slot); kv && kv.getKey() == key) {
      slot = entry;
      replaced = true;
    }
  if (!replaced)
    entries.push_back(entry);
  module->setAttr(kMetadataAttrName, ArrayAttr::get(context, entries));
}

void mlir::lowbit::appendMetadata(ModuleOp module, StringRef key,
                                  Attribute value) {
  MLIRContext *context = module.getContext();
  SmallVector<Attribute> entries;
  if (auto existing = module->getAttrOfType<ArrayAttr>(kMetadataAttrName))
    for (Attribute entry : existing)
      if (auto kv = dyn_cast<MetadataEntryAttr>(entry); !kv || kv.getKey() != key)
        entries.push_back(entry);
  entries.push_back(MetadataEntryAttr::get(context, key, value));
  module->setAttr(kMetadataAttrName, ArrayAttr::get(context, entries));
}

std::string mlir::lowbit::ggufTensorName(GlobalWeightOp weight) {
  RoleAttr role = weight.getRoleAttr();
  if (!role)
    return weight.getSymName().str();
  return ::lowbit::gguf::tensorNameOfRole(
      {role.getKind().str(), role.getLayer(), role.getExpert()});
}

RoleAttr mlir::lowbit::getWeightRole(GlobalWeightOp weight) {
  if (RoleAttr role = weight.getRoleAttr())
    return role;
  std::optional<::lowbit::gguf::TensorRole> role =
      ::lowbit::gguf::roleOfTensorName(weight.getSymName());
  return role ? RoleAttr::get(weight.getContext(), role->kind, role->layer,
                              role->expert)
              : RoleAttr();
}

::lowbit::gguf::TensorRole
mlir::lowbit::getWeightTensorRole(GlobalWeightOp weight) {
  if (RoleAttr role = getWeightRole(weight))
    return {role.getKind().str(), role.getLayer(), role.getExpert()};
  return {};
}
