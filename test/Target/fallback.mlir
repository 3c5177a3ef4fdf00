// Weights without a kernel on the target are reported, loudly, and marked;
// the runtime decodes them to f32.
// RUN: lowbit-opt --split-input-file --verify-diagnostics --convert-lowbit-to-kernels="target=x86-64-v3" %s | FileCheck %s

// CHECK-LABEL: func.func @no_kernel
// CHECK:         lowbit.matmul {{.*}} {lowbit.kernel_fallback = "no kernel for tq1_0 in the x86-64-v3 table"}
// CHECK-NOT:     func.func @lb_mm_tq1_0
func.func @no_kernel(%x: tensor<?x256xf32>, %w: !lowbit.qtensor<8x256 : tq1_0>) {
  // expected-warning @below {{slow fall-back: no kernel for tq1_0 in the x86-64-v3 table; the runtime decodes this tq1_0 weight to f32}}
  %0 = lowbit.matmul %x, %w : tensor<?x256xf32>, !lowbit.qtensor<8x256 : tq1_0> -> tensor<?x8xf32>
  return
}

// -----

// Float weights are read row by row: an interleaved f16 layout has no kernel.
// CHECK-LABEL: func.func @interleaved_float
// CHECK:         lowbit.matmul {{.*}} {lowbit.kernel_fallback = "float weights are read row by row; no interleaved layout"}
func.func @interleaved_float(%x: tensor<?x64xf32>, %w: !lowbit.qtensor<8x64 : f16, #lowbit.layout<rows = 4>>) {
  // expected-warning @below {{slow fall-back: float weights are read row by row; no interleaved layout; the runtime decodes this f16 weight to f32}}
  %0 = lowbit.matmul %x, %w : tensor<?x64xf32>, !lowbit.qtensor<8x64 : f16, #lowbit.layout<rows = 4>> -> tensor<?x8xf32>
  return
}

// -----

// A qmatmul whose activations arrive in another block format than the
// kernel consumes.
// CHECK-LABEL: func.func @wrong_activations
// CHECK:         lowbit.qmatmul {{.*}} lowbit.kernel_fallback = "activations arrive in q8_k; the q4_0 kernel takes q8_0"
func.func @wrong_activations(%xq: tensor<?x292xi8>, %w: !lowbit.qtensor<8x256 : q4_0>) {
  // expected-warning @below {{slow fall-back: activations arrive in q8_k; the q4_0 kernel takes q8_0; the runtime decodes this q4_0 weight to f32}}
  %0 = lowbit.qmatmul %xq, %w {act_format = #lowbit.format<q8_k>} : tensor<?x292xi8>, !lowbit.qtensor<8x256 : q4_0> -> tensor<?x8xf32>
  return
}
