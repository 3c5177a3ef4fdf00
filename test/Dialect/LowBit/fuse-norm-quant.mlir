// RUN: lowbit-opt %s --split-input-file --lowbit-fuse-norm-quant="target=x86-64-v3" --verify-diagnostics | FileCheck %s

lowbit.global_weight @norm : !lowbit.qtensor<64 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 256>
lowbit.global_weight @wq : !lowbit.qtensor<64x64 : q4_0> = #lowbit.external<"/nonexistent", offset = 0, size = 2304>
lowbit.global_weight @wk : !lowbit.qtensor<32x64 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 2176>
lowbit.global_weight @wf : !lowbit.qtensor<32x64 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 8192>

// Q4_0 and Q8_0 kernels both take q8_0 activations on x86-64-v3: one
// quantization for both; the f32 matmul keeps the f32 result.
// CHECK-LABEL: func.func @attn_norm
// CHECK-SAME:  (%[[X:[^:]*]]: tensor<?x64xf32>)
// CHECK:       %[[N:.*]] = lowbit.weight @norm
// CHECK:       %[[Y:.*]], %[[YQ:.*]] = lowbit.rms_norm_quant %[[X]], %[[N]] {act_format = #lowbit.format<q8_0>, epsilon = 9.99999974E-6 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>, tensor<?x68xi8>
// CHECK:       lowbit.qmatmul %[[YQ]], %{{.*}} {act_format = #lowbit.format<q8_0>} : tensor<?x68xi8>, <64x64 : q4_0> -> tensor<?x64xf32>
// CHECK:       lowbit.qmatmul %[[YQ]], %{{.*}} {act_format = #lowbit.format<q8_0>} : tensor<?x68xi8>, <32x64 : q8_0> -> tensor<?x32xf32>
// CHECK:       lowbit.matmul %[[Y]], %{{.*}} : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f32>
// CHECK-NOT:   lowbit.rms_norm %
func.func @attn_norm(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %n = lowbit.weight @norm : !lowbit.qtensor<64 : f32>
  %y = lowbit.rms_norm %x, %n {epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>
  %wq = lowbit.weight @wq : !lowbit.qtensor<64x64 : q4_0>
  %q = lowbit.matmul %y, %wq : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q4_0> -> tensor<?x64xf32>
  %wk = lowbit.weight @wk : !lowbit.qtensor<32x64 : q8_0>
  %k = lowbit.matmul %y, %wk : tensor<?x64xf32>, !lowbit.qtensor<32x64 : q8_0> -> tensor<?x32xf32>
  %wf = lowbit.weight @wf : !lowbit.qtensor<32x64 : f32>
  %f = lowbit.matmul %y, %wf : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f32> -> tensor<?x32xf32>
  return %q, %k, %f : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Q4_0 wants q8_0 activations, Q4_K q8_k: not fused.

lowbit.global_weight @norm : !lowbit.qtensor<256 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 1024>
lowbit.global_weight @wa : !lowbit.qtensor<32x256 : q4_0> = #lowbit.external<"/nonexistent", offset = 0, size = 4608>
lowbit.global_weight @wb : !lowbit.qtensor<32x256 : q4_k> = #lowbit.external<"/nonexistent", offset = 0, size = 4608>

// CHECK-LABEL: func.func @mixed
// CHECK:       lowbit.rms_norm %
// CHECK-NOT:   lowbit.qmatmul
func.func @mixed(%x: tensor<?x256xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %n = lowbit.weight @norm : !lowbit.qtensor<256 : f32>
  // expected-remark @+1 {{not fused with activation quantization: its matmuls need q8_0 and q8_k activations on x86-64-v3}}
  %y = lowbit.rms_norm %x, %n {epsilon = 1.0e-05 : f32} : tensor<?x256xf32>, !lowbit.qtensor<256 : f32> -> tensor<?x256xf32>
  %wa = lowbit.weight @wa : !lowbit.qtensor<32x256 : q4_0>
  %a = lowbit.matmul %y, %wa : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q4_0> -> tensor<?x32xf32>
  %wb = lowbit.weight @wb : !lowbit.qtensor<32x256 : q4_k>
  %b = lowbit.matmul %y, %wb : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q4_k> -> tensor<?x32xf32>
  return %a, %b : tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Only float matmuls follow: nothing to quantize.

lowbit.global_weight @norm : !lowbit.qtensor<64 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 256>
lowbit.global_weight @wf : !lowbit.qtensor<32x64 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 8192>

// CHECK-LABEL: func.func @float
// CHECK:       lowbit.rms_norm %
// CHECK-NOT:   rms_norm_quant
func.func @float(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %n = lowbit.weight @norm : !lowbit.qtensor<64 : f32>
  %y = lowbit.rms_norm %x, %n {epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>
  %wf = lowbit.weight @wf : !lowbit.qtensor<32x64 : f32>
  %f = lowbit.matmul %y, %wf : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f32> -> tensor<?x32xf32>
  return %f : tensor<?x32xf32>
}
