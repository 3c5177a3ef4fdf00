//===- Passes.td - lowbit conversion passes ----------------*- tablegen -*-===//
//
// Conversions out of the lowbit dialect. Generating native matmul kernels:
//
//   lowbit-generate-entry                   @forward as lb_forward + lb_program
//   convert-lowbit-to-kernels{target=...}   kernels + quantizers as func.func
//   lowbit-isolate-kernels                  drop the model, keep the kernels
//   (pipeline) lowbit-kernels-to-llvm       isolate + standard lowering to
//                                           the LLVM dialect + kernel table
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_CONVERSION_PASSES_TD
#define LOWBIT_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertLowBitToKernels : Pass<"convert-lowbit-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Generate native matmul kernels for every lowbit.matmul weight";
  let description = [{
    For every distinct (format, rows, cols, layout) of a weight multiplied by
    `lowbit.matmul`, generates a kernel with the C ABI of
    `lb_matmul_kernel_fn` (lowbit/Target/KernelABI.h) from scf, vector,
    arith and memref ops, specialised for the target of the per-target table
    (lowbit/Target/TargetTable.h): weights decoded in registers, activations
    pre-quantized to 8-bit blocks by a generated `lb_quantize_act_fn`, integer
    dot products with the target's instructions (`llvm.call_intrinsic` of
    vpmaddubsw/vpmaddwd on AVX2, vpdpbusd on AVX-512 VNNI, `arm_neon.intr.sdot`
    on AArch64), a micro-tile of rows x tokens that reuses each decoded
    weight block for several tokens in prompt shapes.

    Each matmul gets `lowbit.kernel` (and `lowbit.act_quantizer` when its
    activations are quantized) naming the functions. A weight whose format
    has no kernel on the target gets `lowbit.kernel_fallback` and a warning:
    the runtime decodes it to f32, which is slow.

    Before:
    ```mlir
    %w = lowbit.weight @w : !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>
    %y = lowbit.matmul %x, %w : tensor<?x256xf32>, !lowbit.qtensor<...> -> tensor<?x64xf32>
    ```
    After `--convert-lowbit-to-kernels="target=x86-64-v3"`:
    ```mlir
    %y = lowbit.matmul %x, %w {lowbit.act_quantizer = @lb_quant_q8_0,
                               lowbit.kernel = @lb_mm_q4_0_64x256_r4} : ...
    func.func @lb_mm_q4_0_64x256_r4(%w: !llvm.ptr, %x: !llvm.ptr, %xq: !llvm.ptr,
        %y: !llvm.ptr, %tokens: i64, %xStride: i64, %yStride: i64,
        %rowBegin: i64, %rowEnd: i64) attributes {lowbit.kernel_entry, ...} {
      ... scf.for / vector.load / llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw" ...
    }
    func.func @lb_quant_q8_0(...) attributes {lowbit.kernel_entry, ...}
    func.func @lb_abi_version() -> i32 attributes {lowbit.kernel_entry}
    ```
  }];
  let options = [
    Option<"targetName", "target", "std::string", "\"host\"",
           "Target from the registry (host, x86-64-v3, x86-64-v4, aarch64)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::arm_neon::ArmNeonDialect"
  ];
}

def LowBitGenerateEntry : Pass<"lowbit-generate-entry", "::mlir::ModuleOp"> {
  let summary = "Generate the model's entry function from @forward";
  let description = [{
    Translates `func.func @forward` (after fusion and packing) into the
    program of a native artifact (lowbit/Target/KernelABI.h): one constant
    `lb_op` record per op (operands as value numbers, weights as indices into
    the program's weight-name table, attributes, the op's IR location) and
    `llvm.func @lb_forward(%exec, %api)`, which calls, for every op in graph
    order, the op function of its kind: a small trampoline `@lb_op_<kind>`
    that calls entry `<kind>` of the runtime's `lb_runtime_api` table (one
    function per op kind of lowbit's op library). `@lb_program` holds the
    buffer plan (values, buffers, widths, the output head), the KV cache's
    shape and the weight names; `@lb_get_program` (a kernel entry, so also in
    `lb_kernel_table`) returns it.

    A module without `@forward` (kernels only) is left alone. A graph the
    executor's translation rejects (an unknown op, a shape mismatch, a weight
    an op needs missing) fails the pass with that located diagnostic.

    ```mlir
    llvm.func @lb_forward(%exec: !llvm.ptr, %api: !llvm.ptr) {
      %0 = llvm.mlir.addressof @lb_op.0 : !llvm.ptr
      llvm.call @lb_op_embedding(%exec, %api, %0) : (!llvm.ptr, !llvm.ptr, !llvm.ptr) -> ()
      %1 = llvm.mlir.addressof @lb_op.1 : !llvm.ptr
      llvm.call @lb_op_layer_boundary(%exec, %api, %1) : ...
      ...
    }
    ```
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def LowBitIsolateKernels : Pass<"lowbit-isolate-kernels", "::mlir::ModuleOp"> {
  let summary = "Keep only the generated kernels of a module";
  let description = [{
    Erases every operation of the module except the functions that
    `convert-lowbit-to-kernels` generated (`lowbit.kernel_entry`) and sets
    `llvm.target_triple` from the module's `lowbit.codegen_target`, so the
    module can be lowered to LLVM IR on its own.
  }];
}

def LowBitEmitKernelTable : Pass<"lowbit-emit-kernel-table", "::mlir::ModuleOp"> {
  let summary = "Add the lb_kernel_table of the generated functions";
  let description = [{
    Runs on the LLVM dialect (after convert-func-to-llvm): adds the global
    `lb_kernel_table`, an array of `{name, function}` pairs ended by a null
    name, listing every `llvm.func` marked `lowbit.kernel_entry`, so that a
    static binary can find kernels by name (KernelABI.h).
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // LOWBIT_CONVERSION_PASSES_TD
