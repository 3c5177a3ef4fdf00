//===- AssignFormats.cpp - Choose weight formats from a preset ------------===//
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Quant/Presets.h"

#include "lowbit/Support/MappedFile.h"

#include "mlir/IR/Builders.h"

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITASSIGNFORMATS
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace quant = ::lowbit::quant;
namespace formats = ::lowbit::formats;

namespace {


struct AssignFormatsPass
    : public mlir::lowbit::impl::LowBitAssignFormatsBase<AssignFormatsPass> {
  using Base::Base;

  LogicalResult parseFormat(StringRef option, const std::string &name,
                            std::optional<formats::Format> &out) {
    if (name.empty())
      return success();
    const formats::FormatInfo *f = formats::findByName(name);
    if (!f)
      return getOperation().emitError()
             << "unknown format '" << name << "' for " << option;
    if (const char *why = quant::weightFormatProblem(f->format))
      return getOperation().emitError() << option << ": " << why;
    out = f->format;
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    quant::PresetOptions options;
    if (!preset.empty()) {
      options.preset = quant::findPreset(preset);
      if (!options.preset) {
        InFlightDiagnostic diag = module.emitError();
        diag << "unknown preset '" << preset << "'; known presets:";
        for (const quant::Preset &p : quant::allPresets())
          diag << " " << p.name;
        return signalPassFailure();
      }
    }
    for (const std::string &text : tensorTypes) {
      quant::TypeOverride override;
      std::string error;
      if (!quant::parseTypeOverride(text, override, error)) {
        module.emitError() << error;
        return signalPassFailure();
      }
      options.overrides.push_back(override);
    }
    if (failed(parseFormat("output-tensor-type", outputTensorType,
                           options.outputType)) ||
        failed(parseFormat("token-embedding-type", tokenEmbeddingType,
                           options.tokenEmbeddingType)))
      return signalPassFailure();
    options.pure = pure;
    options.hasImportance = hasImportance;
    quant::GateTable gateTable;
    if (!dynamicGate.empty()) {
      if (dynamicGate == "published") {
        gateTable = quant::GateTable::published();
      } else {
        std::string text, error;
        if (!::lowbit::readWholeFile(dynamicGate, text, error) ||
            !quant::GateTable::parse(text, dynamicGate, gateTable, error)) {
          module.emitError() << "dynamic-gate: " << error;
          return signalPassFailure();
        }
      }
      options.gate = &gateTable;
    }

    quant::ModelShape shape;
    if (ModelAttr model = getModelAttr(module)) {
      shape.architecture = model.getArchitecture().str();
      shape.layers = model.getBlockCount();
      shape.heads = model.getHeadCount();
      shape.kvHeads = model.getHeadCountKV();
      shape.experts = model.getExpertCount();
    }

    SmallVector<GlobalWeightOp> weights(module.getOps<GlobalWeightOp>());
    std::vector<quant::TensorDesc> tensors;
    for (GlobalWeightOp weight : weights) {
      QTensorType type = weight.getWeightType();
      quant::TensorDesc desc;
      desc.name = ggufTensorName(weight);
      desc.shape.assign(type.getShape().begin(), type.getShape().end());
      desc.current = type.getFormat().getFormat();
      if (RoleAttr role = getWeightRole(weight)) {
        desc.kind = role.getKind().str();
        desc.layer = role.getLayer();
      }
      tensors.push_back(std::move(desc));
    }
    std::vector<quant::TensorChoice> choices;
    std::string error;
    if (!quant::chooseFormats(tensors, shape, options, choices, error)) {
      module.emitError() << error;
      return signalPassFailure();
    }
    MLIRContext *context = module.getContext();
    for (auto [weight, choice] : llvm::zip(weights, choices)) {
      if (choice.format == weight.getWeightType().getFormat().getFormat()) {
        weight->removeAttr(kTargetFormatAttrName);
        continue;
      }
      weight->setAttr(kTargetFormatAttrName,
                      FormatAttr::get(context, choice.format));
    }
    if (options.preset) {
      // llama.cpp writes both keys on every quantized file, in this order.
      auto u32 = IntegerType::get(context, 32, IntegerType::Unsigned);
      appendMetadata(module, "general.quantization_version",
                  IntegerAttr::get(u32, quant::kGGMLQuantizationVersion));
      appendMetadata(module, "general.file_type",
                  IntegerAttr::get(u32, options.preset->llamaFileType));
    }
  }
};

} // namespace
