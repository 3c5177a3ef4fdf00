//===- fuzz_mlir.cpp - libFuzzer target for the driver's .mlir input ------===//
//
// What `lowbit run/eval/compile` do with a .mlir file: parse it with the
// lowbit dialect (and func/arith) registered, verify it, and translate
// @forward into the executor's graph, which resolves every weight (external
// file references, resource blobs, shapes, roles). Diagnostics are counted,
// not printed. The lowbit dialect's sources and the IR glue are compiled into
// this fuzzer with the sanitizers; MLIR itself is linked as built by Debian.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Exec/IRModel.h"
#include "LowBit/IR/LowBit.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

using namespace mlir;

// LLVM's headers poison the free parts of BumpPtrAllocator slabs when they
// are compiled with ASan, as here, but Debian's libLLVM/libMLIR are not, so
// their code touches memory this fuzzer's inlined copies poisoned: ASan's
// user poisoning cannot be trusted across that boundary.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  DialectRegistry registry;
  registry.insert<mlir::lowbit::LowBitDialect, func::FuncDialect,
                  arith::ArithDialect>();
  // One context per input: attributes and types are uniqued in the
  // context, so a shared one would grow without bound.
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.loadAllAvailableDialects();
  context.printOpOnDiagnostic(false);
  size_t errors = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error)
      ++errors;
    return success();
  });
  // MLIR's lexer stops at a NUL past the end, as lowbit's own loader gives
  // it (a copied MemoryBuffer); the fuzzer's bytes have none.
  const std::string text(reinterpret_cast<const char *>(data), size);
  std::string why;
  if (!mlir::lowbit::checkResourceBlobAlignments(text, "fuzz.mlir", why))
    return 0; // refused before parsing, as lowbit's loader does
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      text, ParserConfig(&context), "fuzz.mlir");
  if (!module) {
    if (errors == 0)
      std::abort(); // A rejected input says why.
    return 0;
  }
  if (failed(verify(*module)))
    return 0;
  ::lowbit::exec::ModelDesc desc;
  std::string err;
  if (!mlir::lowbit::buildModelDesc(*module, desc, err)) {
    if (err.empty())
      std::abort();
    return 0;
  }
  // A graph the translation accepted is one the executor validates.
  if (!desc.validate(err))
    std::abort();
  return 0;
}
