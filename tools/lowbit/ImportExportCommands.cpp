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
  driver::addONNXExportOptions(cl);
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
    if (!driver::parseONNXExportOptions(cl, options, error))
      return cli::fail(error);
    return mlir::failed(mlir::lowbit::exportONNX(*module, output, options));
  }
  if (!driver::checkNoONNXExportOptions(cl, error))
    return cli::fail(error);
  if (mlir::failed(mlir::lowbit::exportGGUF(*module, output)))
    return 1;
  return 0;
}
