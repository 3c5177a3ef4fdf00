// RUN: lowbit-opt %s --lowbit-allocate-bits="preset=dynamic-gate" | FileCheck %s
// RUN: lowbit-opt %s --lowbit-allocate-bits="preset=dynamic-gate tensor-type=blk\.3\.ffn_up=q8_0" | FileCheck %s --check-prefix=PIN

// An 8-layer llama: layers 0-1 and 6-7 (the outer quarters) q4_k; layers 2-5
// q2_k, with attn_v / attn_output / ffn_down at q3_k; embeddings and output
// q6_k; rows that do not fit a super-block fall back as llama.cpp does
// (q2_k -> q4_0); norms untouched. No statistics are needed.
module attributes {lowbit.metadata = [
    #lowbit.kv<"general.architecture", "llama">,
    #lowbit.kv<"llama.block_count", #lowbit.model_key>], lowbit.model = #lowbit.model<"llama", {block_count = 8 : ui32}>} {
lowbit.global_weight @token_embd.weight : !lowbit.qtensor<512x256 : f32> = #lowbit.external<"m", offset = 0, size = 524288> {role = #lowbit.role<token_embd>}
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<"m", offset = 0, size = 262144> {role = #lowbit.role<attn_q, layer = 0>}
lowbit.global_weight @blk.1.ffn_down.weight : !lowbit.qtensor<256x768 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_down, layer = 1>}
lowbit.global_weight @blk.2.attn_v.weight : !lowbit.qtensor<128x256 : f32> = #lowbit.external<"m", offset = 0, size = 131072> {role = #lowbit.role<attn_v, layer = 2>}
lowbit.global_weight @blk.3.ffn_up.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_up, layer = 3>}
lowbit.global_weight @blk.4.attn_output.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<"m", offset = 0, size = 262144> {role = #lowbit.role<attn_output, layer = 4>}
lowbit.global_weight @blk.5.attn_k.weight : !lowbit.qtensor<4x64 : f32> = #lowbit.external<"m", offset = 0, size = 1024> {role = #lowbit.role<attn_k, layer = 5>}
lowbit.global_weight @blk.5.attn_norm.weight : !lowbit.qtensor<256 : f32> = #lowbit.external<"m", offset = 0, size = 1024> {role = #lowbit.role<attn_norm, layer = 5>}
lowbit.global_weight @blk.6.ffn_gate.weight : !lowbit.qtensor<768x256 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_gate, layer = 6>}
lowbit.global_weight @blk.7.ffn_down.weight : !lowbit.qtensor<256x768 : f32> = #lowbit.external<"m", offset = 0, size = 786432> {role = #lowbit.role<ffn_down, layer = 7>}
lowbit.global_weight @output.weight : !lowbit.qtensor<512x256 : f32> = #lowbit.external<"m", offset = 0, size = 524288> {role = #lowbit.role<output>}
}
// CHECK: lowbit.allocation = {damage = 0.000000e+00 : f64, elements = {{[0-9]+}} : i64, method = "dynamic-gate", predicted_bytes = {{[0-9]+}} : i64}
// CHECK-SAME: #lowbit.kv<"general.file_type", 15 : ui32>
// CHECK: @token_embd.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}
// CHECK: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// CHECK: @blk.1.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// CHECK: @blk.2.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q3_k>{{[,}]}}
// CHECK: @blk.3.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// CHECK: @blk.4.attn_output.weight {{.*}} {lowbit.target = #lowbit.format<q3_k>{{[,}]}}
// CHECK: @blk.5.attn_k.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// CHECK: @blk.5.attn_norm.weight {{.*}} size = 1024>{{( {role = #lowbit.role<[^>]*>})?$}}
// CHECK: @blk.6.ffn_gate.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// CHECK: @blk.7.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// CHECK: @output.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}

// PIN: @blk.3.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}
