//===- Passes.td - lowbit transformation passes ------------*- tablegen -*-===//
#ifndef LOWBIT_TRANSFORMS_PASSES_TD
#define LOWBIT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowBitAssignFormats : Pass<"lowbit-assign-formats", "::mlir::ModuleOp"> {
  let summary = "Choose a storage format for every weight from a preset and rules";
  let description = [{
    Applies a llama.cpp-style preset (q4_k_m, q3_k_s, ...) with its per-tensor
    mixing rules (output and embedding types, attn_v / ffn_down bumps by layer
    position, fall-backs for row lengths that do not fit a block) and the
    user's overrides. The choice is recorded as a `lowbit.target` attribute on
    each `lowbit.global_weight` whose format changes; `lowbit-quantize`
    materialises it. The module's `general.file_type` and
    `general.quantization_version` metadata are set as llama.cpp sets them.

    Before:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
    ```
    After `--lowbit-assign-formats="preset=q4_k_m"`:
    ```mlir
    lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<...>
        {lowbit.target = #lowbit.format<q4_k>}
    ```
  }];
  let options = [
    Option<"preset", "preset", "std::string", "\"\"",
           "Preset name (q4_0, q4_k_m, ...; see lowbit compile --help)">,
    ListOption<"tensorTypes", "tensor-type", "std::string",
               "REGEX=FORMAT overrides, first match wins">,
    Option<"outputTensorType", "output-tensor-type", "std::string", "\"\"",
           "Format of output.weight">,
    Option<"tokenEmbeddingType", "token-embedding-type", "std::string", "\"\"",
           "Format of token_embd.weight">,
    Option<"pure", "pure", "bool", "false",
           "Use the preset's default format for every quantizable tensor">,
    Option<"hasImportance", "has-importance", "bool", "false",
           "An importance matrix will be used (changes some rules)">
  ];
}

def LowBitQuantize : Pass<"lowbit-quantize", "::mlir::ModuleOp"> {
  let summary = "Encode weights into their target formats";
  let description = [{
    For every `lowbit.global_weight` with a `lowbit.target` format, decodes
    the current data, encodes it into the target format (importance-weighted
    scale search when an importance matrix is given), stores the bytes as a
    resource blob and rewrites the weight's type and every `lowbit.weight`
    that refers to it. Fails, naming the tensor, on NaN/Inf weights or an
    importance vector of the wrong size.

    Before:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<2x32 : f32> = dense_resource<w> : tensor<256xi8>
        {lowbit.target = #lowbit.format<q8_0>}
    ```
    After:
    ```mlir
    lowbit.global_weight @w : !lowbit.qtensor<2x32 : q8_0> = dense_resource<w_q8_0> : tensor<68xi8>
    ```
  }];
  let options = [
    Option<"imatrix", "imatrix", "std::string", "\"\"",
           "llama.cpp importance matrix file (GGUF or legacy .dat)">,
    Option<"threads", "threads", "int", "0",
           "Encoder threads (0 = all cores)">
  ];
}

#endif // LOWBIT_TRANSFORMS_PASSES_TD
