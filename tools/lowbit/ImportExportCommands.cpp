//===- ImportExportCommands.cpp - lowbit import / lowbit export -----------===//
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/GGUFExport.h"
#include "LowBit/Translation/GGUFImport.h"
#include "LowBit/Translation/ONNXExport.h"
#include "LowBit/Translation/ONNXImport.h"
#include "lowbit/ONNX/ONNXFile.h"

using namespace lowbit;

int importCommand(int argc, char **argv) {
  cli::CommandLine cl("import", "MODEL.gguf|MODEL.onnx -o OUT.mlir",
                      "Import a GGUF or ONNX model into the lowbit dialect. "
                      "Weights stay in the model's\nfiles and are referenced "
                      "by offset (#lowbit.external); large GGUF metadata "
                      "arrays\n(the tokenizer vocabulary) are referenced "
                      "too, so the IR of any model prints in\nkilobytes. "
                      "An ONNX model is imported node for node "
                      "(lowbit.onnx.node), external\ndata included.");
  cl.option("output", "FILE", "Where to write the IR ('-' for stdout).", "o");
  cl.option("inline-array-limit", "N",
            "Metadata arrays with more than N elements are referenced from "
            "the\nsource file instead of printed (default 64).");
  cl.flag("weights-only",
          "Import weights and metadata only; do not build func @forward.");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input model"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT.mlir (use '-o -' for stdout)");
  mlir::lowbit::GGUFImportOptions options;
  long long limit = 64;
  if (!cl.getInt("inline-array-limit", limit, error))
    return cli::fail(error);
  if (limit < 0)
    return cli::fail("--inline-array-limit must not be negative");
  options.inlineArrayLimit = static_cast<uint64_t>(limit);
  options.buildGraph = !cl.has("weights-only");

  auto context = driver::makeContext();
  const std::string &input = cl.positional()[0];
  auto module = driver::isONNX(input)
                    ? mlir::lowbit::importONNX(context.get(), input)
                    : mlir::lowbit::importGGUF(context.get(), input, options);
  if (!module)
    return 1;
  if (!driver::writeIR(*module, cl.get("output"), error))
    return cli::fail(error);
  return 0;
}

int exportCommand(int argc, char **argv) {
  cli::CommandLine cl("export", "MODEL.mlir -o OUT.gguf|OUT.onnx",
                      "Write a model in the lowbit dialect (or a GGUF or "
                      "ONNX file) as a GGUF file:\nmetadata in its recorded "
                      "order, weights in module order, aligned as llama.cpp\n"
                      "expects; or, when OUT ends in .onnx, an imported ONNX "
                      "graph as an ONNX model\n(external data in OUT.data). "
                      "Files are written under a temporary name and\n"
                      "renamed when complete.");
  cl.option("output", "FILE", "The GGUF or ONNX file to write.", "o");
  cl.option("external-data-threshold", "BYTES",
            "ONNX: tensors of at least BYTES go to the external data file "
            "OUT.data\n(default: only those the source kept there).");
  cl.flag("dequantize",
          "ONNX: write quantized matmul weights as f32 MatMul initializers "
          "(decoded by\nlowbit's codecs) instead of com.microsoft "
          "MatMulNBits.");
  cl.option("accuracy-level", "N",
            "ONNX: MatMulNBits' accuracy_level (0-4; 4 lets ONNX Runtime "
            "quantize the\nactivations to int8). Default: not written.");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input model"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT.gguf");
  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;
  const std::string &output = cl.get("output");
  if (llvm::StringRef(output).ends_with(".onnx")) {
    mlir::lowbit::ONNXExportOptions options;
    if (cl.has("external-data-threshold")) {
      long long threshold = 0;
      if (!cl.getInt("external-data-threshold", threshold, error))
        return cli::fail(error);
      if (threshold < 0)
        return cli::fail("--external-data-threshold must not be negative");
      options.externalDataThreshold = static_cast<uint64_t>(threshold);
    }
    options.dequantizeWeights = cl.has("dequantize");
    if (cl.has("accuracy-level")) {
      long long level = 0;
      if (!cl.getInt("accuracy-level", level, error))
        return cli::fail(error);
      if (level < 0 || level > 4)
        return cli::fail("--accuracy-level must be 0 to 4");
      options.accuracyLevel = level;
    }
    return mlir::failed(mlir::lowbit::exportONNX(*module, output, options));
  }
  for (const char *onnxOnly :
       {"external-data-threshold", "dequantize", "accuracy-level"})
    if (cl.has(onnxOnly))
      return cli::fail(std::string("--") + onnxOnly +
                       " applies to ONNX output (-o FILE.onnx) only");
  if (mlir::failed(mlir::lowbit::exportGGUF(*module, output)))
    return 1;
  return 0;
}
