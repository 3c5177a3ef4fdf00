//===- CompileCommand.cpp - lowbit compile --------------------------------===//
//
// Import -> lowbit-assign-formats -> lowbit-quantize -> export, with a
// progress bar, a per-tensor summary table and an optional JSON report.
//
//===----------------------------------------------------------------------===//
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"
#include "Progress.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Transforms/Passes.h"
#include "lowbit/Export/GGUFExport.h"
#include "lowbit/Quant/Presets.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <sys/stat.h>

using namespace lowbit;
using namespace mlir;
using namespace mlir::lowbit;

namespace {

std::string presetList() {
  std::string text = "PRESETS (--preset):\n";
  for (const quant::Preset &p : quant::allPresets()) {
    std::string name = p.name;
    name.resize(10, ' ');
    text += "  " + name + p.description + "\n";
  }
  text += "\nFORMATS (--tensor-type, --output-tensor-type, "
          "--token-embedding-type):\n ";
  size_t count;
  const ::lowbit::formats::FormatInfo *all = ::lowbit::formats::allFormats(count);
  for (size_t i = 0; i < count; ++i)
    text += std::string(" ") + all[i].name;
  return text;
}

struct TensorRow {
  std::string name, format;
  std::vector<int64_t> shape;
  uint64_t bytes;
  int64_t elements;
  double error; // relative RMS error; < 0 when not re-encoded
};

} // namespace

int compileCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "compile", "MODEL (-o OUT.gguf) [options]",
      "Quantize a model (GGUF or lowbit IR) and write a GGUF file that "
      "llama.cpp loads.\nFormats are chosen per tensor by a llama.cpp-style "
      "preset and its mixing rules\n(output, attn_v and ffn_down bumps, "
      "fall-backs when a row does not fit a block),\nwhich --tensor-type "
      "rules override.");
  cl.option("output", "FILE", "The GGUF file to write.", "o");
  cl.option("preset", "NAME",
            "Preset (default q8_0): q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q2_k_s "
            "q3_k_s q3_k_m\nq3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k iq4_nl "
            "iq4_xs tq1_0 tq2_0 f16 bf16 f32.");
  cl.option("imatrix", "FILE",
            "llama.cpp importance matrix (GGUF imatrix or legacy .dat): the "
            "scale search\nweights each column by its mean squared "
            "activation.");
  cl.option("tensor-type", "REGEX=FORMAT",
            "Store tensors whose name matches REGEX in FORMAT; first match "
            "wins.",
            "", /*repeatable=*/true);
  cl.option("output-tensor-type", "FORMAT", "Format of output.weight.");
  cl.option("token-embedding-type", "FORMAT", "Format of token_embd.weight.");
  cl.flag("pure", "Use the preset's default format for every quantizable "
                  "tensor (no mixing rules).");
  cl.option("threads", "N", "Encoder threads (default: all cores).", "t");
  cl.option("emit", "KIND",
            "What to write: gguf (default) or mlir (the quantized IR, data "
            "as resources).");
  cl.flag("json", "Print the report as JSON on stdout instead of the table.");
  cl.flag("quiet", "No summary table.", "q");
  cl.epilog(presetList());
  std::string error;
  if (!cl.parse(argc, argv, error))
    return cli::fail(error);
  if (cl.helpRequested()) {
    printf("%s", cl.helpText().c_str());
    return 0;
  }
  if (cl.positional().size() != 1)
    return cli::fail("expected one input model (see 'lowbit compile --help')");
  if (!cl.has("output"))
    return cli::fail("missing -o OUT.gguf");
  std::string emit = cl.get("emit", "gguf");
  if (emit != "gguf" && emit != "mlir")
    return cli::fail("--emit must be gguf or mlir, got '" + emit + "'");
  long long threads = 0;
  if (!cl.getInt("threads", threads, error))
    return cli::fail(error);
  std::string presetName = cl.get("preset", "q8_0");
  if (!quant::findPreset(presetName))
    return cli::fail("unknown preset '" + presetName +
                     "' (see 'lowbit compile --help' for the list)");
  if (presetName == "q2_k_s" && !cl.has("imatrix"))
    return cli::fail("preset q2_k_s needs an importance matrix: pass "
                     "--imatrix FILE (as llama.cpp's quantizer requires)");
  for (const std::string &rule : cl.getAll("tensor-type")) {
    quant::TypeOverride parsed;
    if (!quant::parseTypeOverride(rule, parsed, error))
      return cli::fail(error);
  }
  for (const char *option : {"output-tensor-type", "token-embedding-type"})
    if (cl.has(option) && !::lowbit::formats::findByName(cl.get(option)))
      return cli::fail("unknown format '" + cl.get(option) + "' for --" +
                       option + " (see 'lowbit compile --help')");

  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;

  PassManager pm(context.get());
  LowBitAssignFormatsOptions assign;
  assign.preset = presetName;
  assign.tensorTypes.assign(cl.getAll("tensor-type").begin(),
                            cl.getAll("tensor-type").end());
  assign.outputTensorType = cl.get("output-tensor-type");
  assign.tokenEmbeddingType = cl.get("token-embedding-type");
  assign.pure = cl.has("pure");
  assign.hasImportance = cl.has("imatrix");
  pm.addPass(createLowBitAssignFormats(assign));
  LowBitQuantizeOptions quantize;
  quantize.imatrix = cl.get("imatrix");
  quantize.threads = static_cast<int>(threads);
  pm.addPass(createLowBitQuantize(quantize));

  {
    cli::ProgressBar bar("quantizing", cli::progressEnabled() && !cl.has("json"));
    setQuantizeProgressCallback(
        [&](size_t done, size_t total, llvm::StringRef name) {
          bar.update(done, total, name.str());
        });
    LogicalResult result = pm.run(*module);
    setQuantizeProgressCallback(nullptr);
    bar.finish();
    if (failed(result))
      return 1;
  }

  std::string output = cl.get("output");
  if (emit == "mlir") {
    if (!driver::writeIR(*module, output, error))
      return cli::fail(error);
  } else if (failed(exportGGUF(*module, output))) {
    return 1;
  }

  // Report.
  std::vector<TensorRow> rows;
  uint64_t tensorBytes = 0;
  int64_t elements = 0;
  for (GlobalWeightOp weight : module->getOps<GlobalWeightOp>()) {
    QTensorType type = weight.getWeightType();
    TensorRow row{weight.getSymName().str(),
                  type.getFormat().getName().str(),
                  std::vector<int64_t>(type.getShape().begin(),
                                       type.getShape().end()),
                  type.getByteSize(), type.getNumElements(), -1.0};
    if (auto err = weight->getAttrOfType<FloatAttr>(kQuantErrorAttrName))
      row.error = err.getValueAsDouble();
    tensorBytes += row.bytes;
    elements += row.elements;
    rows.push_back(std::move(row));
  }
  struct stat st;
  uint64_t fileBytes =
      stat(output.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  double fileBpw = elements ? fileBytes * 8.0 / elements : 0;
  double tensorBpw = elements ? tensorBytes * 8.0 / elements : 0;

  if (cl.has("json")) {
    llvm::json::Array tensors;
    for (const TensorRow &row : rows) {
      llvm::json::Array shape;
      for (int64_t d : row.shape)
        shape.push_back(d);
      llvm::json::Object obj{{"name", row.name},
                             {"format", row.format},
                             {"shape", std::move(shape)},
                             {"bytes", static_cast<int64_t>(row.bytes)},
                             {"bits_per_weight", row.bytes * 8.0 / row.elements}};
      if (row.error >= 0)
        obj["relative_rms_error"] = row.error;
      tensors.push_back(std::move(obj));
    }
    llvm::json::Object report{
        {"output", output},
        {"preset", presetName},
        {"file_bytes", static_cast<int64_t>(fileBytes)},
        {"tensor_bytes", static_cast<int64_t>(tensorBytes)},
        {"elements", elements},
        {"bits_per_weight_file", fileBpw},
        {"bits_per_weight_tensors", tensorBpw},
        {"tensors", std::move(tensors)}};
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(report)))
                 << "\n";
    return 0;
  }
  if (cl.has("quiet"))
    return 0;
  llvm::outs() << llvm::formatv("{0,-36} {1,-8} {2,14} {3,10} {4,6} {5,10}\n",
                                "tensor", "format", "shape", "bytes", "bpw",
                                "rel.err");
  for (const TensorRow &row : rows) {
    std::string shape;
    for (size_t i = 0; i < row.shape.size(); ++i)
      shape += (i ? "x" : "") + std::to_string(row.shape[i]);
    std::string err =
        row.error >= 0 ? llvm::formatv("{0:f5}", row.error).str() : "-";
    llvm::outs() << llvm::formatv("{0,-36} {1,-8} {2,14} {3,10} {4,6:f3} {5,10}\n",
                                  row.name, row.format, shape, row.bytes,
                                  row.bytes * 8.0 / row.elements, err);
  }
  llvm::outs() << llvm::formatv(
      "{0}: {1} bytes, {2} weights, {3:f3} bits per weight (file), {4:f3} "
      "(tensors only)\n",
      output, fileBytes, elements, fileBpw, tensorBpw);
  return 0;
}
