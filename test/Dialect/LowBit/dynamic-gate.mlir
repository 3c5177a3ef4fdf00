// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=published" | FileCheck %s
// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=published tensor-type=blk\.3\.ffn_up=q8_0" | FileCheck %s --check-prefix=PIN
// RUN: printf 'middle ffn_*|attn_v q4_0 # a comment\n\nlast * q8_0 at-least\n' > %t.table
// RUN: lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.table" | FileCheck %s --check-prefix=OWN
// RUN: printf 'outer attn_v iq4_xs\nlower attn_v q4_0\n' > %t.bad
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.bad" 2>&1 | FileCheck %s --check-prefix=BAND
// RUN: printf 'all * q8_k\n' > %t.q8k
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.q8k" 2>&1 | FileCheck %s --check-prefix=Q8K
// RUN: printf 'all * q4_0 at-most\n' > %t.mode
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.mode" 2>&1 | FileCheck %s --check-prefix=MODE
// RUN: printf '# nothing\n' > %t.empty
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.empty" 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not lowbit-opt %s --lowbit-assign-formats="preset=q2_k dynamic-gate=%t.missing" 2>&1 | FileCheck %s --check-prefix=MISSING

// An 8-layer llama under q2_k with the published table: bands 0-1 | 2-5 |
// 6-7. Outer attn_v/attn_output/ffn_down iq4_xs, other outer tensors keep
// the preset's format; middle attn_v/ffn_down iq3_s, every other middle
// matrix iq2_xxs unless q2_k's rules chose more bits (q2_k itself: 2.625 >
// 2.0625 bpw, so they stay); token_embd and output q5_k. Rows that fit no
// super-block fall back as llama.cpp does (q2_k -> q4_0); norms untouched.
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
// CHECK: #lowbit.kv<"general.file_type", 10 : ui32>
// CHECK: @token_embd.weight {{.*}} {lowbit.target = #lowbit.format<q5_k>{{[,}]}}
// CHECK: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// CHECK: @blk.1.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<iq4_xs>{{[,}]}}
// CHECK: @blk.2.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<iq3_s>{{[,}]}}
// CHECK: @blk.3.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// CHECK: @blk.4.attn_output.weight {{.*}} {lowbit.target = #lowbit.format<q3_k>{{[,}]}}
// CHECK: @blk.5.attn_k.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// CHECK: @blk.5.attn_norm.weight {{.*}} size = 1024>{{( {role = #lowbit.role<[^>]*>})?$}}
// CHECK: @blk.6.ffn_gate.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// CHECK: @blk.7.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<iq4_xs>{{[,}]}}
// CHECK: @output.weight {{.*}} {lowbit.target = #lowbit.format<q5_k>{{[,}]}}

// PIN: @blk.3.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}

// A user's table: middle ffn_* and attn_v q4_0; the last band at least
// q8_0; everything else keeps q2_k's choice (q6_k output, q3_k ffn_down).
// OWN: @token_embd.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// OWN: @blk.1.ffn_down.weight {{.*}} {lowbit.target = #lowbit.format<q3_k>{{[,}]}}
// OWN: @blk.2.attn_v.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// OWN: @blk.3.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q4_0>{{[,}]}}
// OWN: @blk.4.attn_output.weight {{.*}} {lowbit.target = #lowbit.format<q3_k>{{[,}]}}
// OWN: @blk.6.ffn_gate.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}
// OWN: @output.weight {{.*}} {lowbit.target = #lowbit.format<q6_k>{{[,}]}}

// BAND: error: dynamic-gate: {{.*}}.bad:2: unknown band 'lower' (first, last, outer, middle, layers or all)
// Q8K: error: dynamic-gate: {{.*}}.q8k:1: format 'q8_k' cannot store a weight in a GGUF file llama.cpp runs
// MODE: error: dynamic-gate: {{.*}}.mode:1: unknown mode 'at-most' (at-least or nothing)
// EMPTY: error: dynamic-gate: {{.*}}.empty:0: the table has no rules
// MISSING: error: dynamic-gate: {{.*}}.missing: cannot open
