//===- AllocateBits.cpp - One format per weight under a size budget -------===//
#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Analysis/BitAllocation.h"
#include "LowBit/Translation/GGUFExport.h"
#include "lowbit/Quant/Presets.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>
#include <map>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITALLOCATEBITS
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace analysis = ::lowbit::analysis;
namespace formats = ::lowbit::formats;
namespace quant = ::lowbit::quant;
using formats::Format;

namespace {

/// GGML's quantization version, written as general.quantization_version.

bool fits(Format f, int64_t rowLength) {
  return rowLength % formats::info(f).blockSize == 0;
}

/// general.file_type for a mix: the preset of the format holding the most
/// weights (its _m variant when there is one).
uint32_t fileTypeFor(Format dominant) {
  const quant::Preset *found = nullptr;
  for (const quant::Preset &p : quant::allPresets()) {
    if (p.defaultFormat != dominant)
      continue;
    std::string name = p.name;
    bool medium =
        name.size() > 2 && name.compare(name.size() - 2, 2, "_m") == 0;
    if (!found || medium)
      found = &p;
    if (medium)
      break;
  }
  return found ? found->llamaFileType : 0;
}

struct Tensor {
  GlobalWeightOp op;
  int64_t elements = 0;
  Format current = Format::F32;
  Format chosen = Format::F32;
  bool searched = false;
  size_t searchIndex = 0;
};

struct AllocateBitsPass
    : public mlir::lowbit::impl::LowBitAllocateBitsBase<AllocateBitsPass> {
  using Base::Base;

  void runOnOperation() override;
};

void AllocateBitsPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto fail = [&](const Twine &message) {
    module.emitError() << message;
    signalPassFailure();
  };
  const bool hasBpw = targetBpw != 0.0, hasSize = !targetSize.empty();
  if (hasBpw == hasSize)
    return fail("lowbit-allocate-bits needs one of target-bpw and target-size");
  if (hasBpw && !(targetBpw > 0 && targetBpw < 64))
    return fail("target-bpw must be between 0 and 64, got " +
                std::to_string(targetBpw));
  if (reserveBytes < 0)
    return fail("reserve-bytes must not be negative");
  analysis::AllocationMethod allocationMethod;
  if (method == "auto")
    allocationMethod = analysis::AllocationMethod::Auto;
  else if (method == "exact")
    allocationMethod = analysis::AllocationMethod::Exact;
  else if (method == "lagrangian")
    allocationMethod = analysis::AllocationMethod::Lagrangian;
  else
    return fail("method must be auto, exact or lagrangian, not '" + method +
                "'");

  analysis::TensorPins pins;
  {
    std::vector<std::string> rules(tensorTypes.begin(), tensorTypes.end());
    std::string error;
    if (!pins.parse(rules, error))
      return fail(error);
  }

  ModelAttr model = getModelAttr(module);
  int64_t layers = model ? model.getBlockCount() : 0;
  if (layers <= 0)
    for (GlobalWeightOp op : module.getOps<GlobalWeightOp>())
      if (RoleAttr role = getWeightRole(op))
        layers = std::max<int64_t>(layers, role.getLayer() + 1);

  // The keys every quantized file carries; their values do not change the
  // header's size, so they are set before it is measured.
  MLIRContext *context = module.getContext();
  auto u32 = IntegerType::get(context, 32, IntegerType::Unsigned);
  appendMetadata(module, "general.quantization_version",
                 IntegerAttr::get(u32, quant::kGGMLQuantizationVersion));
  appendMetadata(module, "general.file_type", IntegerAttr::get(u32, 0));
  FailureOr<GGUFLayout> layout = computeGGUFLayout(module);
  if (failed(layout))
    return signalPassFailure();

  std::vector<Tensor> tensors;
  std::vector<analysis::AllocationTensor> search;
  int64_t elements = 0;
  uint64_t fixedBytes = 0;
  bool anySensitivity = false;
  // A model imported from ONNX goes back out as ONNX: a weight costs what
  // it takes there (MatMulNBits' f32 scales and zero points included).
  auto source = module->getAttrOfType<StringAttr>("lowbit.source");
  const bool onnxSizes = source && source.getValue() == "onnx";
  // An embedding table an ONNX Gather reads.
  auto readAsTable = [&](GlobalWeightOp op) {
    std::optional<SymbolTable::UseRange> uses =
        SymbolTable::getSymbolUses(op, module);
    return uses && llvm::any_of(*uses, [](const SymbolTable::SymbolUse &use) {
             return llvm::any_of(use.getUser()->getUsers(), [](Operation *u) {
               return isa<ONNXNodeOp>(u);
             });
           });
  };
  auto fitsGatherBlockQuantized = [](Format f) {
    formats::AffineForm form;
    return f == Format::F32 || (formats::affineForm(f, form) &&
                                form.integerZeros && form.bits != 2);
  };
  auto bytesOf = [&](QTensorType type, Format f) -> uint64_t {
    if (onnxSizes)
      return formats::onnxWeightBytes(f, type.getNumRows(),
                                      type.getRowLength());
    return layout->alignUp(type.withFormat(f).getByteSize());
  };
  for (GlobalWeightOp op : module.getOps<GlobalWeightOp>()) {
    QTensorType type = op.getWeightType();
    std::string name = ggufTensorName(op);
    Tensor t;
    t.op = op;
    t.elements = type.getNumElements();
    t.current = t.chosen = type.getFormat().getFormat();
    elements += t.elements;
    const int64_t rowLength = type.getShape().back();
    const bool quantizable =
        quant::isQuantizable(getWeightTensorRole(op), type.getShape().size()) && !type.getLayout();
    auto sensitivity = op->getAttrOfType<DictionaryAttr>(kSensitivityAttrName);
    anySensitivity |= static_cast<bool>(sensitivity);
    std::string rule;
    int pinned = quantizable ? pins.match(name, &rule) : -1;
    if (pinned >= 0) {
      Format f = static_cast<Format>(pinned);
      if (!fits(f, rowLength))
        return fail("tensor '" + name + "' cannot be stored as " +
                    formats::info(f).name + " (--tensor-type '" + rule +
                    "'): its row length " + std::to_string(rowLength) +
                    " is not a multiple of the block size " +
                    std::to_string(formats::info(f).blockSize));
      t.chosen = f;
    } else if (quantizable && sensitivity) {
      analysis::AllocationTensor candidate;
      candidate.name = name;
      for (NamedAttribute entry : sensitivity) {
        const formats::FormatInfo *f =
            formats::findByName(entry.getName().strref());
        auto damage = dyn_cast<FloatAttr>(entry.getValue());
        if (!f || !damage)
          return fail("tensor '" + name + "': lowbit.sensitivity entry '" +
                      entry.getName().strref() +
                      "' is not a format name with a float damage");
        if (!fits(f->format, rowLength))
          return fail("tensor '" + name + "': candidate " + f->name +
                      " does not fit its row length " +
                      std::to_string(rowLength));
        double value = damage.getValueAsDouble();
        if (!std::isfinite(value) || value < 0)
          return fail("tensor '" + name + "': damage of " + f->name +
                      " is negative or not finite");
        if (onnxSizes && readAsTable(op) && !fitsGatherBlockQuantized(f->format))
          continue; // GatherBlockQuantized holds integer zero points only.
        analysis::AllocationOption option;
        option.bytes = bytesOf(type, f->format);
        if (option.bytes == 0)
          return fail("tensor '" + name + "': candidate " + f->name +
                      " has no ONNX form (MatMulNBits takes 2, 4 and 8 "
                      "bits with linear groups)");
        option.damage = value;
        option.id = static_cast<int>(f->format);
        candidate.options.push_back(option);
      }
      if (candidate.options.empty())
        return fail("tensor '" + name + "' has an empty lowbit.sensitivity");
      t.searched = true;
      t.searchIndex = search.size();
      search.push_back(std::move(candidate));
    } else if (quantizable) {
      op.emitWarning() << "no lowbit.sensitivity for '" << name << "': kept as "
                       << formats::info(t.current).name;
    }
    if (!t.searched)
      fixedBytes += bytesOf(type, t.chosen);
    tensors.push_back(t);
  }
  if (!anySensitivity)
    return fail("no weight has a lowbit.sensitivity attribute: run "
                "lowbit-sensitivity first");

  // ONNX budgets count the weights (the graph and its other tensors are
  // the model's own, whatever the allocation does).
  fixedBytes += onnxSizes ? static_cast<uint64_t>(reserveBytes)
                          : layout->alignUp(layout->headerBytes +
                                            static_cast<uint64_t>(reserveBytes));
  uint64_t budget = 0, largestBytes = 0;
  analysis::AllocationResult result;
  if (hasBpw) {
    budget = static_cast<uint64_t>(
        std::floor(targetBpw * static_cast<double>(elements) / 8.0));
  } else {
    std::string error;
    if (!analysis::parseByteSize(targetSize, budget, error))
      return fail("target-size: " + error);
  }
  uint64_t smallest = fixedBytes, largest = fixedBytes;
  for (const analysis::AllocationTensor &t : search) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const analysis::AllocationOption &o : t.options) {
      lo = std::min(lo, o.bytes);
      hi = std::max(hi, o.bytes);
    }
    smallest += lo;
    largest += hi;
  }
  auto describe = [&](uint64_t bytes) {
    return std::to_string(bytes) + " bytes (" +
           llvm::formatv("{0:f3}", bytes * 8.0 / double(elements)).str() +
           " bits per weight)";
  };
  if (budget < smallest)
    return fail("the budget of " + describe(budget) +
                " is below the smallest file the candidate formats allow: " +
                describe(smallest));
  std::string error;
  if (!analysis::allocateBits(search, budget - fixedBytes, result, error,
                              allocationMethod))
    return fail("cannot meet the budget of " + describe(budget) + ": " +
                error);
  largestBytes = largest;
  if (budget > largest)
    module.emitWarning() << "the budget of " << describe(budget)
                         << " exceeds the largest file the candidate "
                            "formats allow: "
                         << describe(largest);
  for (Tensor &t : tensors)
    if (t.searched)
      t.chosen = static_cast<Format>(
          search[t.searchIndex].options[result.choice[t.searchIndex]].id);

  // Record the choice as lowbit-assign-formats does.
  std::map<Format, int64_t> weightsByFormat;
  uint64_t predicted = fixedBytes + result.bytes;
  for (Tensor &t : tensors) {
    if (t.chosen == t.current)
      t.op->removeAttr(kTargetFormatAttrName);
    else
      t.op->setAttr(kTargetFormatAttrName, FormatAttr::get(context, t.chosen));
    t.op->removeAttr(kSensitivityAttrName);
    if (formats::info(t.chosen).kind != formats::FormatKind::Float)
      weightsByFormat[t.chosen] += t.elements;
  }
  Format dominant = Format::F32;
  int64_t most = 0;
  for (auto [format, count] : weightsByFormat)
    if (count > most) {
      most = count;
      dominant = format;
    }
  setMetadata(module, "general.file_type",
              IntegerAttr::get(u32, fileTypeFor(dominant)));

  Builder b(context);
  SmallVector<NamedAttribute> info = {
      b.getNamedAttr("predicted_bytes",
                     b.getI64IntegerAttr(static_cast<int64_t>(predicted))),
      b.getNamedAttr("elements", b.getI64IntegerAttr(elements)),
      b.getNamedAttr("damage", b.getF64FloatAttr(result.damage)),
      b.getNamedAttr("method", b.getStringAttr(result.method)),
      b.getNamedAttr("budget",
                     b.getI64IntegerAttr(static_cast<int64_t>(budget))),
  };
  if (predicted < budget - budget / 200 && budget <= largestBytes)
    module.emitWarning()
        << "the allocation fills "
        << llvm::formatv("{0:f2}", 100.0 * predicted / budget).str()
        << "% of the budget: no larger format fits or "
           "lowers the predicted damage";
  module->setAttr(kAllocationAttrName, b.getDictionaryAttr(info));
}

} // namespace
