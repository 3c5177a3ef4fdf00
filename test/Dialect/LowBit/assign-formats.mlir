// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q4_k_m" | FileCheck %s --check-prefix=Q4KM
// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q4_k_m pure=true" | FileCheck %s --check-prefix=PURE
// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q3_k_m tensor-type=ffn_up=q8_0 tensor-type=ffn_.*=q6_k output-tensor-type=f16" | FileCheck %s --check-prefix=RULES
// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q4_0" | FileCheck %s --check-prefix=Q40

// An 8-layer llama (GQA 2) with 256-wide rows, as llama.cpp names tensors.
// Q4_K_M: output Q6_K; attn_v and ffn_down Q6_K on "more bits" layers
// (0, 3, 6, 7 of 8), Q4_K elsewhere; norms and the 64-wide tensor untouched
// except for the fall-back.
module attributes {lowbit.metadata = [
    #lowbit.kv<"general.architecture", "llama">,
    #lowbit.kv<"general.file_type", 0 : ui32>,
    #lowbit.kv<"llama.block_count", #lowbit.model_key>,
    #lowbit.kv<"llama.attention.head_count", #lowbit.model_key>,
    #lowbit.kv<"llama.attention.head_count_kv", #lowbit.model_key>], lowbit.model = #lowbit.model<"llama", {block_count = 8 : ui32, head_count = 4 : ui32, head_count_kv = 2 : ui32}>} {
lowbit.global_weight @token_embd.weight : !lowbit.qtensor<512x256 : f32> = #lowbit.external<"m", offset = 0, size = 524288> {role = #lowbit.role<token_embd>}
lowbit.global_weight @blk.0.attn_v.weight : !lowbit.qtensor<128x256 : f32> = #lowbit.external<"m", offset = 0, size = 131072> {role = #lowbit.role<attn_v, layer = 0>}
lowbit.global_weight @blk.1.attn_v.weight : !lowbit.qtensor<128x256 : f32> = #lowbit.external<"m", offset = 0, size = 131072> {role = #lowbit.role<attn_v, layer = 1>}
lowbit.global_weight @blk.3.attn_v.weight : !lowbit.qtensor<128x256 : f32> = #lowbit.external<"m", offset = 0, size = 131072> {role = #lowbit.role<attn_v, layer = 3>}
lowbit.global_weight @blk.0.ffn_down.weight : !lowbit.qtensor<256x768 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_down, layer = 0>}
lowbit.global_weight @blk.1.ffn_down.weight : !lowbit.qtensor<256x768 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_down, layer = 1>}
lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_up, layer = 0>}
lowbit.global_weight @blk.0.attn_output.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<"m", offset = 0, size = 262144> {role = #lowbit.role<attn_output, layer = 0>}
lowbit.global_weight @blk.0.attn_norm.weight : !lowbit.qtensor<256 : f32> = #lowbit.external<"m", offset = 0, size = 1024> {role = #lowbit.role<attn_norm, layer = 0>}
lowbit.global_weight @blk.0.narrow.weight : !lowbit.qtensor<4x64 : f32> = #lowbit.external<"m", offset = 0, size = 1024> {role = #lowbit.role<narrow, layer = 0>}
lowbit.global_weight @output.weight : !lowbit.qtensor<512x256 : f32> = #lowbit.external<"m", offset = 0, size = 524288> {role = #lowbit.role<output>}
}

// llama.cpp moves both keys to the end, quantization_version first.
// Q4KM: #lowbit.kv<"general.architecture", "llama">, #lowbit.kv<"llama.block_count", #lowbit.model_key>
// Q4KM-SAME: #lowbit.kv<"general.quantization_version", 2 : ui32>, #lowbit.kv<"general.file_type", 15 : ui32>]
// Q4KM: @token_embd.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// 3 attn_v tensors: use_more_bits holds only for the last (rank 2 >= 7*3/8).
// Q4KM: @blk.0.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// Q4KM: @blk.1.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// Q4KM: @blk.3.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}
// Q4KM: @blk.0.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}
// Q4KM: @blk.1.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// Q4KM: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// Q4KM: @blk.0.attn_output.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// Q4KM: @blk.0.attn_norm.weight
// Q4KM-NOT: lowbit.target
// 64-wide rows cannot hold Q4_K: llama.cpp's fall-back is Q5_0.
// Q4KM: @blk.0.narrow.weight {{.*}} {lowbit.target = #lowbit.format<q5_0>{{[,}]}}
// Q4KM: @output.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}

// PURE: @blk.0.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// PURE: @blk.0.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// PURE: @output.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}

// RULES: #lowbit.kv<"general.file_type", 12 : ui32>
// RULES: @blk.0.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q5_k>{{[,}]}}
// RULES: @blk.1.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q5_k>{{[,}]}}
// RULES: @blk.3.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// First match wins: ffn_down matches only the second rule.
// RULES: @blk.0.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}
// RULES: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}
// RULES: @blk.0.attn_output.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// RULES: @output.weight {{.*}} {lowbit.target = #lowbit.format<f16>{{[,}]}}

// Q40: #lowbit.kv<"general.file_type", 2 : ui32>
// Q40: @token_embd.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// Q40: @blk.0.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// Q40: @output.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}
