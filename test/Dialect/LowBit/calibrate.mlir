// The tiny llama fixture, imported, calibrated on a short text in chunks of
// 16 tokens: an imatrix llama.cpp reads, a calibration state with Hessians
// accumulated within a 20 KiB budget (several passes over the text).
// RUN: rm -rf %t && mkdir -p %t
// RUN: lowbit-gguf make-fixture tiny-llama -o %t/tiny.gguf
// RUN: lowbit import %t/tiny.gguf -o %t/tiny.mlir
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt ctx=16 imatrix-out=%t/im.gguf state=%t/state.gguf hessians=true hessian-budget=20KiB" | FileCheck %s
// CHECK: module attributes {lowbit.calibration = {chunks = 8 : i64, imatrix = "{{.*}}im.gguf", passes = 3 : i64, ppl = {{.*}} : f64, seconds = {{.*}} : f64, state = "{{.*}}state.gguf", tokens = 128 : i64}
// CHECK: lowbit.global_weight @token_embd.weight : !lowbit.qtensor<64x32 : f32>

// The imatrix: every matmul weight (output.weight too), counts in tokens.
// RUN: lowbit imatrix show %t/im.gguf | FileCheck --check-prefix=SHOW %s
// SHOW: format: gguf
// SHOW: datasets: {{.*}}tiny-calib.txt
// SHOW: chunks: 8
// SHOW: chunk size: 16
// SHOW: entries: 15
// SHOW: blk.0.attn_k.weight 32 1 128
// SHOW: blk.1.ffn_down.weight 64 1 128
// SHOW: output.weight 32 1 128

// The state is an imatrix too, and converts to llama.cpp's legacy format.
// RUN: lowbit imatrix show %t/state.gguf | FileCheck --check-prefix=STATE %s
// STATE: entries: 15
// RUN: lowbit imatrix convert %t/im.gguf -o %t/im.dat
// RUN: lowbit imatrix show %t/im.dat | FileCheck --check-prefix=DAT %s
// DAT: format: legacy
// DAT: entries: 15

// Calibration text sampled from the model itself (seeded: same file twice).
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=self self-tokens=64 ctx=16 imatrix-out=%t/self1.gguf" -o /dev/null
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=self self-tokens=64 ctx=16 imatrix-out=%t/self2.gguf" -o /dev/null
// RUN: cmp %t/self1.gguf %t/self2.gguf
// RUN: lowbit imatrix show %t/self1.gguf | FileCheck --check-prefix=SELF %s
// SELF: datasets: self
// SELF: chunks: 4

// Bad input: a clear error naming the file, nothing written.
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%t/missing.txt imatrix-out=%t/bad.gguf" 2>&1 | FileCheck --check-prefix=MISSING %s
// MISSING: error: {{.*}}missing.txt: cannot open the calibration text
// RUN: echo "  " > %t/empty.txt
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%t/empty.txt imatrix-out=%t/bad.gguf" 2>&1 | FileCheck --check-prefix=EMPTY %s
// EMPTY: error: {{.*}}empty.txt: the calibration text is empty
// RUN: echo "the cat" > %t/short.txt
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%t/short.txt ctx=16 imatrix-out=%t/bad.gguf" 2>&1 | FileCheck --check-prefix=SHORT %s
// SHORT: error: {{.*}}short.txt: the calibration text has 8 tokens, fewer than one chunk of 16
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt" 2>&1 | FileCheck --check-prefix=NOOUT %s
// NOOUT: error: lowbit-calibrate needs imatrix-out=FILE and/or state=FILE
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt ctx=16 state=%t/bad.gguf hessians=true hessian-budget=1KiB" 2>&1 | FileCheck --check-prefix=BUDGET %s
// BUDGET: error: {{.*}}tiny-calib.txt: the Hessian of blk.0.attn_q.weight alone needs 4096 bytes, more than the Hessian budget of 1024 bytes
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt imatrix-out=%t/bad.gguf hessian-budget=lots" 2>&1 | FileCheck --check-prefix=SIZE %s
// SIZE: error: hessian-budget: bad size 'lots'
// RUN: not ls %t/bad.gguf

// A module without a model cannot be run.
// RUN: not lowbit-opt %s --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt imatrix-out=%t/bad.gguf" 2>&1 | FileCheck --check-prefix=NOMODEL %s
// NOMODEL: error: cannot run the model: the module has no func.func @forward to run
module {}
