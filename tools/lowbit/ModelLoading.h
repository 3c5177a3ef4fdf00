//===- ModelLoading.h - Models for lowbit run and eval ----------*- C++ -*-===//
//
// The one place where the executing subcommands turn a path into something
// they can run: a GGUF file or lowbit IR (run by the reference executor), or
// a native artifact directory (run by the lowbit runtime).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TOOLS_MODELLOADING_H
#define LOWBIT_TOOLS_MODELLOADING_H

#include "lowbit/Exec/Evaluator.h"
#include "lowbit/Exec/Executor.h"
#include "lowbit/Exec/Model.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <memory>
#include <string>

namespace lowbit::driver {

struct ExecutableModel {
  /// For a native artifact: the hyperparameters and metadata only (no
  /// weights; the runtime loads those itself).
  exec::ModelDesc desc;
  std::unique_ptr<Tokenizer> tokenizer;
  /// Set when the model is a native artifact directory.
  std::string nativeDir;
  /// Check the artifact's content hashes before running it (--verify).
  bool verifyArtifact = false;
};

/// Loads `path` for execution. On failure returns false with `err` in the
/// driver's form "<file>: <what>".
bool loadModelForExecution(const std::string &path, ExecutableModel &out,
                           std::string &err);

/// The reference executor for a model file, the native runtime for an
/// artifact directory (NativeModel.cpp). Null with `err` on failure.
std::unique_ptr<exec::Evaluator> createEvaluator(const ExecutableModel &model,
                                                 const exec::ExecOptions &opts,
                                                 std::string &err);

/// The help text of --activations, shared by run and eval.
extern const char *const kActivationsHelp;
/// The help text of --verify, shared by run, eval and bench.
extern const char *const kVerifyHelp;

/// Parses --activations MODE into `opts`: "f32" (the default) multiplies f32
/// inputs; a target name ("host", "x86-64-v3", ...) rounds every matmul input
/// through the 8-bit activation blocks that target's native kernel for the
/// weight's format consumes (Q8_0 for 32-weight formats, Q8_K for K-quants,
/// as llama.cpp's CPU backend does), so the executor computes what the
/// native code computes up to the order of float additions.
bool parseActivationMode(const std::string &mode, exec::ExecOptions &opts,
                         std::string &err);

/// True when `path` is a directory (only artifacts are).
bool isNativeArtifact(const std::string &path);
/// Fills `out` from an artifact's manifest.json and metadata.gguf.
bool loadNativeArtifact(const std::string &dir, ExecutableModel &out,
                        std::string &err);

} // namespace lowbit::driver

#endif // LOWBIT_TOOLS_MODELLOADING_H
