// Sensitivities of the tiny llama fixture (rows of 32: only 32-element block
// formats apply), from its calibration state.
// RUN: rm -rf %t && mkdir -p %t
// RUN: lowbit-gguf make-fixture tiny-llama -o %t/tiny.gguf
// RUN: lowbit import %t/tiny.gguf -o %t/tiny.mlir
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt ctx=16 state=%t/state.gguf" -o %t/calibrated.mlir
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="state=%t/sens.json" | FileCheck %s

// Candidates the row length fits, each with its predicted damage; norms get
// none. Fewer bits, more damage.
// CHECK-LABEL: module attributes
// CHECK-SAME: lowbit.sensitivity_report = {computed = 112 : i64, kld_positions = 0 : i64, kld_seconds = 0.000000e+00 : f64, measure = "wmse", reused = 0 : i64, seconds = {{.*}} : f64}
// CHECK: @token_embd.weight {{.*}} {lowbit.sensitivity = {f16 = {{.*}} : f64, iq4_nl = {{.*}} : f64, q4_0 = {{.*}} : f64, q4_1 = {{.*}} : f64, q5_0 = {{.*}} : f64, q5_1 = {{.*}} : f64, q8_0 = {{.*}} : f64}{{[,}]}}
// CHECK: @blk.0.attn_q.weight {{.*}} {lowbit.sensitivity = {f16 = {{.*}} : f64, {{.*}} q8_0 = {{.*}} : f64}{{[,}]}}
// CHECK: @blk.0.attn_norm.weight : !lowbit.qtensor<32 : f32> = #lowbit.external<{{[^>]*}}>{{( {role = #lowbit.role<[^>]*>})?$}}
// CHECK: @output.weight {{.*}} {lowbit.sensitivity =

// The saved results are reused: nothing is computed the second time.
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="state=%t/sens.json" | FileCheck --check-prefix=REUSE %s
// REUSE: lowbit.sensitivity_report = {computed = 0 : i64, {{.*}} reused = 112 : i64

// An interrupted analysis resumes: what was saved is not measured again.
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="state=%t/partial.json formats=q4_0,q8_0" -o /dev/null
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="state=%t/partial.json" | FileCheck --check-prefix=RESUME %s
// RESUME: lowbit.sensitivity_report = {computed = 80 : i64, {{.*}} reused = 32 : i64

// Restricted candidates; measured KL divergence (and its cost); the gain
// mode measures one format per tensor and scales the prediction.
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q4_0,q8_0 measure=kld kld-chunks=2" | FileCheck --check-prefix=KLD %s
// KLD: lowbit.sensitivity_report = {computed = 32 : i64, kld_positions = 14 : i64, kld_seconds = {{.*}}, measure = "kld", reused = 0 : i64
// KLD: @blk.0.attn_q.weight {{.*}} {lowbit.sensitivity = {q4_0 = {{.*}} : f64, q8_0 = {{.*}} : f64}{{[,}]}}
// RUN: lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q4_0,q8_0 measure=gain kld-chunks=2" | FileCheck --check-prefix=GAIN %s
// GAIN: measure = "gain"
// GAIN: @blk.0.attn_q.weight {{.*}} {lowbit.sensitivity = {q4_0 = {{.*}} : f64, q8_0 = {{.*}} : f64}{{[,}]}}

// method=gptq measures the KL divergence with the tensor quantized by GPTQ
// (Hessians from a state calibrated with them); its results are kept beside
// the plain-rounding ones, so each method re-measures only its own.
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt ctx=16 state=%t/hstate.gguf hessians=true" -o /dev/null
// RUN: lowbit-opt %t/tiny.mlir --lowbit-sensitivity="statistics=%t/hstate.gguf formats=q4_0,q8_0 measure=kld kld-chunks=2 state=%t/methods.json" -o /dev/null
// RUN: lowbit-opt %t/tiny.mlir --lowbit-sensitivity="statistics=%t/hstate.gguf formats=q4_0,q8_0 measure=kld kld-chunks=2 method=gptq state=%t/methods.json" | FileCheck --check-prefix=GPTQ %s
// GPTQ: lowbit.sensitivity_report = {computed = 32 : i64
// RUN: lowbit-opt %t/tiny.mlir --lowbit-sensitivity="statistics=%t/hstate.gguf formats=q4_0,q8_0 measure=kld kld-chunks=2 method=gptq state=%t/methods.json" | FileCheck --check-prefix=GPTQ-AGAIN %s
// GPTQ-AGAIN: lowbit.sensitivity_report = {computed = 0 : i64
// RUN: FileCheck --check-prefix=GPTQ-JSON %s < %t/methods.json
// GPTQ-JSON: "kld":
// GPTQ-JSON: "kld_gptq":
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q4_0 measure=kld kld-chunks=2 method=gptq" 2>&1 | FileCheck --check-prefix=GPTQ-NOFILE %s
// GPTQ-NOFILE: error: method=gptq needs a calibration state with Hessians (hessians=FILE)
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q4_0 measure=kld kld-chunks=2 method=gptq hessians=%t/state.gguf" 2>&1 | FileCheck --check-prefix=GPTQ-NOH %s
// GPTQ-NOH: error: {{.*}}state.gguf: no Hessians
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q4_0 measure=kld method=awq" 2>&1 | FileCheck --check-prefix=GPTQ-METHOD %s
// GPTQ-METHOD: error: method must be rtn or gptq, not 'awq'

// Without statistics: plain squared error.
// RUN: lowbit-opt %t/tiny.mlir --lowbit-sensitivity="no-importance=true formats=q8_0" | FileCheck --check-prefix=PLAIN %s
// PLAIN: @output.weight {{.*}} {lowbit.sensitivity = {q8_0 = {{.*}} : f64}{{[,}]}}

// A llama.cpp imatrix works as statistics too.
// RUN: lowbit-opt %t/tiny.mlir --lowbit-calibrate="calib=%S/Inputs/tiny-calib.txt ctx=16 imatrix-out=%t/im.gguf" -o /dev/null
// RUN: lowbit imatrix convert %t/im.gguf -o %t/im.dat
// RUN: lowbit-opt %t/tiny.mlir --lowbit-sensitivity="statistics=%t/im.dat formats=q5_0" | FileCheck --check-prefix=DAT %s
// DAT: @blk.1.ffn_down.weight {{.*}} {lowbit.sensitivity = {q5_0 = {{.*}} : f64}{{[,}]}}

// Errors: no statistics, unknown format, a state of another model, a
// corrupt state, an imatrix of another shape, kld without tokens.
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-sensitivity 2>&1 | FileCheck --check-prefix=NOSTATS %s
// NOSTATS: error: no activation statistics: pass statistics=FILE
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="formats=q9_k" 2>&1 | FileCheck --check-prefix=FORMAT %s
// FORMAT: error: unknown format 'q9_k' in formats
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="measure=mse" 2>&1 | FileCheck --check-prefix=MEASURE %s
// MEASURE: error: measure must be wmse, gain or kld, not 'mse'
// RUN: lowbit-gguf make-fixture tiny-llama-tied -o %t/tied.gguf
// RUN: lowbit import %t/tied.gguf -o %t/tied.mlir
// RUN: not lowbit-opt %t/tied.mlir --lowbit-sensitivity="statistics=%t/state.gguf" 2>&1 | FileCheck --check-prefix=OTHER %s
// OTHER: error: {{.*}}state.gguf: the calibration state was written for another model (fingerprint {{[0-9a-f]+}}, this model is {{[0-9a-f]+}})
// RUN: not lowbit-opt %t/tied.mlir --lowbit-sensitivity="no-importance=true state=%t/sens.json" 2>&1 | FileCheck --check-prefix=OTHERSENS %s
// OTHERSENS: error: {{.*}}sens.json: the sensitivity state was written for another model
// RUN: echo '{"format": "lowbit-sensitivity", "version": 1}' > %t/corrupt.json
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="state=%t/corrupt.json" 2>&1 | FileCheck --check-prefix=CORRUPT %s
// CORRUPT: error: {{.*}}corrupt.json: not a valid sensitivity state file (missing model, statistics or tensors)
// RUN: not lowbit-opt %t/calibrated.mlir --lowbit-sensitivity="statistics=%t/missing.gguf" 2>&1 | FileCheck --check-prefix=MISSING %s
// MISSING: error: {{.*}}missing.gguf: cannot open
// RUN: not lowbit-opt %t/tiny.mlir --lowbit-sensitivity="no-importance=true measure=kld" 2>&1 | FileCheck --check-prefix=NOTOKENS %s
// NOTOKENS: error: measure=kld needs calibration tokens
