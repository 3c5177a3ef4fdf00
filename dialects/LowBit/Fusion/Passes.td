//===- Passes.td - lowbit fusion and packing passes --------*- tablegen -*-===//
//
// The passes that shape a quantized module for native code: fusions that
// cut memory traffic and kernel calls, and the packing of weights into the
// target's interleaved layouts. Each runs alone (`lowbit-opt --lowbit-...`);
// `lowbit compile --emit native` runs fuse-qkv, fuse-gate-up, fuse-swiglu
// and pack-weights.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_FUSION_PASSES_TD
#define LOWBIT_FUSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowBitFuseQKV : Pass<"lowbit-fuse-qkv", "::mlir::ModuleOp"> {
  let summary = "Fuse the q/k/v projections of an attention into one matmul";
  let description = [{
    For every `lowbit.attention` whose query, key and value come (directly or
    through `lowbit.rope`) from three bias-free `lowbit.matmul`s of the same
    input, creates one global weight whose rows are q's, then k's, then v's
    (`blk.N.attn_qkv.weight` for GGUF names; `lowbit.fused_from` and
    `lowbit.fused_rows` record the pieces), multiplies once and splits the
    result. The bytes are concatenated, not re-encoded, so the weights must
    share format, row length and (plain) layout; otherwise the matmuls stay
    apart and a remark says why (e.g. q4_k_m stores attn_v in q6_k in some
    layers). Weights left without users are erased.

    Before:
    ```mlir
    %q = lowbit.matmul %x, %wq : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0> -> tensor<?x64xf32>
    %k = lowbit.matmul %x, %wk : tensor<?x64xf32>, !lowbit.qtensor<32x64 : q8_0> -> tensor<?x32xf32>
    %v = lowbit.matmul %x, %wv : tensor<?x64xf32>, !lowbit.qtensor<32x64 : q8_0> -> tensor<?x32xf32>
    ```
    After:
    ```mlir
    %w = lowbit.weight @blk.0.attn_qkv.weight : !lowbit.qtensor<128x64 : q8_0>
    %qkv = lowbit.matmul %x, %w : tensor<?x64xf32>, !lowbit.qtensor<128x64 : q8_0> -> tensor<?x128xf32>
    %q, %k, %v = lowbit.split %qkv {sizes = array<i64: 64, 32, 32>} : tensor<?x128xf32> -> ...
    ```
  }];
}

def LowBitFuseGateUp : Pass<"lowbit-fuse-gate-up", "::mlir::ModuleOp"> {
  let summary = "Fuse the gate and up projections of a SwiGLU block";
  let description = [{
    For every `lowbit.mul(lowbit.silu(%g), %u)` or `lowbit.swiglu %g, %u`
    whose `%g` and `%u` are bias-free `lowbit.matmul`s of the same input,
    concatenates the two weights' rows (gate first) into one global weight
    (`blk.N.ffn_gate_up.weight`), multiplies once and splits. Weights of
    different formats are left apart with a remark, as in lowbit-fuse-qkv.

    Before:
    ```mlir
    %g = lowbit.matmul %x, %wg : ... -> tensor<?x172xf32>
    %u = lowbit.matmul %x, %wu : ... -> tensor<?x172xf32>
    %s = lowbit.silu %g : tensor<?x172xf32>
    %h = lowbit.mul %s, %u : tensor<?x172xf32>
    ```
    After:
    ```mlir
    %gu = lowbit.matmul %x, %w : ... -> tensor<?x344xf32>
    %g, %u = lowbit.split %gu {sizes = array<i64: 172, 172>} : ...
    ```
  }];
}

def LowBitFuseSwiGLU : Pass<"lowbit-fuse-swiglu", "::mlir::ModuleOp"> {
  let summary = "Fuse silu(gate) * up into lowbit.swiglu";
  let description = [{
    Rewrites `lowbit.mul(lowbit.silu(%g), %u)` (either operand order) into
    `lowbit.swiglu %g, %u` when the silu has no other user.

    Before:
    ```mlir
    %s = lowbit.silu %g : tensor<?x172xf32>
    %h = lowbit.mul %s, %u : tensor<?x172xf32>
    ```
    After:
    ```mlir
    %h = lowbit.swiglu %g, %u : tensor<?x172xf32>
    ```
  }];
}

def LowBitFuseNormQuant : Pass<"lowbit-fuse-norm-quant", "::mlir::ModuleOp"> {
  let summary = "Fuse RMSNorm with the activation quantization of its matmuls";
  let description = [{
    For every `lowbit.rms_norm` feeding `lowbit.matmul`s whose weights have a
    kernel on the target that takes quantized activations (the target table's
    activation format, e.g. q8_0 for Q4_0 weights on x86-64-v3), creates a
    `lowbit.rms_norm_quant` that also emits the activations in that format,
    and turns those matmuls into `lowbit.qmatmul`s of it: the activations are
    quantized once, in the pass that normalises them, for every consumer.
    When the consumers need different activation formats (q8_0 and q8_k) the
    norm is left alone with a remark.

    Before:
    ```mlir
    %y = lowbit.rms_norm %x, %n {epsilon = 1.0e-05 : f32} : ...
    %q = lowbit.matmul %y, %wq : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q4_0> -> tensor<?x64xf32>
    ```
    After `--lowbit-fuse-norm-quant="target=x86-64-v3"`:
    ```mlir
    %y, %yq = lowbit.rms_norm_quant %x, %n {act_format = #lowbit.format<q8_0>, epsilon = 1.0e-05 : f32}
        : ... -> tensor<?x64xf32>, tensor<?x68xi8>
    %q = lowbit.qmatmul %yq, %wq {act_format = #lowbit.format<q8_0>} : tensor<?x68xi8>, ... -> tensor<?x64xf32>
    ```
  }];
  let options = [
    Option<"targetName", "target", "std::string", "\"host\"",
           "Target whose kernel table gives the activation formats">
  ];
}

def LowBitFuseResidual : Pass<"lowbit-fuse-residual", "::mlir::ModuleOp"> {
  let summary = "Fold residual adds into the matmul that produces the update";
  let description = [{
    Rewrites `lowbit.add(%r, lowbit.matmul(%x, %w))` (either operand order)
    into `lowbit.matmul_residual %x, %w, %r` when the matmul has no bias and
    no other user.

    Before:
    ```mlir
    %o = lowbit.matmul %h, %wo : ... -> tensor<?x64xf32>
    %x1 = lowbit.add %x0, %o : tensor<?x64xf32>
    ```
    After:
    ```mlir
    %x1 = lowbit.matmul_residual %h, %wo, %x0 : ... -> tensor<?x64xf32>
    ```
  }];
}

def LowBitPackWeights : Pass<"lowbit-pack-weights", "::mlir::ModuleOp"> {
  let summary = "Interleave matmul weights into the target's packed layout";
  let description = [{
    For every global weight that is only ever a matmul's weight, looks its
    format up in the target's table (lowbit/Target/TargetTable.h, the same
    table the kernel generator and the runtime read) and, when the table
    interleaves N > 1 rows, rewrites the bytes into the layout of
    lowbit/Formats/Layout.h (block b of N rows back to back) and the type to
    `#lowbit.layout<rows = N>`. Weights stay plain, with a remark, when the
    target has no kernel for their format, when their row count is not a
    multiple of N, or when another op (an embedding lookup) reads them.

    Before:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<8x32 : q8_0> = dense_resource<w> : tensor<272xi8>
    ```
    After `--lowbit-pack-weights="target=x86-64-v3"`:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<8x32 : q8_0, #lowbit.layout<rows = 4>>
        = dense_resource<w_packed> : tensor<272xi8>
    ```
  }];
  let options = [
    Option<"targetName", "target", "std::string", "\"host\"",
           "Target from the registry (host, x86-64-v3, x86-64-v4, aarch64)">
  ];
}

#endif // LOWBIT_FUSION_PASSES_TD
