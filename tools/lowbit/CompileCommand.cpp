//===- CompileCommand.cpp - lowbit compile --------------------------------===//
//
// With a preset: import -> lowbit-assign-formats -> lowbit-quantize ->
// export. With a budget (--target-bpw / --target-size): import ->
// lowbit-calibrate (unless statistics are given or saved) ->
// lowbit-sensitivity (reusing saved results) -> lowbit-allocate-bits ->
// lowbit-quantize -> export. Progress bars for the long steps, a per-tensor
// summary table (or JSON) with the predicted and the actual size.
//
//===----------------------------------------------------------------------===//
#include "AnalysisProgress.h"
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"
#include "NativeModel.h"
#include "Progress.h"

#include "LowBit/IR/LowBit.h"
#include "LowBit/Transforms/Analysis.h"
#include "LowBit/Transforms/Passes.h"
#include "LowBit/Translation/GGUFExport.h"
#include "LowBit/Translation/ONNXExport.h"
#include "lowbit/Analysis/BitAllocation.h"
#include "lowbit/Analysis/Sensitivity.h"
#include "lowbit/Calibration/IMatrix.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Quant/DynamicGate.h"
#include "lowbit/Quant/Presets.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Support/TemporaryFiles.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

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

bool fileExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// Whether `path` (the argument after --dynamic-gate) is a rule table rather
/// than the model: an existing regular file that is neither GGUF nor IR.
bool looksLikeRuleTable(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return false;
  for (const char *suffix : {".gguf", ".mlir", ".mlirbc"}) {
    size_t n = std::strlen(suffix);
    if (path.size() >= n && path.compare(path.size() - n, n, suffix) == 0)
      return false;
  }
  char magic[4] = {};
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return false;
  size_t got = std::fread(magic, 1, sizeof(magic), f);
  std::fclose(f);
  return !(got == 4 && std::memcmp(magic, "GGUF", 4) == 0) &&
         !(got >= 2 && std::memcmp(magic, "ML", 2) == 0); // MLIR bytecode
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start)
      .count();
}

/// Bytes of the quantize.imatrix.* keys lowbit-quantize adds for `path`
/// (recorded as `name`), as GGUF lays them out, so that the allocation can
/// leave room for them.
int64_t imatrixMetadataBytes(const std::string &path, const std::string &name) {
  ::lowbit::calib::IMatrix imatrix;
  std::string error;
  if (!::lowbit::calib::IMatrix::load(path, imatrix, error))
    return 0; // lowbit-quantize reports it
  auto key = [](const std::string &name, uint64_t valueBytes) {
    return static_cast<int64_t>(8 + name.size() + 4 + valueBytes);
  };
  int64_t bytes = key("quantize.imatrix.file", 8 + name.size()) +
                  key("quantize.imatrix.entries_count", 4);
  if (!imatrix.datasets.empty())
    bytes += key("quantize.imatrix.dataset", 8 + imatrix.datasets[0].size());
  if (imatrix.chunkCount > 0)
    bytes += key("quantize.imatrix.chunks_count", 4);
  return bytes;
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
      "compile", "MODEL (-o OUT.gguf|OUT.onnx) [options]",
      "Quantize a model (GGUF, ONNX or lowbit IR) and write a GGUF file that "
      "llama.cpp loads\n(or, from an ONNX model, an ONNX file whose "
      "matmuls are com.microsoft MatMulNBits).\nFormats are chosen per tensor by a llama.cpp-style "
      "preset and its mixing rules\n(output, attn_v and ffn_down bumps, "
      "fall-backs when a row does not fit a block),\nwhich --tensor-type "
      "rules override; or, with --target-bpw / --target-size, by a\n"
      "global allocation: calibrate (--calib), measure every tensor's "
      "sensitivity to\nevery format, and choose the formats that "
      "minimise the predicted damage within\nthe budget (--state keeps "
      "the analysis for re-targeting).");
  cl.option("output", "FILE",
            "The file to write (GGUF; ONNX when it ends in .onnx).", "o");
  cl.option("preset", "NAME",
            "llama.cpp preset with its mixing rules (default q8_0; the list "
            "is below).");
  cl.optionalValue(
      "dynamic-gate", "FILE",
      "Modify the preset by a table of (layer band x tensor kind -> format) "
      "rules:\nwithout FILE the published IQ-DynamicGate recipe (outer "
      "quarters of the layers:\nattn_v/attn_output/ffn_down iq4_xs; middle "
      "half: attn_v/ffn_down iq3_s, the\nrest at least iq2_xxs; token_embd "
      "and output q5_k). FILE: your own table in the\nsame form "
      "(docs/DYNAMIC-GATE.md). Pins (--tensor-type, ...) win over it.",
      "published", [](const std::string &next) {
        return looksLikeRuleTable(next);
      });
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
  cl.option("target-bpw", "X",
            "Budget: bits per weight of the whole file (file bytes * 8 / all "
            "weights, as\nllama.cpp reports). Formats are allocated per "
            "tensor to minimise the predicted\ndamage; the file lands within "
            "0.5% below the budget.");
  cl.option("target-size", "SIZE",
            "Budget: the file size, e.g. 3.2GiB, 3200MB or bytes.");
  cl.option("calib", "FILE|self",
            "Calibration text ('self': sampled from the model). Budget "
            "modes calibrate on it;\na preset computes its importance matrix "
            "from it. With --imatrix (budgets), only\nthe text --measure "
            "gain/kld measures KL divergences on.");
  cl.option("ctx-size", "N", "Calibration chunk size (default 512 or the "
                             "model's context).", "c");
  cl.option("chunks", "N", "Calibrate on at most N chunks.");
  cl.option("state", "FILE",
            "Calibration state to reuse or create (GGUF), with the "
            "sensitivity results\nin FILE.sensitivity.json: re-targeting "
            "another budget skips the analysis.");
  cl.option("method", "NAME",
            "Quantization method: rtn (default), gptq (Hessian error "
            "feedback inside the\nblocks) or awq (activation-aware channel "
            "scales folded into the norms).\ngptq and awq need Hessians: "
            "--calib FILE, or a --state FILE calibrated with them.\nWith a "
            "budget and --measure kld, gptq's KL divergences are measured after GPTQ.");
  cl.option("measure", "KIND",
            "Sensitivity: wmse (predicted from the activation statistics), "
            "gain (predicted,\nscaled per tensor to one measured KL "
            "divergence) or kld (KL divergence measured\nfor every tensor "
            "and format with only that tensor quantized). Default: gain "
            "with\n--calib or --state (they hold calibration tokens), wmse "
            "otherwise.");
  cl.option("kld-chunks", "N", "Chunks --measure kld runs on (default 4).");
  std::string defaultFormats;
  for (::lowbit::formats::Format f :
       ::lowbit::analysis::defaultCandidateFormats())
    defaultFormats += std::string(defaultFormats.empty() ? "" : " ") +
                      ::lowbit::formats::info(f).name;
  cl.option("formats", "LIST",
            "Candidate formats of the budget modes, comma-separated\n(default " +
                defaultFormats + ").");
  cl.flag("no-importance", "Budget modes without statistics: plain squared "
                           "error, no imatrix.");
  cl.option("threads", "N", "Encoder threads (default: all cores).", "t");
  cl.option("emit", "KIND",
            "What to write: gguf (default; onnx when -o ends in .onnx), "
            "onnx (an ONNX\nmodel's own graph, its matmuls as MatMulNBits; "
            "large tensors in OUT.data),\nmlir (the quantized IR, data "
            "as resources), or native: a directory for the lowbit runtime "
            "(model.so with kernels\ngenerated for --target, packed "
            "weights.bin, manifest.json, metadata.gguf).");
  cl.option("target", "NAME",
            "With --emit native: the CPU to generate code for: host "
            "(default), x86-64-v3,\nx86-64-v4 or aarch64.");
  driver::addONNXExportOptions(cl);
  cl.flag("json", "Print the report as JSON on stdout instead of the table.");
  cl.flag("quiet", "No summary table.", "q");
  cl.epilog(presetList());
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input model"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT.gguf");
  std::string emit = cl.get(
      "emit",
      llvm::StringRef(cl.get("output")).ends_with(".onnx") ? "onnx" : "gguf");
  if (emit != "gguf" && emit != "mlir" && emit != "native" && emit != "onnx")
    return cli::fail("--emit must be gguf, onnx, mlir or native, got '" +
                     emit + "'");
  const ::lowbit::target::TargetInfo *nativeTarget = nullptr;
  if (emit == "native") {
    std::string name = cl.get("target", "host");
    nativeTarget = ::lowbit::target::findTarget(name);
    if (!nativeTarget)
      return cli::fail("unknown --target '" + name + "' (known: " +
                       ::lowbit::target::targetNames() + ")");
  } else if (cl.has("target")) {
    return cli::fail("--target applies to --emit native");
  }
  mlir::lowbit::ONNXExportOptions onnxOptions;
  if (emit == "onnx" ? !driver::parseONNXExportOptions(cl, onnxOptions, error)
                     : !driver::checkNoONNXExportOptions(cl, error))
    return cli::fail(error);
  long long threads = 0;
  if (!cl.getInt("threads", threads, error))
    return cli::fail(error);
  const bool budgetMode = cl.has("target-bpw") || cl.has("target-size");
  if (cl.has("target-bpw") && cl.has("target-size"))
    return cli::fail("--target-bpw and --target-size are alternatives; pass "
                     "one");
  std::string presetName =
      cl.get("preset", budgetMode ? "" : "q8_0");
  if (presetName == "dynamic-gate")
    return cli::fail("dynamic-gate is a rule table over a preset: pass "
                     "--preset NAME --dynamic-gate (e.g. --preset iq2_xxs "
                     "--dynamic-gate), or --dynamic-gate FILE for your own "
                     "table");
  const bool dynamicGate = cl.has("dynamic-gate");
  if (budgetMode && !presetName.empty())
    return cli::fail("--preset and --target-bpw/--target-size are "
                     "alternatives: a budget chooses the formats itself");
  if (budgetMode && dynamicGate)
    return cli::fail("--dynamic-gate modifies a preset's formats; a budget "
                     "(--target-bpw/--target-size) chooses them itself");
  if (!budgetMode && !quant::findPreset(presetName))
    return cli::fail("unknown preset '" + presetName +
                     "' (see 'lowbit compile --help' for the list)");
  if (dynamicGate && cl.get("dynamic-gate") != "published") {
    // Read the table now: a bad one fails before any work starts.
    std::string text;
    quant::GateTable table;
    if (!::lowbit::readWholeFile(cl.get("dynamic-gate"), text, error,
                                 " the --dynamic-gate table") ||
        !quant::GateTable::parse(text, cl.get("dynamic-gate"), table, error))
      return cli::fail(error);
  }
  for (const std::string &rule : cl.getAll("tensor-type")) {
    quant::TypeOverride parsed;
    if (!quant::parseTypeOverride(rule, parsed, error))
      return cli::fail(error);
  }
  for (const char *option : {"output-tensor-type", "token-embedding-type"}) {
    if (!cl.has(option))
      continue;
    const ::lowbit::formats::FormatInfo *f =
        ::lowbit::formats::findByName(cl.get(option));
    if (!f)
      return cli::fail("unknown format '" + cl.get(option) + "' for --" +
                       option + " (see 'lowbit compile --help')");
    if (const char *why = quant::weightFormatProblem(f->format))
      return cli::fail(std::string("--") + option + ": " + why);
  }
  if (budgetMode &&
      (cl.has("output-tensor-type") || cl.has("token-embedding-type") ||
       cl.has("pure")))
    return cli::fail("--output-tensor-type, --token-embedding-type and --pure "
                     "belong to llama.cpp presets; pin tensors with "
                     "--tensor-type REGEX=FORMAT instead");
  double targetBpw = 0;
  uint64_t targetBytes = 0;
  if (cl.has("target-bpw")) {
    if (!cl.getDouble("target-bpw", targetBpw, error))
      return cli::fail(error);
    if (!(targetBpw > 0 && targetBpw < 64))
      return cli::fail("--target-bpw must be between 0 and 64");
  }
  if (cl.has("target-size") &&
      !::lowbit::analysis::parseByteSize(cl.get("target-size"), targetBytes,
                                         error))
    return cli::fail("--target-size: " + error);
  std::string measure = cl.get("measure");
  if (cl.has("measure") && measure != "wmse" && measure != "gain" &&
      measure != "kld")
    return cli::fail("--measure must be wmse, gain or kld, got '" + measure +
                     "'");
  long long ctx = 0, chunks = 0, kldChunks = 4;
  if (!cl.getInt("ctx-size", ctx, error) ||
      !cl.getInt("chunks", chunks, error) ||
      !cl.getInt("kld-chunks", kldChunks, error))
    return cli::fail(error);
  std::vector<std::string> candidateFormats;
  if (emit == "onnx" && !cl.has("formats"))
    // What MatMulNBits holds (2, 4 and 8 bits, linear groups).
    for (const char *name : {"q2_k", "i4_sym_g128", "i4_asym_g128", "q4_0",
                             "q4_1", "q4_k", "i8_sym_g128", "q8_0"})
      candidateFormats.push_back(name);
  if (cl.has("formats")) {
    std::string list = cl.get("formats");
    for (size_t at = 0; at <= list.size();) {
      size_t comma = list.find(',', at);
      if (comma == std::string::npos)
        comma = list.size();
      std::string name = list.substr(at, comma - at);
      if (!name.empty()) {
        if (!::lowbit::formats::findByName(name))
          return cli::fail("unknown format '" + name + "' in --formats");
        candidateFormats.push_back(name);
      }
      at = comma + 1;
    }
  }
  const bool noImportance = cl.has("no-importance");
  // --method: gptq and awq read Hessians from a calibration state.
  std::string method = cl.get("method", "rtn");
  if (method != "rtn" && method != "gptq" && method != "awq")
    return cli::fail("--method must be rtn, gptq or awq, got '" + method +
                     "'");
  // Analysis options that would silently do nothing with a preset.
  // --method gptq/awq calibrate, and their statistics serve as the
  // importance matrix, so only plain rtn needs the file.
  // A preset calibrates (an importance matrix from --calib) when given text.
  const bool presetCalibrates =
      !budgetMode && (method != "rtn" || cl.has("calib") ||
                      (cl.has("state") && fileExists(cl.get("state"))));
  if (const quant::Preset *preset = quant::findPreset(presetName);
      preset && quant::presetRequiresImportance(*preset) &&
      !cl.has("imatrix") && !presetCalibrates &&
      !(cl.has("state") && fileExists(cl.get("state"))))
    return cli::fail("preset " + presetName +
                     " needs an importance matrix: pass --imatrix FILE, or "
                     "--calib TEXT to compute one (llama.cpp's quantizer "
                     "refuses it without one too)");
  if (!budgetMode)
    for (const char *option : {"measure", "kld-chunks", "formats",
                               "no-importance"})
      if (cl.has(option))
        return cli::fail(std::string("--") + option +
                         " belongs to --target-bpw/--target-size; a preset "
                         "does not use it");
  if (!budgetMode && !presetCalibrates)
    for (const char *option : {"chunks", "ctx-size"})
      if (cl.has(option))
        return cli::fail(std::string("--") + option +
                         " sets up calibration: it needs --calib (or a "
                         "budget, --method gptq/awq)");
  if (!budgetMode && cl.has("imatrix") && cl.has("calib") && method == "rtn")
    return cli::fail("--imatrix and --calib both give a preset its importance "
                     "matrix; pass one");
  if (method != "rtn" && !cl.has("calib") &&
      !(cl.has("state") && fileExists(cl.get("state"))))
    return cli::fail("--method " + method + " needs calibration Hessians: "
                     "--calib FILE, or --state FILE written with them");
  std::string statePath = cl.get("state");
  if (budgetMode && !noImportance && !cl.has("imatrix") && !cl.has("calib") &&
      !(cl.has("state") && fileExists(statePath)))
    return cli::fail("a budget needs activation statistics: --calib FILE "
                     "(or self), --imatrix FILE or an existing --state FILE; "
                     "or --no-importance");
  if (budgetMode && noImportance && cl.has("imatrix"))
    return cli::fail("--no-importance and --imatrix contradict each other");
  if (budgetMode && cl.has("imatrix") && cl.get("calib") == "self")
    return cli::fail("with --imatrix, --calib names the text the KL "
                     "divergences are measured on; 'self' has none");

  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;
  // An ONNX graph: its matmuls over constant weights become lowbit matmuls
  // over weights the passes below quantize; its other nodes stay.
  const bool fromONNX =
      (*module)->getAttrOfType<StringAttr>("lowbit.source") &&
      (*module)->getAttrOfType<StringAttr>("lowbit.source").getValue() ==
          "onnx";
  if (fromONNX) {
    // An importance matrix comes from 'lowbit calibrate MODEL.onnx'; what
    // runs the model inside compile (text calibration, Hessians, KL
    // measurements) is GGUF-only so far.
    const bool calibrates =
        presetCalibrates || cl.has("calib") || method != "rtn" ||
        (budgetMode && !noImportance && !cl.has("imatrix"));
    if (calibrates)
      return cli::fail("for an ONNX model, calibrate first ('lowbit calibrate "
                       "MODEL.onnx --calib FOLDER -o imatrix.gguf') and pass "
                       "--imatrix; or quantize with --preset/--tensor-type, "
                       "or a budget with --no-importance (--calib, --state "
                       "and --method gptq/awq run GGUF models only so far)");
    PassManager convert(context.get());
    convert.addPass(createLowBitConvertONNX());
    if (failed(convert.run(*module)))
      return 1;
  } else if (emit == "onnx") {
    return cli::fail("ONNX output needs an ONNX model: models read from GGUF "
                     "have no ONNX form yet (write GGUF, or --emit native)");
  }

  // The budget modes: statistics -> sensitivity -> allocation.
  struct StepTime {
    std::string name;
    double seconds;
  };
  std::vector<StepTime> steps;
  std::string quantizeImatrix = cl.get("imatrix");
  // A calibration state for this run only (no --state): removed at the end
  // and on interruption.
  ScopedTemporaryFile temporaryState;
  // What the output records as its imatrix: the file, or for a temporary
  // state the calibration text it came from (never the temporary's name,
  // which holds the pid: outputs must not depend on it).
  auto imatrixName = [&]() -> std::string {
    if (!temporaryState.path().empty() &&
        quantizeImatrix == temporaryState.path())
      return cl.get("calib");
    return quantizeImatrix;
  };
  if (budgetMode) {
    auto started = std::chrono::steady_clock::now();
    std::string statistics = cl.get("imatrix");
    // With --imatrix the statistics are given; --calib is then only the
    // text KL divergences are measured on.
    if (!noImportance && statistics.empty()) {
      if (statePath.empty()) {
        // Calibration state for this run only.
        temporaryState.reset(
            temporaryPathFor(cl.get("output") + ".calibration"));
        statePath = temporaryState.path();
      }
      if (cl.has("calib") && !fileExists(statePath)) {
        PassManager calibrate(context.get());
        LowBitCalibrateOptions options;
        options.calibText = cl.get("calib");
        options.ctx = ctx;
        options.chunks = chunks;
        options.state = statePath;
        options.threads = static_cast<int>(threads);
        options.hessians = method != "rtn";
        calibrate.addPass(createLowBitCalibrate(options));
        driver::AnalysisProgress progress(cli::progressEnabled() &&
                                          !cl.has("json"));
        if (failed(calibrate.run(*module)))
          return 1;
        steps.push_back({"calibrate", secondsSince(started)});
      } else if (cl.has("calib") && !cl.has("quiet") && !cl.has("json")) {
        llvm::errs() << "note: reusing the calibration state " << statePath
                     << " (delete it to calibrate again)\n";
      }
      statistics = statePath;
    }
    quantizeImatrix = noImportance ? "" : statistics;
    // The predicted damage is comparable across formats of one tensor, not
    // across tensors (an error in attn_q costs the output far less than the
    // same error in ffn_down): by default, when calibration tokens are at
    // hand, one measured KL divergence per tensor puts them on one scale.
    const bool haveTokens =
        !noImportance && (statistics == statePath || cl.has("calib"));
    if (measure.empty()) {
      measure = haveTokens ? "gain" : "wmse";
      if (!haveTokens && !noImportance && !fromONNX && !cl.has("quiet") &&
          !cl.has("json"))
        llvm::errs() << "note: no calibration tokens, so the sensitivity is "
                        "the predicted error (--measure wmse), which ranks "
                        "tensors against each other poorly; add --calib TEXT "
                        "to measure one KL divergence per tensor (gain)\n";
    }

    auto sensitivityStarted = std::chrono::steady_clock::now();
    PassManager analyse(context.get());
    LowBitSensitivityOptions sensitivity;
    sensitivity.statistics = statistics;
    sensitivity.noImportance = noImportance;
    sensitivity.candidateFormats.assign(candidateFormats.begin(),
                                        candidateFormats.end());
    sensitivity.measure = measure;
    sensitivity.kldChunks = kldChunks;
    sensitivity.calibText = cl.get("calib") == "self" ? "" : cl.get("calib");
    sensitivity.ctx = ctx;
    if (cl.has("state"))
      sensitivity.state = cl.get("state") + ".sensitivity.json";
    sensitivity.threads = static_cast<int>(threads);
    // GPTQ leaves a different damage per format than plain rounding: measure
    // what it will leave when its Hessians are already at hand.
    if (method == "gptq" && fileExists(statePath)) {
      sensitivity.method = "gptq";
      sensitivity.hessians = statePath;
    }
    analyse.addPass(createLowBitSensitivity(sensitivity));
    LowBitAllocateBitsOptions allocate;
    allocate.targetBpw = targetBpw;
    if (cl.has("target-size"))
      allocate.targetSize = std::to_string(targetBytes);
    allocate.tensorTypes.assign(cl.getAll("tensor-type").begin(),
                                cl.getAll("tensor-type").end());
    allocate.reserveBytes =
        quantizeImatrix.empty()
            ? 0
            : imatrixMetadataBytes(quantizeImatrix, imatrixName());
    analyse.addPass(createLowBitAllocateBits(allocate));
    {
      driver::AnalysisProgress progress(cli::progressEnabled() &&
                                        !cl.has("json"));
      if (failed(analyse.run(*module)))
        return 1;
    }
    steps.push_back({"sensitivity + allocation",
                     secondsSince(sensitivityStarted)});
  }

  // A preset with --calib or --method gptq/awq: calibrate (with Hessians
  // for gptq/awq) unless the state exists; its statistics also serve as the
  // importance matrix.
  if (presetCalibrates) {
    if (statePath.empty()) {
      temporaryState.reset(temporaryPathFor(cl.get("output") + ".calibration"));
      statePath = temporaryState.path();
    }
    if (!fileExists(statePath)) {
      auto started = std::chrono::steady_clock::now();
      PassManager calibrate(context.get());
      LowBitCalibrateOptions options;
      options.calibText = cl.get("calib");
      options.ctx = ctx;
      options.chunks = chunks;
      options.state = statePath;
      options.hessians = method != "rtn";
      options.threads = static_cast<int>(threads);
      calibrate.addPass(createLowBitCalibrate(options));
      driver::AnalysisProgress progress(cli::progressEnabled() &&
                                        !cl.has("json"));
      if (failed(calibrate.run(*module)))
        return 1;
      steps.push_back({"calibrate", secondsSince(started)});
    }
    if (quantizeImatrix.empty() && !noImportance)
      quantizeImatrix = statePath;
  }

  PassManager pm(context.get());
  if (!budgetMode) {
    LowBitAssignFormatsOptions assign;
    assign.preset = presetName;
    assign.tensorTypes.assign(cl.getAll("tensor-type").begin(),
                              cl.getAll("tensor-type").end());
    assign.outputTensorType = cl.get("output-tensor-type");
    assign.tokenEmbeddingType = cl.get("token-embedding-type");
    assign.pure = cl.has("pure");
    assign.hasImportance = !quantizeImatrix.empty();
    assign.dynamicGate = cl.get("dynamic-gate");
    pm.addPass(createLowBitAssignFormats(assign));
  }
  LowBitQuantizeOptions quantize;
  quantize.imatrix = quantizeImatrix;
  quantize.imatrixName = imatrixName();
  quantize.threads = static_cast<int>(threads);
  if (method == "awq") {
    LowBitAWQScaleOptions awq;
    awq.state = statePath;
    awq.threads = static_cast<int>(threads);
    pm.addPass(createLowBitAWQScale(awq));
  } else if (method == "gptq") {
    quantize.method = "gptq";
    quantize.state = statePath;
  }
  pm.addPass(createLowBitQuantize(quantize));

  {
    auto started = std::chrono::steady_clock::now();
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
    steps.push_back({"quantize", secondsSince(started)});
  }

  // The budget is a promise: check the exact size before writing anything.
  uint64_t budget = 0, predictedBytes = 0;
  if (auto allocation =
          (*module)->getAttrOfType<DictionaryAttr>(kAllocationAttrName)) {
    if (auto b = allocation.getAs<IntegerAttr>("budget"))
      budget = static_cast<uint64_t>(b.getInt());
    if (auto p = allocation.getAs<IntegerAttr>("predicted_bytes"))
      predictedBytes = static_cast<uint64_t>(p.getInt());
  }
  if (budget > 0 && emit == "gguf") {
    FailureOr<GGUFLayout> layout = computeGGUFLayout(*module);
    if (failed(layout))
      return 1;
    uint64_t exact = layout->dataOffset();
    for (GlobalWeightOp weight : module->getOps<GlobalWeightOp>())
      exact += layout->alignUp(weight.getWeightType().getByteSize());
    if (exact > budget)
      return cli::fail("internal error: the quantized model would be " +
                       std::to_string(exact) + " bytes, over the budget of " +
                       std::to_string(budget) + " (predicted " +
                       std::to_string(predictedBytes) +
                       "); nothing was written");
  }

  std::string output = cl.get("output");
  {
    auto started = std::chrono::steady_clock::now();
    if (emit == "mlir") {
      if (!driver::writeIR(*module, output, error))
        return cli::fail(error);
    } else if (emit == "native") {
      if (failed(driver::writeNativeArtifact(*module, *nativeTarget, output,
                                             !cl.has("json"))))
        return 1;
    } else if (emit == "onnx") {
      if (failed(exportONNX(*module, output, onnxOptions)))
        return 1;
    } else if (failed(exportGGUF(*module, output))) {
      return 1;
    }
    steps.push_back({"export", secondsSince(started)});
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
                  emit == "onnx"
                      ? ::lowbit::formats::onnxWeightBytes(
                            type.getFormat().getFormat(), type.getNumRows(),
                            type.getRowLength())
                      : type.getByteSize(),
                  type.getNumElements(), -1.0};
    if (auto err = weight->getAttrOfType<FloatAttr>(kQuantErrorAttrName))
      row.error = err.getValueAsDouble();
    tensorBytes += row.bytes;
    elements += row.elements;
    rows.push_back(std::move(row));
  }
  struct stat st;
  // A native artifact's size is its weights file's.
  const std::string sizedFile =
      emit == "native" ? output + "/weights.bin" : output;
  uint64_t fileBytes = stat(sizedFile.c_str(), &st) == 0
                           ? static_cast<uint64_t>(st.st_size)
                           : 0;
  // An ONNX model's external data is part of it.
  if (emit == "onnx" && stat((output + ".data").c_str(), &st) == 0)
    fileBytes += static_cast<uint64_t>(st.st_size);
  double fileBpw = elements ? fileBytes * 8.0 / elements : 0;
  double tensorBpw = elements ? tensorBytes * 8.0 / elements : 0;
  // Share of the budget used, truncated (99.499% must not read 99.50%).
  // An ONNX budget counts the weights (Allocate's ONNX sizes).
  const uint64_t budgetedBytes = emit == "onnx" ? tensorBytes : fileBytes;
  double budgetShare =
      budget
          ? std::floor(10000.0 * double(budgetedBytes) / double(budget)) / 100.0
          : 0.0;
  int64_t computed = 0, reused = 0;
  double kldSeconds = 0;
  if (auto report = (*module)->getAttrOfType<DictionaryAttr>(
          kSensitivityReportAttrName)) {
    if (auto v = report.getAs<IntegerAttr>("computed"))
      computed = v.getInt();
    if (auto v = report.getAs<IntegerAttr>("reused"))
      reused = v.getInt();
    if (auto v = report.getAs<FloatAttr>("kld_seconds"))
      kldSeconds = v.getValueAsDouble();
  }

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
    llvm::json::Array timings;
    for (const StepTime &step : steps)
      timings.push_back(
          llvm::json::Object{{"step", step.name}, {"seconds", step.seconds}});
    llvm::json::Object report{
        {"output", output},
        {"preset", presetName},
        {"steps", std::move(timings)},
        {"file_bytes", static_cast<int64_t>(fileBytes)},
        {"tensor_bytes", static_cast<int64_t>(tensorBytes)},
        {"elements", elements},
        {"bits_per_weight_file", fileBpw},
        {"bits_per_weight_tensors", tensorBpw},
        {"tensors", std::move(tensors)}};
    if (budget) {
      report["budget_bytes"] = static_cast<int64_t>(budget);
      report["budget_bits_per_weight"] = budget * 8.0 / elements;
      report["predicted_bytes"] = static_cast<int64_t>(predictedBytes);
      report["budget_used_percent"] = budgetShare;
      report["sensitivity_computed"] = computed;
      report["sensitivity_reused"] = reused;
      report["kld_seconds"] = kldSeconds;
      report["measure"] = measure;
    }
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
  if (budget)
    llvm::outs() << llvm::formatv(
        "budget {0} bytes ({1:f3} bpw): predicted {2} bytes ({3:f3} bpw), "
        "actual {4} bytes ({5:f3} bpw){7} = {6:f2}% of the budget\n",
        budget, budget * 8.0 / elements, predictedBytes,
        predictedBytes * 8.0 / elements, budgetedBytes,
        budgetedBytes * 8.0 / elements, budgetShare,
        emit == "onnx" ? " of weights as ONNX stores them" : "");
  if (!steps.empty()) {
    llvm::outs() << "time:";
    for (size_t i = 0; i < steps.size(); ++i) {
      llvm::outs() << (i ? ", " : " ") << steps[i].name << " "
                   << llvm::formatv("{0:f2}", steps[i].seconds) << " s";
      if (steps[i].name == "sensitivity + allocation")
        llvm::outs() << " (" << measure << ": " << computed << " measured, "
                     << reused
                     << " reused"
                     << (kldSeconds > 0
                             ? llvm::formatv(", KL divergence {0:f1} s",
                                             kldSeconds)
                                   .str()
                             : std::string())
                     << ")";
    }
    llvm::outs() << "\n";
  }
  return 0;
}
