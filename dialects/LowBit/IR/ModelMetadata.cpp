//===- ModelMetadata.cpp - Ordered GGUF metadata on the module ------------===//
#include "LowBit/IR/LowBit.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::lowbit;

Attribute mlir::lowbit::getMetadata(ModuleOp module, StringRef key) {
  auto entries = module->getAttrOfType<ArrayAttr>(kMetadataAttrName);
  if (!entries)
    return {};
  for (Attribute entry : entries)
    if (auto kv = dyn_cast<MetadataEntryAttr>(entry); kv && kv.getKey() == key)
      return kv.getValue();
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
