//===- Quantize.cpp - Encode weights into their target formats ------------===//
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/Formats/Formats.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cmath>
#include <mutex>

namespace mlir::lowbit {
#define GEN_PASS_DEF_LOWBITQUANTIZE
#include "LowBit/Transforms/Passes.h.inc"
} // namespace mlir::lowbit

using namespace mlir;
using namespace mlir::lowbit;
namespace formats = ::lowbit::formats;

namespace {

std::mutex progressMutex;
QuantizeProgressFn progressCallback;

/// Rows decoded and re-encoded at a time: bounds the f32 scratch memory
/// (a 128k x 8k embedding is never held in f32 at once).
constexpr int64_t kRowsPerChunk = 256;

struct QuantizePass
    : public mlir::lowbit::impl::LowBitQuantizeBase<QuantizePass> {
  using Base::Base;

  /// The keys llama.cpp's quantize tool writes when it uses an imatrix.
  void recordImatrixMetadata(ModuleOp module,
                             const ::lowbit::calib::IMatrix &data) {
    MLIRContext *context = module.getContext();
    auto i32 = IntegerType::get(context, 32, IntegerType::Signed);
    appendMetadata(module, "quantize.imatrix.file", StringAttr::get(context, imatrix));
    if (!data.datasets.empty())
      appendMetadata(module, "quantize.imatrix.dataset",
                  StringAttr::get(context, data.datasets.front()));
    appendMetadata(module, "quantize.imatrix.entries_count",
                IntegerAttr::get(i32, static_cast<int64_t>(data.entries.size())));
    if (data.chunkCount > 0)
      appendMetadata(module, "quantize.imatrix.chunks_count",
                  IntegerAttr::get(i32, data.chunkCount));
  }

  LogicalResult quantizeWeight(GlobalWeightOp weight, formats::Format target,
                               const ::lowbit::calib::IMatrix *imatrix);

  void runOnOperation() override {
    ModuleOp module = getOperation();
    ::lowbit::calib::IMatrix imatrixData;
    const ::lowbit::calib::IMatrix *imatrixPtr = nullptr;
    if (!imatrix.empty()) {
      std::string error;
      if (!::lowbit::calib::IMatrix::load(imatrix, imatrixData, error)) {
        module.emitError() << error;
        return signalPassFailure();
      }
      imatrixPtr = &imatrixData;
      recordImatrixMetadata(module, imatrixData);
    }
    SmallVector<std::pair<GlobalWeightOp, formats::Format>> work;
    for (GlobalWeightOp weight : module.getOps<GlobalWeightOp>())
      if (auto target = weight->getAttrOfType<FormatAttr>(kTargetFormatAttrName))
        work.push_back({weight, target.getFormat()});

    // Every weight op that refers to a global, to retype it.
    llvm::StringMap<SmallVector<WeightOp>> users;
    module.walk([&](WeightOp op) { users[op.getName()].push_back(op); });

    size_t done = 0;
    for (auto [weight, target] : work) {
      {
        std::lock_guard<std::mutex> lock(progressMutex);
        if (progressCallback)
          progressCallback(done, work.size(), weight.getSymName());
      }
      if (failed(quantizeWeight(weight, target, imatrixPtr)))
        return signalPassFailure();
      for (WeightOp user : users[weight.getSymName()])
        user.getResult().setType(weight.getWeightType());
      ++done;
    }
    std::lock_guard<std::mutex> lock(progressMutex);
    if (progressCallback)
      progressCallback(done, work.size(), "");
  }
};

LogicalResult
QuantizePass::quantizeWeight(GlobalWeightOp weight, formats::Format target,
                             const ::lowbit::calib::IMatrix *imatrix) {
  QTensorType type = weight.getWeightType();
  StringRef name = weight.getSymName();
  const formats::FormatInfo &targetInfo = formats::info(target);
  const formats::FormatInfo &sourceInfo = type.getFormat().getInfo();
  int64_t rows = type.getNumRows(), n = type.getRowLength();
  if (n % targetInfo.blockSize != 0)
    return emitError(weight.getLoc())
           << "tensor '" << name << "' cannot be stored as " << targetInfo.name
           << ": its row length " << n << " is not a multiple of the block size "
           << targetInfo.blockSize;
  if (type.getLayout())
    return weight.emitOpError() << "cannot re-quantize a packed weight";
  if (!formats::hasCodec(target))
    return weight.emitOpError() << "format " << targetInfo.name
                                << " has no encoder";

  std::vector<float> importance;
  if (imatrix) {
    importance = imatrix->importance(name.str());
    if (!importance.empty() && static_cast<int64_t>(importance.size()) != n)
      return emitError(weight.getLoc())
             << "the importance matrix has " << importance.size()
             << " values for '" << name << "' but its rows have " << n
             << " columns; was it computed for another model?";
  }
  if (importance.empty() && formats::requiresImportance(target))
    return weight.emitOpError() << "format " << targetInfo.name
                                << " needs an importance matrix entry for '"
                                << name << "'";

  std::string error;
  const uint8_t *source = getWeightBytes(weight, error);
  if (!source)
    return emitError(weight.getLoc()) << "tensor '" << name << "': " << error;

  uint64_t sourceRowBytes = formats::rowBytes(sourceInfo, n);
  uint64_t targetRowBytes = formats::rowBytes(targetInfo, n);
  uint64_t totalBytes = targetRowBytes * rows;
  AsmResourceBlob blob =
      HeapAsmResourceBlob::allocate(totalBytes, alignof(uint64_t));
  uint8_t *out = reinterpret_cast<uint8_t *>(blob.getMutableData().data());

  std::vector<float> scratch, decoded;
  // Squared error and squared norm, for the relative RMS error report.
  double errorSquares = 0, normSquares = 0;
  int nthreads = threads;
  for (int64_t row = 0; row < rows; row += kRowsPerChunk) {
    int64_t count = std::min(kRowsPerChunk, rows - row);
    const float *values;
    if (sourceInfo.format == formats::Format::F32) {
      values = reinterpret_cast<const float *>(source + row * sourceRowBytes);
    } else {
      scratch.resize(static_cast<size_t>(count * n));
      formats::dequantizeRows(sourceInfo.format, source + row * sourceRowBytes,
                              scratch.data(), count, n, nthreads);
      values = scratch.data();
    }
    std::string why;
    if (!formats::quantizeRows(target, values, out + row * targetRowBytes,
                               count, n,
                               importance.empty() ? nullptr : importance.data(),
                               nthreads, &why))
      return emitError(weight.getLoc())
             << "tensor '" << name << "': " << why << " (counting from row "
             << row << ")";
    decoded.resize(static_cast<size_t>(count * n));
    formats::dequantizeRows(target, out + row * targetRowBytes, decoded.data(),
                            count, n, nthreads);
    for (int64_t i = 0; i < count * n; ++i) {
      double diff = double(decoded[i]) - double(values[i]);
      errorSquares += diff * diff;
      normSquares += double(values[i]) * double(values[i]);
    }
  }

  MLIRContext *context = weight.getContext();
  auto blobType = RankedTensorType::get({static_cast<int64_t>(totalBytes)},
                                        IntegerType::get(context, 8));
  auto data = DenseResourceElementsAttr::get(blobType, name, std::move(blob));
  weight.setTypeAttr(TypeAttr::get(type.withFormat(target)));
  weight.setDataAttr(data);
  weight->removeAttr(kTargetFormatAttrName);
  float relativeError =
      normSquares > 0 ? float(std::sqrt(errorSquares / normSquares)) : 0.0f;
  weight->setAttr(kQuantErrorAttrName,
                  FloatAttr::get(Float32Type::get(context), relativeError));
  return success();
}

} // namespace

void mlir::lowbit::setQuantizeProgressCallback(QuantizeProgressFn fn) {
  std::lock_guard<std::mutex> lock(progressMutex);
  progressCallback = std::move(fn);
}
