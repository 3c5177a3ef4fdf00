//===- ImportExportCommands.cpp - lowbit import / lowbit export -----------===//
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/GGUFExport.h"
#include "LowBit/Translation/GGUFImport.h"

using namespace lowbit;

int importCommand(int argc, char **argv) {
  cli::CommandLine cl("import", "MODEL.gguf -o OUT.mlir",
                      "Import a GGUF model into the lowbit dialect. Weights "
                      "stay in the GGUF file and are\nreferenced by offset "
                      "(#lowbit.external); large metadata arrays (the "
                      "tokenizer\nvocabulary) are referenced too, so the IR "
                      "of any model prints in kilobytes.");
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
  auto module =
      mlir::lowbit::importGGUF(context.get(), cl.positional()[0], options);
  if (!module)
    return 1;
  if (!driver::writeIR(*module, cl.get("output"), error))
    return cli::fail(error);
  return 0;
}

int exportCommand(int argc, char **argv) {
  cli::CommandLine cl("export", "MODEL.mlir -o OUT.gguf",
                      "Write a model in the lowbit dialect (or a GGUF file) "
                      "as a GGUF file: metadata in its\nrecorded order, "
                      "weights in module order, aligned as llama.cpp expects. "
                      "The file is\nwritten under a temporary name and "
                      "renamed when complete.");
  cl.option("output", "FILE", "The GGUF file to write.", "o");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input model"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT.gguf");
  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;
  if (mlir::failed(mlir::lowbit::exportGGUF(*module, cl.get("output"))))
    return 1;
  return 0;
}
