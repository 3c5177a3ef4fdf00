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
#include <cstring>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

using namespace mlir;

// LLVM's headers poison the free parts of BumpPtrAllocator slabs when they
// are compiled with ASan, as here, but Debian's libLLVM/libMLIR are not, so
// their code touches memory this fuzzer's inlined copies poisoned: ASan's
// user poisoning cannot be trusted across that boundary.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

namespace {
/// The input and its terminating NUL placed so that the NUL is the last byte
/// before an inaccessible page. Debian's libMLIR is not instrumented, so ASan
/// cannot see the parser read past a heap buffer; the guard page turns any
/// such read into a fault at the first byte past the terminator.
class GuardedText {
public:
  GuardedText(const uint8_t *data, size_t size) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t dataPages = (size + 1 + page - 1) / page;
    length = (dataPages + 1) * page;
    void *region = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
      std::abort();
    base = static_cast<char *>(region);
    if (mprotect(base + dataPages * page, page, PROT_NONE) != 0)
      std::abort();
    text = base + dataPages * page - (size + 1);
    if (size)
      std::memcpy(text, data, size);
    text[size] = '\0';
    textSize = size;
  }
  ~GuardedText() { munmap(base, length); }
  llvm::StringRef str() const { return llvm::StringRef(text, textSize); }

private:
  char *base = nullptr;
  char *text = nullptr;
  size_t length = 0;
  size_t textSize = 0;
};
} // namespace

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
  // The buffer lowbit's loader gives MLIR, copied in front of a guard page.
  std::string why;
  std::unique_ptr<llvm::MemoryBuffer> buffer = mlir::lowbit::makeParserBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.mlir",
      why);
  if (!buffer)
    return 0; // refused before parsing, as lowbit's loader does
  const GuardedText guarded(
      reinterpret_cast<const uint8_t *>(buffer->getBufferStart()),
      buffer->getBufferSize());
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      guarded.str(), ParserConfig(&context), "fuzz.mlir");
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
