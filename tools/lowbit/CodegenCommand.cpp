//===- CodegenCommand.cpp - lowbit codegen: the kernels of a model --------===//
//
// Debug entry to the in-process code generator (LowBit/Codegen/Codegen.h):
// the matmul kernels of a model (GGUF or lowbit IR, packed or not) for a
// target, as a shared object, an object file, assembly or LLVM IR, and the
// table of which weight uses which kernel. Fall-backs are printed loudly.
//
//===----------------------------------------------------------------------===//
#include "CommandLine.h"
#include "Commands.h"
#include "ModelIO.h"

#include "LowBit/Codegen/Codegen.h"
#include "lowbit/Formats/Formats.h"
#include "lowbit/Target/TargetTable.h"

#include <cstdio>

using namespace lowbit;

int codegenCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "codegen", "MODEL -o OUT [--target NAME] [--emit so|obj|asm|llvm]",
      "Generate the native matmul kernels of a model (GGUF or lowbit IR) "
      "through MLIR\nand LLVM, in-process; print which weight uses which "
      "kernel.");
  cl.option("output", "OUT", "Output file ('-' = stdout for asm and llvm).",
            "o");
  cl.option("target", "NAME",
            "Target: " + target::targetNames() + " (default host).");
  cl.option("emit", "KIND",
            "so (shared object, default), obj (object file, for static "
            "linking),\nasm (assembly), llvm (optimised LLVM IR).");
  cl.flag("quiet", "No kernel table.", "q");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "model"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT");
  const std::string targetName = cl.get("target", "host");
  const target::TargetInfo *t = target::findTarget(targetName);
  if (!t)
    return cli::fail(targetName == "host"
                         ? "the host CPU runs none of the registered targets "
                           "(" +
                               target::targetNames() + ")"
                         : "unknown target '" + targetName +
                               "'; known targets: " + target::targetNames());
  codegen::CodegenOptions options;
  if (!codegen::parseEmitKind(cl.get("emit", "so"), options.kind))
    return cli::fail("--emit must be so, obj, asm or llvm, got '" +
                     cl.get("emit") + "'");

  auto context = driver::makeContext();
  auto module = driver::loadModel(*context, cl.positional()[0]);
  if (!module)
    return 1;
  codegen::KernelManifest manifest;
  if (!codegen::emitKernels(*module, *t, options, cl.get("output"), manifest,
                            error))
    return cli::fail(error);

  // Fall-backs go to stderr whatever --quiet says: they cost speed.
  for (const codegen::FallbackInfo &f : manifest.fallbacks)
    std::fprintf(stderr,
                 "warning: slow fall-back: %s (%s %lldx%lld): %s; the runtime "
                 "decodes it to f32\n",
                 f.weight.c_str(), formats::info(f.format).name,
                 static_cast<long long>(f.rows), static_cast<long long>(f.cols),
                 f.reason.c_str());
  if (cl.has("quiet"))
    return 0;
  FILE *out = cl.get("output") == "-" ? stderr : stdout;
  std::fprintf(out,
               "target %s (%s, %s), kernel ABI v%d: %zu weights on %s "
               "kernels, %zu fall-backs\n",
               t->name, t->triple, t->cpu, manifest.abiVersion,
               manifest.kernels.size(), t->name, manifest.fallbacks.size());
  for (const codegen::KernelInfo &k : manifest.kernels)
    std::fprintf(out, "  %-28s %-6s %6lldx%-6lld rows=%-2u %-28s %-14s %s\n",
                 k.weight.empty() ? "(argument)" : k.weight.c_str(),
                 formats::info(k.format).name, static_cast<long long>(k.rows),
                 static_cast<long long>(k.cols), k.interleaveRows,
                 k.kernelSymbol.c_str(),
                 k.quantizerSymbol.empty() ? "-" : k.quantizerSymbol.c_str(),
                 k.dotPath.c_str());
  return 0;
}
