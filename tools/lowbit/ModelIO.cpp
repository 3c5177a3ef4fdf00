//===- ModelIO.cpp - Load and save models in the driver -------------------===//
#include "ModelIO.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/GGUFImport.h"
#include "LowBit/Translation/ONNXImport.h"
#include "lowbit/ONNX/ONNXFile.h"
#include "lowbit/Support/MappedFile.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <fstream>

using namespace mlir;

namespace lowbit::driver {

/// Diagnostics from the importer are located at "<file>":0:0, optionally
/// named after a tensor; print them as "error: <file>: [tensor 'x': ]msg".
static void printDiagnostic(Diagnostic &diag) {
  const char *severity = "error";
  if (diag.getSeverity() == DiagnosticSeverity::Warning)
    severity = "warning";
  else if (diag.getSeverity() == DiagnosticSeverity::Note)
    severity = "note";
  else if (diag.getSeverity() == DiagnosticSeverity::Remark)
    severity = "remark";
  std::string message = diag.str();
  std::string prefix;
  Location loc = diag.getLocation();
  std::string name;
  if (auto named = dyn_cast<NameLoc>(loc)) {
    name = named.getName().str();
    loc = named.getChildLoc();
  }
  if (auto file = dyn_cast<FileLineColLoc>(loc)) {
    std::string filename = file.getFilename().str();
    bool alreadyNamed = message.rfind(filename + ":", 0) == 0;
    if (!alreadyNamed) {
      prefix = filename;
      if (file.getLine() != 0)
        prefix += ":" + std::to_string(file.getLine()) + ":" +
                  std::to_string(file.getColumn());
      prefix += ": ";
    }
  }
  if (!name.empty() && message.find("'" + name + "'") == std::string::npos)
    prefix += "'" + name + "': ";
  llvm::errs() << severity << ": " << prefix << message << "\n";
  for (Diagnostic &note : diag.getNotes())
    printDiagnostic(note);
}

std::unique_ptr<MLIRContext> makeContext() {
  DialectRegistry registry;
  registry.insert<mlir::lowbit::LowBitDialect, func::FuncDialect,
                  arith::ArithDialect>();
  auto context = std::make_unique<MLIRContext>(registry);
  context->loadAllAvailableDialects();
  // Users read messages about tensors, not dumps of the op that failed.
  context->printOpOnDiagnostic(false);
  context->getDiagEngine().registerHandler([](Diagnostic &diag) {
    printDiagnostic(diag);
    return success();
  });
  return context;
}

static bool isGGUF(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

bool isONNX(const std::string &path) {
  return llvm::StringRef(path).ends_with(".onnx") ||
         ::lowbit::onnxfile::looksLikeONNX(path);
}

OwningOpRef<ModuleOp> loadModel(MLIRContext &context, const std::string &path) {
  if (isGGUF(path))
    return mlir::lowbit::importGGUF(&context, path);
  if (isONNX(path))
    return mlir::lowbit::importONNX(&context, path);
  std::string error;
  auto file = MappedFile::open(path, error);
  if (!file) {
    llvm::errs() << "error: " << error << "\n";
    return nullptr;
  }
  std::unique_ptr<llvm::MemoryBuffer> buffer = mlir::lowbit::makeParserBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(file->data()),
                      file->size()),
      path, error);
  if (!buffer) {
    llvm::errs() << "error: " << error << "\n";
    return nullptr;
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  // Located parse errors ("file:line:col: error: ...") with the source line.
  SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return nullptr;
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

void addONNXExportOptions(cli::CommandLine &cl) {
  cl.option("onnx-weights", "STYLE",
            "ONNX: how quantized matmul weights are written: nbits "
            "(default;\ncom.microsoft MatMulNBits, any format with linear "
            "groups) or qdq\n(DequantizeLinear with block_size, opset 21, "
            "feeding MatMul; integer zero\npoints only: q4_0, q8_0, i4_*, "
            "i8_*).");
  cl.option("external-data-threshold", "BYTES",
            "ONNX: tensors of at least BYTES go to the external data file "
            "OUT.data\n(default: only those the source kept there).");
  cl.flag("dequantize",
          "ONNX: write quantized matmul weights as f32 MatMul initializers "
          "(decoded by\nlowbit's codecs) instead of quantized ones.");
  cl.option("accuracy-level", "N",
            "ONNX: MatMulNBits' accuracy_level (0-4; 4 lets ONNX Runtime "
            "quantize the\nactivations to int8). Default: not written.");
}

static const char *const kONNXOptions[] = {
    "onnx-weights", "external-data-threshold", "dequantize", "accuracy-level"};

bool parseONNXExportOptions(const cli::CommandLine &cl,
                            mlir::lowbit::ONNXExportOptions &options,
                            std::string &error) {
  std::string style = cl.get("onnx-weights", "nbits");
  if (style == "qdq")
    options.weightStyle = mlir::lowbit::ONNXWeightStyle::QDQ;
  else if (style != "nbits") {
    error = "--onnx-weights must be nbits or qdq, got '" + style + "'";
    return false;
  }
  if (cl.has("external-data-threshold")) {
    long long threshold = 0;
    if (!cl.getInt("external-data-threshold", threshold, error))
      return false;
    if (threshold < 0) {
      error = "--external-data-threshold must not be negative";
      return false;
    }
    options.externalDataThreshold = static_cast<uint64_t>(threshold);
  }
  options.dequantizeWeights = cl.has("dequantize");
  if (cl.has("accuracy-level")) {
    long long level = 0;
    if (!cl.getInt("accuracy-level", level, error))
      return false;
    if (level < 0 || level > 4) {
      error = "--accuracy-level must be 0 to 4";
      return false;
    }
    options.accuracyLevel = level;
  }
  return true;
}

bool checkNoONNXExportOptions(const cli::CommandLine &cl, std::string &error) {
  for (const char *option : kONNXOptions)
    if (cl.has(option)) {
      error = std::string("--") + option +
              " applies to ONNX output (-o FILE.onnx) only";
      return false;
    }
  return true;
}

bool writeIR(ModuleOp module, const std::string &path, std::string &error) {
  if (path == "-") {
    module.print(llvm::outs());
    llvm::outs() << "\n";
    return true;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\n";
  AtomicFileWriter writer(path);
  return writer.open(error) && writer.write(text.data(), text.size(), error) &&
         writer.commit(error);
}

} // namespace lowbit::driver
