// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits 2>&1 | FileCheck %s --check-prefix=NOTARGET
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=4 target-size=1MiB" 2>&1 | FileCheck %s --check-prefix=BOTH
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-size=3.2G" 2>&1 | FileCheck %s --check-prefix=UNIT
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=1" 2>&1 | FileCheck %s --check-prefix=SMALL
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=5 tensor-type=(=q8_0" 2>&1 | FileCheck %s --check-prefix=REGEX
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=5 tensor-type=attn=q4_k" 2>&1 | FileCheck %s --check-prefix=PINFIT
// RUN: not lowbit-opt %s --split-input-file --lowbit-allocate-bits="target-bpw=5 method=greedy" 2>&1 | FileCheck %s --check-prefix=METHOD

// NOTARGET: error: lowbit-allocate-bits needs one of target-bpw and target-size
// BOTH: error: lowbit-allocate-bits needs one of target-bpw and target-size
// UNIT: error: target-size: unknown unit 'G' in size '3.2G'
// SMALL: error: the budget of 4 bytes (1.000 bits per weight) is below the smallest file the candidate formats allow: {{[0-9]+}} bytes
// REGEX: error: invalid --tensor-type regex '('
// PINFIT: error: tensor 'blk.0.attn_q.weight' cannot be stored as q4_k (--tensor-type 'attn=q4_k'): its row length 32 is not a multiple of the block size 256
// METHOD: error: method must be auto, exact or lagrangian, not 'greedy'
module attributes {lowbit.metadata = [#lowbit.kv<"general.architecture", "llama">]} {
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"m", offset = 0, size = 128> {lowbit.sensitivity = {q4_0 = 1.0 : f64, q8_0 = 0.5 : f64}}
}

// -----

// Sensitivities must come first, and be well-formed.
// NOTARGET: error: lowbit-allocate-bits needs one of target-bpw and target-size
// SMALL: error: no weight has a lowbit.sensitivity attribute: run lowbit-sensitivity first
module {
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"m", offset = 0, size = 128>
}

// -----

// SMALL: error: tensor 'blk.0.attn_q.weight': lowbit.sensitivity entry 'q9_0' is not a format name with a float damage
module {
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"m", offset = 0, size = 128> {lowbit.sensitivity = {q9_0 = 1.0 : f64}}
}

// -----

// SMALL: error: tensor 'blk.0.attn_q.weight': candidate q4_k does not fit its row length 32
module {
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"m", offset = 0, size = 128> {lowbit.sensitivity = {q4_k = 1.0 : f64}}
}

// -----

// An empty module (no lowbit dialect loaded by the parser) is an error, not a
// crash.
// SMALL: error: no weight has a lowbit.sensitivity attribute
module {}
