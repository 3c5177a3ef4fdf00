//===- LowBitOps.td - lowbit operations --------------------*- tablegen -*-===//
#ifndef LOWBIT_OPS_TD
#define LOWBIT_OPS_TD

include "LowBit/IR/LowBitTypes.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

class LowBit_Op<string mnemonic, list<Trait> traits = []>
    : Op<LowBit_Dialect, mnemonic, traits>;

def LowBit_F32Tensor : RankedTensorOf<[F32]>;
def LowBit_IndexTensor : 1DTensorOf<[I32]>;
// A weight operand: a stored weight, or an f32 tensor computed in the graph.
def LowBit_WeightLike : AnyTypeOf<[LowBit_QTensorType, LowBit_F32Tensor]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def LowBit_GlobalWeightOp : LowBit_Op<"global_weight", [Symbol, IsolatedFromAbove]> {
  let summary = "A named weight tensor of the model";
  let description = [{
    Declares a weight at module level. The symbol is the tensor's name in the
    source model; module order is the tensor order of an exported file.
    `data` is `#lowbit.external` (bytes in a file) or a `dense_resource` blob
    of i8 (bytes materialised by a pass); its size must match the type.
    `role` says what the weight is (set by importers; absent for weights
    they did not recognise).

    ```mlir
    lowbit.global_weight @token_embd.weight : !lowbit.qtensor<512x64 : f32>
        = #lowbit.external<"/m.gguf", offset = 1536, size = 131072>
        {role = #lowbit.role<token_embd>}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<LowBit_QTensorType>:$type,
                       AnyAttr:$data,
                       OptionalAttr<LowBit_RoleAttr>:$role);
  let assemblyFormat = "$sym_name `:` $type `=` $data attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    QTensorType getWeightType() { return ::llvm::cast<QTensorType>(getType()); }
  }];
}

def LowBit_WeightOp : LowBit_Op<"weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Reference to a global weight";
  let description = [{
    ```mlir
    %w = lowbit.weight @blk.0.attn_q.weight : !lowbit.qtensor<64x64 : q4_0>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs LowBit_QTensorType:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Model-level compute
//===----------------------------------------------------------------------===//

def LowBit_EmbeddingOp : LowBit_Op<"embedding", [Pure]> {
  let summary = "Rows of an embedding table for token ids";
  let description = [{
    `result[t, :] = table[ids[t], :]`, decoded to f32.
    ```mlir
    %x = lowbit.embedding %table[%ids] : !lowbit.qtensor<512x64 : q8_0>, tensor<?xi32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LowBit_WeightLike:$table, LowBit_IndexTensor:$ids);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$table `[` $ids `]` attr-dict `:` type($table) `,` type($ids) `->` type($result)";
  let hasVerifier = 1;
}

def LowBit_MatmulOp : LowBit_Op<"matmul", [Pure]> {
  let summary = "Activations times the transpose of a (quantized) weight";
  let description = [{
    `result[t, n] = sum_k x[t, k] * w[n, k] (+ bias[n])`, the GGML convention:
    a weight of shape `[N, K]` has one row per output, so rows are contiguous
    blocks of the format. Inputs of higher rank (`[batch, t, K]`, from ONNX
    graphs) keep their leading dimensions.
    ```mlir
    %y = lowbit.matmul %x, %w : tensor<?x64xf32>, !lowbit.qtensor<172x64 : q4_0> -> tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$weight,
                       Optional<LowBit_WeightLike>:$bias);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def LowBit_RMSNormOp : LowBit_Op<"rms_norm", [Pure]> {
  let summary = "RMS normalisation over the last dimension, times a weight";
  let description = [{
    `y = x / sqrt(mean(x^2) + epsilon) * weight`. With `group = G` each row is
    normalised in groups of G values (e.g. per attention head, as qwen3's and
    gemma3's q/k norms), all with the same G-value weight.
    ```mlir
    %y = lowbit.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>
    %q = lowbit.rms_norm %x, %h {epsilon = 1.0e-06 : f32, group = 16 : i64} : tensor<?x64xf32>, !lowbit.qtensor<16 : f32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$weight,
                       F32Attr:$epsilon, OptionalAttr<I64Attr>:$group);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)";
  let hasVerifier = 1;
}

def LowBit_LayerNormOp : LowBit_Op<"layer_norm", [Pure]> {
  let summary = "Layer normalisation over the last dimension";
  let description = [{
    `y = (x - mean(x)) / sqrt(var(x) + epsilon) * weight + bias`
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$weight,
                       Optional<LowBit_WeightLike>:$bias, F32Attr:$epsilon);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($bias)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def LowBit_RopeOp : LowBit_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>,
                                      AttrSizedOperandSegments]> {
  let summary = "Rotary position embedding on each head";
  let description = [{
    The input is `[tokens, heads * head_dim]`; the first `rope_dims` values of
    every head are rotated by `freq_scale * pos * theta^(-2i/rope_dims) /
    factors[i]`. `mode` picks the pairing: `normal` rotates (2i, 2i+1) (llama
    as stored in GGUF), `neox` rotates (i, i + rope_dims/2). `factors`
    (optional, `rope_dims / 2` values) are per-frequency divisors such as
    Llama-3.1's `rope_freqs` (llama.cpp's `freq_factors`). YaRN, as ggml
    computes it: with `ext_factor` != 0, pair i's angle blends the scaled
    (interpolated) and unscaled (extrapolated) angles by a ramp between the
    correction dimensions of `original_context`, `beta_fast` and `beta_slow`,
    and cos/sin are multiplied by `attn_factor * (1 + 0.1 ln(1/freq_scale))`
    (by `attn_factor` alone without YaRN). LongRoPE: with `long_factors`, a run
    whose context exceeds `original_context` uses them instead of `factors`
    (llama.cpp's rope_factors_long / rope_factors_short).
    ```mlir
    %q = lowbit.rope %x, %pos {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e+04 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>
    %k = lowbit.rope %y, %pos factors %f {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e+04 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>, !lowbit.qtensor<4 : f32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_IndexTensor:$positions,
                       Optional<LowBit_WeightLike>:$factors,
                       Optional<LowBit_WeightLike>:$long_factors,
                       I64Attr:$heads, I64Attr:$head_dim, I64Attr:$rope_dims,
                       F32Attr:$theta, LowBit_RopeModeEnumAttr:$mode,
                       DefaultValuedAttr<F32Attr, "1.0f">:$freq_scale,
                       DefaultValuedAttr<F32Attr, "0.0f">:$ext_factor,
                       DefaultValuedAttr<F32Attr, "1.0f">:$attn_factor,
                       DefaultValuedAttr<I64Attr, "0">:$original_context,
                       DefaultValuedAttr<F32Attr, "32.0f">:$beta_fast,
                       DefaultValuedAttr<F32Attr, "1.0f">:$beta_slow);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $positions (`factors` $factors^)? (`long_factors` $long_factors^)?
    attr-dict `:` type($input) `,` type($positions) (`,` type($factors)^)?
    (`,` type($long_factors)^)?
  }];
  let hasVerifier = 1;
}

def LowBit_AttentionOp : LowBit_Op<"attention", [
    MemoryEffects<[MemRead, MemWrite]>]> {
  let summary = "Causal multi-head attention that appends to a KV cache";
  let description = [{
    Writes `key`/`value` (`[tokens, kv_heads * head_dim]`) into layer `layer`
    of the cache at `positions`, then attends each query head (grouped: query
    head h reads KV head h / (heads / kv_heads)) over cached positions
    `<= positions[t]`, scaled by `scale`. Returns `[tokens, heads * head_dim]`.
    With `window = W` (sliding-window attention, as gemma's local layers) a
    query at position p sees only positions `> p - W`. With `softcap = c`
    (gemma2) the scaled scores s become `c * tanh(s / c)` before the softmax.
    ```mlir
    %o = lowbit.attention %q, %k, %v, %cache, %pos {layer = 0 : i64, heads = 8 : i64, scale = 0.35355 : f32}
        : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 5, context = 512, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$query, LowBit_F32Tensor:$key,
                       LowBit_F32Tensor:$value, LowBit_KVCacheType:$cache,
                       LowBit_IndexTensor:$positions, I64Attr:$layer,
                       I64Attr:$heads, F32Attr:$scale,
                       OptionalAttr<I64Attr>:$window,
                       DefaultValuedAttr<F32Attr, "0.0f">:$softcap);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $cache `,` $positions attr-dict `:` type($query) `,`
    type($key) `,` type($value) `,` type($cache) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

class LowBit_BinaryOp<string mnemonic, string what>
    : LowBit_Op<mnemonic, [Pure, SameOperandsAndResultType, Commutative]> {
  let summary = "Elementwise " # what;
  let arguments = (ins LowBit_F32Tensor:$lhs, LowBit_F32Tensor:$rhs);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}
def LowBit_AddOp : LowBit_BinaryOp<"add", "addition">;
def LowBit_MulOp : LowBit_BinaryOp<"mul", "multiplication">;

class LowBit_UnaryOp<string mnemonic, string what>
    : LowBit_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = what;
  let arguments = (ins LowBit_F32Tensor:$input);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}
def LowBit_SiLUOp : LowBit_UnaryOp<"silu", "x * sigmoid(x)">;

def LowBit_MoEFFNOp : LowBit_Op<"moe_ffn", [Pure]> {
  let summary = "Mixture-of-experts feed-forward block with top-k routing";
  let description = [{
    For each token row x: `p = softmax(x · routerᵀ)` over the E experts, the
    `top_k` most probable experts are chosen with weights `p[e]` (divided by
    their sum when `normalize`), and the result is
    `Σ_k w_k · down_e(silu(gate_e · x) * (up_e · x))`, summed in the order of
    the chosen experts (most probable first). The expert weights are stacked
    3-D tensors `[E, ffn, width]` (`down`: `[E, width, ffn]`), as GGUF stores
    them. With `shared(gate, up, down, gate_inp)` a shared expert is added,
    scaled by `sigmoid(x · gate_inp)` (qwen2moe).
    ```mlir
    %y = lowbit.moe_ffn %x, %router, %g, %u, %d {top_k = 2 : i64, normalize = true} : tensor<?x256xf32>, !lowbit.qtensor<4x256 : f32>, !lowbit.qtensor<4x256x256 : f16>, !lowbit.qtensor<4x256x256 : f16>, !lowbit.qtensor<4x256x256 : f16> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$router,
                       LowBit_WeightLike:$gate_exps, LowBit_WeightLike:$up_exps,
                       LowBit_WeightLike:$down_exps,
                       Variadic<LowBit_WeightLike>:$shared, I64Attr:$top_k,
                       BoolAttr:$normalize);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $router `,` $gate_exps `,` $up_exps `,` $down_exps
    (`shared` `(` $shared^ `)`)? attr-dict `:` type($input) `,` type($router)
    `,` type($gate_exps) `,` type($up_exps) `,` type($down_exps)
    (`,` type($shared)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def LowBit_ScaleOp : LowBit_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "Elementwise multiplication by a constant";
  let description = [{
    `y = x * factor`, e.g. gemma's embeddings times sqrt(embedding width).
    ```mlir
    %y = lowbit.scale %x {factor = 1.6e+01 : f32} : tensor<?x256xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, F32Attr:$factor);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}
def LowBit_GELUOp : LowBit_UnaryOp<"gelu", "GELU, tanh approximation (as GGML)">;

def LowBit_SoftCapOp : LowBit_Op<"softcap", [Pure, SameOperandsAndResultType]> {
  let summary = "Soft capping: cap * tanh(x / cap)";
  let description = [{
    Bounds every value smoothly to (-cap, cap), e.g. gemma2's final logits
    (`final_logit_softcapping`).
    ```mlir
    %y = lowbit.softcap %x {cap = 3.0e+01 : f32} : tensor<?x256xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, F32Attr:$cap);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}
def LowBit_SoftmaxOp : LowBit_UnaryOp<"softmax", "Softmax over the last dimension">;

def LowBit_LayerBoundaryOp : LowBit_Op<"layer_boundary",
    [Pure, SameOperandsAndResultType]> {
  let summary = "The residual stream entering a layer";
  let description = [{
    An identity that marks where one layer of a model ends and the next
    begins: `layer` is the index of the layer the value enters (the number of
    layers for the state entering the output head). Importers place one
    before every layer and one before the head, so that tools can run a range
    of layers from a saved state (the executor's `evalRange`) and so that a
    layer is the ops between two boundaries. Only the marked value may be
    read across a boundary for the graph to be split there.
    ```mlir
    %x1 = lowbit.layer_boundary %x0 {layer = 1 : i64} : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, I64Attr:$layer);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Quantize / dequantize
//===----------------------------------------------------------------------===//

def LowBit_QuantizeOp : LowBit_Op<"quantize", [Pure]> {
  let summary = "Encode f32 values into a block format";
  let description = [{
    ```mlir
    %q = lowbit.quantize %x : tensor<4x64xf32> -> !lowbit.qtensor<4x64 : q8_0>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input);
  let results = (outs LowBit_QTensorType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def LowBit_DequantizeOp : LowBit_Op<"dequantize", [Pure]> {
  let summary = "Decode a block-format tensor to f32";
  let arguments = (ins LowBit_QTensorType:$input);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused ops (dialects/LowBit/Fusion)
//===----------------------------------------------------------------------===//

def LowBit_SwiGLUOp : LowBit_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up, the SwiGLU gate of a feed-forward block";
  let description = [{
    `result = gate * sigmoid(gate) * up`, elementwise: what
    `lowbit.mul(lowbit.silu(%gate), %up)` computes, in one pass over memory.
    ```mlir
    %h = lowbit.swiglu %gate, %up : tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$gate, LowBit_F32Tensor:$up);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def LowBit_SplitOp : LowBit_Op<"split", [Pure]> {
  let summary = "Split the last dimension into consecutive slices";
  let description = [{
    Result `i` holds columns `[sizes[0] + ... + sizes[i-1], ... + sizes[i])`
    of the input: the outputs of a matmul over concatenated weights (q/k/v,
    gate/up) taken apart again.
    ```mlir
    %q, %k, %v = lowbit.split %qkv {sizes = array<i64: 64, 32, 32>}
        : tensor<?x128xf32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, DenseI64ArrayAttr:$sizes);
  let results = (outs Variadic<LowBit_F32Tensor>:$results);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($results)";
  let hasVerifier = 1;
}

def LowBit_RMSNormQuantOp : LowBit_Op<"rms_norm_quant", [Pure]> {
  let summary = "RMS normalisation that also emits the quantized activation";
  let description = [{
    `result` is `lowbit.rms_norm`'s; `quantized` holds each row of it encoded
    in the block format `act_format` (the activation format the following
    matmuls' kernels consume, e.g. q8_0), as raw bytes: a row of `K` values is
    `rowBytes(act_format, K)` bytes. Normalising and quantizing in one pass
    reads the activations once and quantizes them once for all consumers.
    ```mlir
    %y, %yq = lowbit.rms_norm_quant %x, %w {act_format = #lowbit.format<q8_0>, epsilon = 1.0e-05 : f32}
        : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>, tensor<?x68xi8>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$weight,
                       F32Attr:$epsilon, LowBit_FormatAttr:$act_format);
  let results = (outs LowBit_F32Tensor:$result,
                      RankedTensorOf<[I8]>:$quantized);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->`
    type($result) `,` type($quantized)
  }];
  let hasVerifier = 1;
}

def LowBit_QMatmulOp : LowBit_Op<"qmatmul", [Pure]> {
  let summary = "Matmul whose activations arrive already quantized";
  let description = [{
    `lowbit.matmul` for activations that a `lowbit.rms_norm_quant` encoded
    in `act_format`: `input` holds rows of `rowBytes(act_format, K)` bytes
    for a weight `[N, K]`; the result is `[tokens, N]` in f32.
    ```mlir
    %q = lowbit.qmatmul %yq, %wq {act_format = #lowbit.format<q8_0>}
        : tensor<?x68xi8>, !lowbit.qtensor<64x64 : q4_0> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I8]>:$input, LowBit_QTensorType:$weight,
                       LowBit_FormatAttr:$act_format);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def LowBit_MatmulResidualOp : LowBit_Op<"matmul_residual", [Pure]> {
  let summary = "Matmul that adds its result to a residual stream";
  let description = [{
    `result = residual + input * weight^T`: the residual add of a
    transformer block folded into the matmul that produces the update, so
    the update is never written out and read back.
    ```mlir
    %x1 = lowbit.matmul_residual %h, %wo, %x0
        : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q4_0>, tensor<?x64xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LowBit_F32Tensor:$input, LowBit_WeightLike:$weight,
                       LowBit_F32Tensor:$residual);
  let results = (outs LowBit_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $residual attr-dict `:` type($input) `,` type($weight)
    `,` type($residual) `->` type($result)
  }];
  let hasVerifier = 1;
}

include "LowBit/IR/LowBitONNXOps.td"

#endif // LOWBIT_OPS_TD
