//===- Quantize.cpp - Encode weights into their target formats ------------===//
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Calibration/Hessian.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Quant/GPTQ.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cmath>
#include <cstring>
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

/// Installs encoded bytes as the weight's data in format `target`.
void replaceData(GlobalWeightOp weight, formats::Format target,
                 AsmResourceBlob blob, float relativeError) {
  MLIRContext *context = weight.getContext();
  auto blobType =
      RankedTensorType::get({static_cast<int64_t>(blob.getData().size())},
                            IntegerType::get(context, 8));
  auto data = DenseResourceElementsAttr::get(blobType, weight.getSymName(),
                                             std::move(blob));
  weight.setTypeAttr(TypeAttr::get(weight.getWeightType().withFormat(target)));
  weight.setDataAttr(data);
  weight->removeAttr(kTargetFormatAttrName);
  weight->setAttr(kQuantErrorAttrName,
                  FloatAttr::get(Float32Type::get(context), relativeError));
}

/// The per-column scales lowbit-awq-scale multiplied the weight by; empty
/// when it was not scaled.
LogicalResult readAWQScales(GlobalWeightOp weight, std::vector<float> &out) {
  out.clear();
  Attribute attr = weight->getAttr(kAWQScaledAttrName);
  if (!attr)
    return success();
  int64_t n = weight.getWeightType().getRowLength();
  auto resource = dyn_cast<DenseResourceElementsAttr>(attr);
  AsmResourceBlob *blob =
      resource ? resource.getRawHandle().getBlob() : nullptr;
  if (!blob || blob->getData().size() != size_t(n) * sizeof(float) ||
      !resource.getType().getElementType().isF32())
    return emitError(weight.getLoc())
           << "tensor '" << weight.getSymName() << "': " << kAWQScaledAttrName
           << " must hold " << n << " f32 scales";
  out.resize(n);
  std::memcpy(out.data(), blob->getData().data(), n * sizeof(float));
  for (float v : out)
    if (!(v > 0) || !std::isfinite(v))
      return emitError(weight.getLoc())
             << "tensor '" << weight.getSymName()
             << "': AWQ scales must be finite and positive";
  return success();
}

struct QuantizePass
    : public mlir::lowbit::impl::LowBitQuantizeBase<QuantizePass> {
  using Base::Base;

  /// The keys llama.cpp's quantize tool writes when it uses an imatrix.
  void recordImatrixMetadata(ModuleOp module,
                             const ::lowbit::calib::IMatrix &data) {
    MLIRContext *context = module.getContext();
    auto i32 = IntegerType::get(context, 32, IntegerType::Signed);
    appendMetadata(
        module, "quantize.imatrix.file",
        StringAttr::get(context, imatrixName.empty() ? imatrix : imatrixName));
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
  LogicalResult quantizeGPTQ(GlobalWeightOp weight, formats::Format target,
                             std::vector<std::vector<float>> hessians,
                             const std::vector<float> &awqScales);

  /// Hessians for method=gptq.
  std::shared_ptr<::lowbit::calib::HessianStore> hessians;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (method != "rtn" && method != "gptq") {
      module.emitError() << "unknown quantization method '" << method
                         << "' (expected rtn or gptq)";
      return signalPassFailure();
    }
    if (method == "gptq") {
      if (state.empty()) {
        module.emitError() << "method=gptq needs a calibration state with "
                              "Hessians (state=FILE, written by "
                              "lowbit-calibrate with hessians=true)";
        return signalPassFailure();
      }
      std::string error;
      hessians = ::lowbit::calib::HessianStore::open(state, error);
      if (!hessians) {
        module.emitError() << error;
        return signalPassFailure();
      }
    }
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

    // Formats GGML encodes only with an importance matrix: refuse before any
    // work when there is none at all (a missing entry is caught per weight).
    if (!imatrixPtr)
      for (auto [weight, target] : work)
        if (formats::requiresImportance(target)) {
          weight.emitOpError()
              << "format " << formats::info(target).name
              << " has no plain encoding (GGML needs an importance matrix "
                 "for it): pass one (imatrix=FILE; lowbit compile: --imatrix "
                 "FILE, or --calib TEXT to compute one)";
          return signalPassFailure();
        }

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

  // One importance vector per matrix: a stacked 3-D weight [experts, rows,
  // n] has one per expert.
  const int64_t matrices =
      type.getShape().size() == 3 ? type.getShape().front() : 1;
  const int64_t rowsPerMatrix = rows / matrices;
  std::vector<std::vector<float>> importance(static_cast<size_t>(matrices));
  if (imatrix) {
    for (int64_t m = 0; m < matrices; ++m) {
      std::vector<float> &v = importance[m];
      v = imatrix->importance(name.str(), m, n);
      if (v.empty() && m > 0 && !importance[0].empty())
        return emitError(weight.getLoc())
               << "the importance matrix has " << m << " matrices for '"
               << name << "' but it has " << matrices
               << " experts; was it computed for another model?";
      if (!v.empty() && static_cast<int64_t>(v.size()) != n)
        return emitError(weight.getLoc())
               << "the importance matrix has " << v.size() << " values for '"
               << name << "' but its rows have " << n
               << " columns; was it computed for another model?";
    }
  }
  if (importance[0].empty() && formats::requiresImportance(target))
    return weight.emitOpError()
           << "format " << targetInfo.name
           << " needs an importance matrix entry for '" << name
           << "' (GGML has no plain encoding for it); the importance matrix "
              "has none: was it computed for another model?";

  // A weight scaled by lowbit-awq-scale reads x / s: statistics of x are
  // rescaled to match.
  std::vector<float> awqScales;
  if (failed(readAWQScales(weight, awqScales)))
    return failure();
  if (!awqScales.empty())
    for (std::vector<float> &v : importance)
      for (int64_t c = 0; c < static_cast<int64_t>(v.size()); ++c)
        v[c] /= awqScales[c] * awqScales[c];

  MLIRContext *context = weight.getContext();
  if (hessians) {
    // One Hessian per matrix (each expert of a 3-D weight has its own).
    std::vector<std::vector<float>> matrixHessians(
        static_cast<size_t>(matrices));
    bool anyHessian = false;
    for (int64_t m = 0;
         targetInfo.kind != formats::FormatKind::Float && m < matrices; ++m) {
      const std::string matrix =
          ::lowbit::calib::hessianMatrixName(name.str(), m, matrices);
      if (!hessians->has(matrix))
        continue;
      int64_t k = 0;
      std::string error;
      if (!hessians->get(matrix, matrixHessians[m], k, error))
        return emitError(weight.getLoc())
               << "tensor '" << name << "': " << error;
      if (k != n)
        return emitError(weight.getLoc())
               << "the Hessian of '" << matrix << "' is " << k << " x " << k
               << " but its rows have " << n
               << " columns; was the state computed for another model?";
      anyHessian = true;
    }
    if (anyHessian)
      return quantizeGPTQ(weight, target, std::move(matrixHessians),
                          awqScales);
    // No matmul input (token_embd) or a float target: plain rounding.
    weight->setAttr(kQuantMethodAttrName, StringAttr::get(context, "rtn"));
  }

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
  for (int64_t row = 0, count = 0; row < rows; row += count) {
    // Chunks stay inside one matrix: each has its own importance.
    const int64_t matrix = row / rowsPerMatrix;
    count = std::min(kRowsPerChunk, (matrix + 1) * rowsPerMatrix - row);
    const std::vector<float> &rowImportance = importance[matrix];
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
                               rowImportance.empty() ? nullptr
                                                     : rowImportance.data(),
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

  float relativeError =
      normSquares > 0 ? float(std::sqrt(errorSquares / normSquares)) : 0.0f;
  replaceData(weight, target, std::move(blob), relativeError);
  return success();
}

LogicalResult QuantizePass::quantizeGPTQ(GlobalWeightOp weight,
                                         formats::Format target,
                                         std::vector<std::vector<float>> hessians,
                                         const std::vector<float> &awqScales) {
  QTensorType type = weight.getWeightType();
  StringRef name = weight.getSymName();
  const formats::FormatInfo &sourceInfo = type.getFormat().getInfo();
  int64_t rows = type.getNumRows(), n = type.getRowLength();
  const int64_t matrices = static_cast<int64_t>(hessians.size());
  const int64_t rowsPerMatrix = rows / matrices;
  for (std::vector<float> &hessian : hessians) {
    // An expert no calibration token was routed to.
    if (hessian.empty())
      hessian = ::lowbit::calib::identityHessian(n);
    // The scaled weight reads x / s: H becomes diag(1/s) H diag(1/s).
    if (!awqScales.empty())
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          hessian[i * n + j] /= awqScales[i] * awqScales[j];
  }

  std::string error;
  const uint8_t *source = getWeightBytes(weight, error);
  if (!source)
    return emitError(weight.getLoc()) << "tensor '" << name << "': " << error;
  uint64_t sourceRowBytes = formats::rowBytes(sourceInfo, n);
  ::lowbit::quant::RowLoader load = [&](int64_t row, int64_t count,
                                        float *dst, std::string &) {
    const uint8_t *src = source + row * sourceRowBytes;
    if (sourceInfo.format == formats::Format::F32)
      std::memcpy(dst, src, count * n * sizeof(float));
    else
      formats::dequantizeRows(sourceInfo.format, src, dst, count, n, 1);
    return true;
  };
  ::lowbit::quant::GPTQOptions options;
  options.percDamp = damp;
  options.actOrder = actOrder;
  options.threads = threads;
  uint64_t targetRowBytes = formats::rowBytes(formats::info(target), n);
  AsmResourceBlob blob =
      HeapAsmResourceBlob::allocate(targetRowBytes * rows, alignof(uint64_t));
  uint8_t *out = reinterpret_cast<uint8_t *>(blob.getMutableData().data());
  ::lowbit::quant::GPTQReport report;
  for (int64_t m = 0; m < matrices; ++m) {
    const int64_t first = m * rowsPerMatrix;
    ::lowbit::quant::RowLoader loadMatrix =
        [&](int64_t row, int64_t count, float *dst, std::string &why) {
          return load(first + row, count, dst, why);
        };
    ::lowbit::quant::GPTQReport matrixReport;
    if (!::lowbit::quant::quantizeGPTQ(
            target, rowsPerMatrix, n, loadMatrix, hessians[m].data(), options,
            out + first * targetRowBytes, error, &matrixReport))
      return emitError(weight.getLoc())
             << "tensor '" << name << "'"
             << (matrices > 1 ? " expert " + std::to_string(m) : "") << ": "
             << error;
    report.outputError += matrixReport.outputError;
    report.rtnOutputError += matrixReport.rtnOutputError;
  }

  // Relative RMS error, as the RTN path reports it.
  double errorSquares = 0, normSquares = 0;
  std::vector<float> values, decoded;
  for (int64_t row = 0; row < rows; row += kRowsPerChunk) {
    int64_t count = std::min(kRowsPerChunk, rows - row);
    values.resize(count * n);
    decoded.resize(count * n);
    load(row, count, values.data(), error);
    formats::dequantizeRows(target, out + row * targetRowBytes, decoded.data(),
                            count, n, threads);
    for (int64_t i = 0; i < count * n; ++i) {
      double diff = double(decoded[i]) - double(values[i]);
      errorSquares += diff * diff;
      normSquares += double(values[i]) * double(values[i]);
    }
  }
  float relativeError =
      normSquares > 0 ? float(std::sqrt(errorSquares / normSquares)) : 0.0f;
  replaceData(weight, target, std::move(blob), relativeError);
  MLIRContext *context = weight.getContext();
  weight->setAttr(kQuantMethodAttrName, StringAttr::get(context, "gptq"));
  double ratio = report.rtnOutputError > 0
                     ? report.outputError / report.rtnOutputError
                     : 1.0;
  weight->setAttr(kGPTQErrorRatioAttrName,
                  FloatAttr::get(Float32Type::get(context), ratio));
  return success();
}

} // namespace

void mlir::lowbit::setQuantizeProgressCallback(QuantizeProgressFn fn) {
  std::lock_guard<std::mutex> lock(progressMutex);
  progressCallback = std::move(fn);
}
