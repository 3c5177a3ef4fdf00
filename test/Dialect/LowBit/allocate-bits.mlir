// RUN: lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-size=110000" 2>&1 | FileCheck %s --check-prefix=ROOMY
// RUN: lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-size=80000" | FileCheck %s --check-prefix=MIDDLE
// RUN: lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-size=60500" | FileCheck %s --check-prefix=TIGHT
// RUN: lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=4.6 method=lagrangian" | FileCheck %s --check-prefix=BPW
// RUN: lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=6.6 tensor-type=attn_q=q2_k" | FileCheck %s --check-prefix=PIN

// Two 256x256 weights: attn_q ten times as sensitive as ffn_up. The file is
// 352 bytes of header, metadata and tensor infos, the norm (1024 bytes) and
// the two weights: q2_k 21504, q4_k 36864, q8_0 69632 bytes each.
module attributes {lowbit.metadata = [
    #lowbit.kv<"general.architecture", "llama">,
    #lowbit.kv<"llama.block_count", #lowbit.model_key>], lowbit.model = #lowbit.model<"llama", {block_count = 1 : ui32}>} {
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<"m", offset = 0, size = 262144> {lowbit.sensitivity = {q2_k = 10.0 : f64, q4_k = 1.0 : f64, q8_0 = 0.01 : f64}, role = #lowbit.role<attn_q, layer = 0>}
lowbit.global_weight @blk.0.attn_norm.weight : !lowbit.qtensor<256 : f32> = #lowbit.external<"m", offset = 0, size = 1024> {role = #lowbit.role<attn_norm, layer = 0>}
lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<256x256 : f32> = #lowbit.external<"m", offset = 0, size = 262144> {lowbit.sensitivity = {q2_k = 1.0 : f64, q4_k = 0.1 : f64, q8_0 = 0.001 : f64}, role = #lowbit.role<ffn_up, layer = 0>}
}

// The sensitive weight gets the bits; the sensitivities are consumed; the
// file type is that of the format holding most weights (a tie: the first in
// the format table, q8_0).
// ROOMY: warning: the allocation fills 98.07% of the budget
// ROOMY: lowbit.allocation = {budget = 110000 : i64, damage = 1.100000e-01 : f64, elements = 131328 : i64, method = "exact", predicted_bytes = 107872 : i64}
// ROOMY-SAME: #lowbit.kv<"general.quantization_version", 2 : ui32>, #lowbit.kv<"general.file_type", 7 : ui32>]
// ROOMY: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}
// ROOMY: @blk.0.attn_norm.weight {{.*}} = #lowbit.external<"m", offset = 0, size = 1024>{{( {role = #lowbit.role<[^>]*>})?$}}
// ROOMY: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}

// MIDDLE: predicted_bytes = 75104
// MIDDLE: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// MIDDLE: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}

// TIGHT: predicted_bytes = 59744
// TIGHT: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q4_k>{{[,}]}}
// TIGHT: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}

// 4.6 bits per weight of 131328 weights: 75513 bytes.
// BPW: lowbit.allocation = {budget = 75513 : i64, damage = 1.100000e+00 : f64, elements = 131328 : i64, method = "lagrangian", predicted_bytes = 75104 : i64}

// A pinned weight is left out of the search; the rest fills the budget.
// PIN: budget = 108345
// PIN: @blk.0.attn_q.weight {{.*}} {lowbit.target = #lowbit.format<q2_k>{{[,}]}}
// PIN: @blk.0.ffn_up.weight {{.*}} {lowbit.target = #lowbit.format<q8_0>{{[,}]}}

// -----

// A weight already in its chosen format keeps no lowbit.target (a stale one
// from an earlier choice goes).
module attributes {lowbit.metadata = [#lowbit.kv<"general.architecture", "llama">], lowbit.model = #lowbit.model<"llama", {}>} {
lowbit.global_weight @blk.0.ffn_down.weight : !lowbit.qtensor<256x256 : q4_k> = #lowbit.external<"m", offset = 0, size = 36864> {lowbit.sensitivity = {q4_k = 1.0 : f64, q8_0 = 2.0 : f64}, lowbit.target = #lowbit.format<q8_0>, role = #lowbit.role<ffn_down, layer = 0>}
}
// TIGHT: predicted_bytes = 37088
// TIGHT: lowbit.global_weight @blk.0.ffn_down.weight : !lowbit.qtensor<256x256 : q4_k> = #lowbit.external<"m", offset = 0, size = 36864>{{( {role = #lowbit.role<[^>]*>})?$}}
