//===- Codegen.cpp - From lowbit IR to a kernel object, in-process --------===//
//
//   clone of the module
//     -> lowbit-generate-entry                        (MLIR, lowbit: the
//                                                      program of @forward)
//     -> convert-lowbit-to-kernels{target}            (MLIR, lowbit)
//     -> lowbit-kernels-to-llvm                       (MLIR, upstream lowering)
//     -> translateModuleToLLVMIR
//     -> LLVM's O3 module pipeline (PassBuilder)      with the TargetMachine
//     -> llvm::TargetMachine: object / assembly in memory
//     -> lld (in-process, lld::lldMain) -> shared object
//
// When lld's libraries were not found at configure time, the shared object is
// linked by running the ld.lld binary instead (LOWBIT_HAVE_LLD undefined).
//
//===----------------------------------------------------------------------===//
#include "LowBit/Codegen/Codegen.h"

#include "LowBit/Conversion/Passes.h"
#include "LowBit/IR/LowBit.h"
#include "lowbit/Support/TemporaryFiles.h"
#include "lowbit/Target/KernelABI.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/ArmNeon/ArmNeonToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Triple.h"

#include <mutex>

#ifdef LOWBIT_HAVE_LLD
#include "lld/Common/Driver.h"
LLD_HAS_DRIVER(elf)
#endif

namespace lowbit::codegen {

using mlir::ModuleOp;
using mlir::Operation;

const KernelInfo *KernelManifest::find(const std::string &weight) const {
  for (const KernelInfo &k : kernels)
    if (k.weight == weight)
      return &k;
  return nullptr;
}

bool parseEmitKind(const std::string &name, EmitKind &kind) {
  if (name == "so")
    kind = EmitKind::SharedObject;
  else if (name == "obj")
    kind = EmitKind::Object;
  else if (name == "asm")
    kind = EmitKind::Assembly;
  else if (name == "llvm")
    kind = EmitKind::LLVMIR;
  else
    return false;
  return true;
}

namespace {

/// The weight operand of a matmul-like op.
mlir::Value weightOf(Operation *op) {
  if (auto m = llvm::dyn_cast<mlir::lowbit::MatmulOp>(op))
    return m.getWeight();
  if (auto m = llvm::dyn_cast<mlir::lowbit::QMatmulOp>(op))
    return m.getWeight();
  if (auto m = llvm::dyn_cast<mlir::lowbit::MatmulResidualOp>(op))
    return m.getWeight();
  return {};
}

/// The global weight symbol behind a weight value ("" when it is not a
/// lowbit.weight reference).
std::string weightName(mlir::Value weight) {
  if (auto ref = weight.getDefiningOp<mlir::lowbit::WeightOp>())
    return ref.getName().str();
  return "";
}

/// Reads the result of convert-lowbit-to-kernels into `out`.
void collectManifest(ModuleOp module, const target::TargetInfo &target,
                     KernelManifest &out) {
  out.target = target.name;
  out.abiVersion = LB_KERNEL_ABI_VERSION;
  out.kernels.clear();
  out.fallbacks.clear();
  llvm::StringSet<> seenKernel, seenFallback;
  // The kernel of a weight (of each expert's matrix for a 3-D stack).
  auto addKernel = [&](const std::string &name,
                       mlir::lowbit::QTensorType type, llvm::StringRef symbol,
                       llvm::StringRef quantizer) {
    const formats::Format format = type.getFormat().getFormat();
    KernelInfo k;
    k.weight = name;
    k.format = format;
    k.rows = type.getNumRows();
    k.cols = type.getRowLength();
    k.interleaveRows = type.getLayout() ? type.getLayout().getRows() : 1;
    k.kernelSymbol = symbol.str();
    k.quantizerSymbol = quantizer.str();
    const target::KernelChoice *choice = target.find(format);
    k.activation = choice ? choice->activation : formats::Format::F32;
    k.dotPath = choice ? choice->dotPath : "";
    out.kernels.push_back(std::move(k));
  };
  module.walk([&](Operation *op) {
    // A moe_ffn's routed experts: one kernel per stacked weight, called on
    // one expert's rows at a time.
    if (auto moe = llvm::dyn_cast<mlir::lowbit::MoEFFNOp>(op)) {
      auto kernels = op->getAttrOfType<mlir::ArrayAttr>(
          mlir::lowbit::kExpertKernelsAttrName);
      auto quantizers = op->getAttrOfType<mlir::ArrayAttr>(
          mlir::lowbit::kExpertActQuantizersAttrName);
      if (!kernels || !quantizers || kernels.size() != 3 ||
          quantizers.size() != 3)
        return;
      mlir::Value experts[] = {moe.getGateExps(), moe.getUpExps(),
                               moe.getDownExps()};
      for (int i = 0; i < 3; ++i) {
        auto type = llvm::dyn_cast<mlir::lowbit::QTensorType>(
            experts[i].getType());
        auto symbol = llvm::dyn_cast<mlir::StringAttr>(kernels[i]);
        auto quantizer = llvm::dyn_cast<mlir::StringAttr>(quantizers[i]);
        const std::string name = weightName(experts[i]);
        if (!type || type.getShape().size() != 3 || !symbol ||
            !quantizer || symbol.getValue().empty() || name.empty() ||
            !seenKernel.insert(name).second)
          continue;
        addKernel(name, type, symbol.getValue(), quantizer.getValue());
      }
      return;
    }
    mlir::Value weight = weightOf(op);
    if (!weight)
      return;
    auto type = llvm::dyn_cast<mlir::lowbit::QTensorType>(weight.getType());
    if (!type || type.getShape().size() != 2)
      return;
    const std::string name = weightName(weight);
    const formats::Format format = type.getFormat().getFormat();
    if (auto kernel = op->getAttrOfType<mlir::FlatSymbolRefAttr>(
            mlir::lowbit::kKernelAttrName)) {
      if (!name.empty() && !seenKernel.insert(name).second)
        return;
      auto q = op->getAttrOfType<mlir::FlatSymbolRefAttr>(
          mlir::lowbit::kActQuantizerAttrName);
      addKernel(name, type, kernel.getValue(),
                q ? q.getValue() : llvm::StringRef());
      return;
    }
    if (!name.empty() && !seenFallback.insert(name).second)
      return;
    FallbackInfo f;
    f.weight = name;
    f.format = format;
    f.rows = type.getShape()[0];
    f.cols = type.getShape()[1];
    if (auto why = op->getAttrOfType<mlir::StringAttr>(
            mlir::lowbit::kKernelFallbackAttrName))
      f.reason = why.getValue().str();
    else
      f.reason = "no kernel";
    out.fallbacks.push_back(std::move(f));
  });
}

void initializeLLVMTargets() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    llvm::InitializeAllAsmParsers();
  });
}

/// Runs `pm` on `module`, turning diagnostics into `err`.
bool runPasses(mlir::PassManager &pm, ModuleOp module, std::string &err) {
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        // Fall-backs are reported through the manifest.
        if (d.getSeverity() == mlir::DiagnosticSeverity::Error) {
          llvm::raw_string_ostream os(diagnostics);
          os << d << "\n";
        }
        return mlir::success();
      });
  if (mlir::succeeded(pm.run(module)))
    return true;
  err = diagnostics.empty() ? "MLIR pass pipeline failed" : diagnostics;
  return false;
}

/// lld, in-process or as a program, turns `objPath` into a shared object.
bool linkSharedObject(const std::string &objPath, const std::string &soPath,
                      std::string soname, std::string &err) {
  if (soname.empty())
    soname = llvm::sys::path::filename(soPath).str();
#ifdef LOWBIT_HAVE_LLD
  // lld keeps global state: one link at a time.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  const char *args[] = {
      "ld.lld",  "-shared",          "-o", soPath.c_str(), objPath.c_str(),
      "-soname", soname.c_str(),     "-z", "noexecstack",  "-z",
      "now",     "--hash-style=gnu", "-O2"};
  std::string out, errors;
  llvm::raw_string_ostream outOS(out), errOS(errors);
  lld::Result result =
      lld::lldMain(args, outOS, errOS, {{lld::Gnu, &lld::elf::link}});
  if (result.retCode != 0) {
    err = "lld: " + errors;
    return false;
  }
  return true;
#else
  llvm::ErrorOr<std::string> lld = llvm::sys::findProgramByName("ld.lld-22");
  if (!lld)
    lld = llvm::sys::findProgramByName("ld.lld");
  if (!lld) {
    err = "no ld.lld found to link " + soPath;
    return false;
  }
  llvm::SmallVector<llvm::StringRef> args = {
      *lld,   "-shared", "-o",          soPath, objPath, "-soname",
      soname, "-z",      "noexecstack", "-z",   "now"};
  std::string message;
  if (llvm::sys::ExecuteAndWait(*lld, args, std::nullopt, {}, 0, 0, &message) !=
      0) {
    err = "ld.lld failed: " + message;
    return false;
  }
  return true;
#endif
}

bool writeFile(const std::string &path, llvm::StringRef bytes,
               std::string &err) {
  if (path == "-") {
    llvm::outs() << bytes;
    llvm::outs().flush();
    return true;
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    err = path + ": " + ec.message();
    return false;
  }
  os << bytes;
  os.close();
  if (os.has_error()) {
    err = path + ": write failed";
    return false;
  }
  return true;
}

} // namespace

bool emitKernels(ModuleOp module, const target::TargetInfo &target,
                 const CodegenOptions &options, const std::string &path,
                 KernelManifest &out, std::string &err) {
  mlir::MLIRContext *ctx = module.getContext();
  {
    mlir::DialectRegistry registry;
    mlir::registerBuiltinDialectTranslation(registry);
    mlir::registerLLVMDialectTranslation(registry);
    mlir::registerArmNeonDialectTranslation(registry);
    ctx->appendDialectRegistry(registry);
  }

  // 1. Kernels in MLIR, on a copy (the caller's module is left alone).
  mlir::OwningOpRef<ModuleOp> work(module.clone());
  {
    mlir::PassManager pm(ctx);
    mlir::lowbit::ConvertLowBitToKernelsOptions opts;
    opts.targetName = target.name;
    pm.addPass(mlir::lowbit::createLowBitGenerateEntry());
    pm.addPass(mlir::lowbit::createConvertLowBitToKernels(opts));
    if (!runPasses(pm, *work, err))
      return false;
  }
  collectManifest(*work, target, out);

  // 2. Lowering to the LLVM dialect.
  {
    mlir::PassManager pm(ctx);
    mlir::lowbit::buildLowBitKernelsToLLVMPipeline(pm);
    if (!runPasses(pm, *work, err))
      return false;
  }

  // 3. LLVM IR for the target.
  initializeLLVMTargets();
  llvm::Triple triple(target.triple);
  std::string lookupError;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, lookupError);
  if (!llvmTarget) {
    err = "LLVM has no backend for " + std::string(target.triple) + ": " +
          lookupError;
    return false;
  }
  llvm::TargetOptions targetOptions;
  // Loop and register comments in assembly output, as llc prints them.
  targetOptions.MCOptions.AsmVerbose = options.kind == EmitKind::Assembly;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, target.cpu, target.features, targetOptions, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine) {
    err = "cannot create a target machine for " + std::string(target.name);
    return false;
  }
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      mlir::translateModuleToLLVMIR(*work, llvmContext, "lowbit-kernels");
  if (!llvmModule) {
    err = "translation to LLVM IR failed";
    return false;
  }
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());

  // 4. LLVM's O3 module pipeline (inlining of the memref plumbing, loop
  // unrolling, instruction combining) with the target's cost model.
  if (options.optLevel > 0) {
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder builder(machine.get());
    builder.registerModuleAnalyses(mam);
    builder.registerCGSCCAnalyses(cgam);
    builder.registerFunctionAnalyses(fam);
    builder.registerLoopAnalyses(lam);
    builder.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::OptimizationLevel level =
        options.optLevel >= 3   ? llvm::OptimizationLevel::O3
        : options.optLevel == 2 ? llvm::OptimizationLevel::O2
                                : llvm::OptimizationLevel::O1;
    llvm::ModulePassManager mpm = builder.buildPerModuleDefaultPipeline(level);
    mpm.run(*llvmModule, mam);
  }

  if (options.kind == EmitKind::LLVMIR) {
    std::string text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    return writeFile(path, text, err);
  }

  // 5. Machine code in memory.
  llvm::SmallString<0> code;
  {
    llvm::raw_svector_ostream os(code);
    llvm::legacy::PassManager codegen;
    const bool assembly = options.kind == EmitKind::Assembly;
    if (machine->addPassesToEmitFile(codegen, os, nullptr,
                                     assembly
                                         ? llvm::CodeGenFileType::AssemblyFile
                                         : llvm::CodeGenFileType::ObjectFile)) {
      err = "the " + std::string(target.name) +
            " target machine cannot emit this file type";
      return false;
    }
    codegen.run(*llvmModule);
  }
  if (options.kind != EmitKind::SharedObject)
    return writeFile(path, code, err);

  // 6. The shared object.
  llvm::SmallString<128> objPath;
  int fd;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
          "lowbit-kernels", "o", fd, objPath)) {
    err = "cannot create a temporary object file: " + ec.message();
    return false;
  }
  ::lowbit::ScopedTemporaryFile object(objPath.str().str());
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << code;
  }
  bool linked =
      linkSharedObject(objPath.str().str(), path, options.soname, err);
  return linked;
}

bool emitNativeKernels(ModuleOp module, const target::TargetInfo &target,
                       const std::string &soPath, KernelManifest &out,
                       std::string &err) {
  CodegenOptions options;
  options.kind = EmitKind::SharedObject;
  return emitKernels(module, target, options, soPath, out, err);
}

} // namespace lowbit::codegen
