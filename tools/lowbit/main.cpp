//===- main.cpp - The lowbit driver ---------------------------------------===//
#include "Commands.h"

#include "lowbit/Support/TemporaryFiles.h"

#include "llvm/Support/Signals.h"

#include <cstdio>
#include <cstring>

namespace {
struct Subcommand {
  const char *name;
  int (*run)(int, char **);
  const char *summary;
};
const Subcommand kSubcommands[] = {
    {"import", importCommand, "Import a GGUF model into lowbit IR (.mlir)"},
    {"export", exportCommand, "Write lowbit IR (or a model) as a GGUF file"},
    {"compile", compileCommand,
     "Quantize a model with a preset and rules; write GGUF"},
    {"imatrix", imatrixCommand,
     "Show or convert llama.cpp importance matrices"},
    {"calibrate", calibrateCommand,
     "Record activation statistics (imatrix, Hessians) from text"},
    {"run", runCommand, "Generate text with the reference executor"},
    {"eval", evalCommand, "Perplexity and KL divergence (llama.cpp protocol)"},
    {"tokenize", tokenizeCommand,
     "Text to token ids with the model's tokenizer"},
    {"bench", benchCommand, "Prompt and generation speed, llama-bench style"},
    {"codegen", codegenCommand,
     "Native matmul kernels of a model for a target (so, obj, asm)"},
};

void printUsage(FILE *out) {
  std::fprintf(out, "USAGE: lowbit <command> [options]\n\n"
                    "lowbit: a quantization compiler for neural-network "
                    "models.\n\nCOMMANDS:\n");
  for (const Subcommand &cmd : kSubcommands)
    std::fprintf(out, "  %-10s %s\n", cmd.name, cmd.summary);
  std::fprintf(out, "\nRun 'lowbit <command> --help' for the options of a "
                    "command.\n");
}
} // namespace

int main(int argc, char **argv) {
  // On SIGINT/SIGTERM, LLVM's temporaries (lld's output) go first, then
  // lowbit's and the folders they were in (see TemporaryFiles.h).
  lowbit::setInterruptHook(llvm::sys::RunInterruptHandlers);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    printUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  for (const Subcommand &cmd : kSubcommands)
    if (!std::strcmp(argv[1], cmd.name))
      return cmd.run(argc - 1, argv + 1);
  std::fprintf(stderr, "error: unknown command '%s' (see 'lowbit --help')\n",
               argv[1]);
  return 1;
}
