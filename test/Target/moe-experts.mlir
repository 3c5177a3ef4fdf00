// A moe_ffn's routed experts get one kernel per stacked weight, built for a
// single expert's matrix (the runtime calls it on each expert's rows), named
// in lowbit.expert_kernels in operand order with their activation
// quantizers; the router and the shared expert are not experts.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v3" %s | FileCheck %s
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v3" %s 2>&1 >/dev/null | FileCheck --check-prefix=WARN %s

// CHECK-LABEL: func.func @moe
// CHECK: lowbit.moe_ffn {{.*}} {lowbit.expert_act_quantizers = ["lb_quant_q8_k", "lb_quant_q8_k", "lb_quant_q8_0"], lowbit.expert_kernels = ["lb_mm_q4_k_512x256_r1", "lb_mm_q4_k_512x256_r1", "lb_mm_q8_0_256x512_r1"]
func.func @moe(%x: tensor<?x256xf32>, %r: tensor<4x256xf32>,
               %g: !lowbit.qtensor<4x512x256 : q4_k>,
               %d: !lowbit.qtensor<4x256x512 : q8_0>) -> tensor<?x256xf32> {
  %y = lowbit.moe_ffn %x, %r, %g, %g, %d {top_k = 2 : i64, normalize = true} : tensor<?x256xf32>, tensor<4x256xf32>, !lowbit.qtensor<4x512x256 : q4_k>, !lowbit.qtensor<4x512x256 : q4_k>, !lowbit.qtensor<4x256x512 : q8_0> -> tensor<?x256xf32>
  return %y : tensor<?x256xf32>
}

// An expert weight in a format without a kernel on the target stays on the
// runtime's f32 decoding, with a warning naming it.
// CHECK-LABEL: func.func @fallback
// CHECK: lowbit.expert_kernels = ["", "", ""]
// WARN: warning: slow fall-back for the experts' tq1_0 weight: no kernel for tq1_0
func.func @fallback(%x: tensor<?x256xf32>, %r: tensor<4x256xf32>,
                    %g: !lowbit.qtensor<4x512x256 : tq1_0>,
                    %d: !lowbit.qtensor<4x256x512 : tq1_0>) -> tensor<?x256xf32> {
  %y = lowbit.moe_ffn %x, %r, %g, %g, %d {top_k = 2 : i64, normalize = true} : tensor<?x256xf32>, tensor<4x256xf32>, !lowbit.qtensor<4x512x256 : tq1_0>, !lowbit.qtensor<4x512x256 : tq1_0>, !lowbit.qtensor<4x256x512 : tq1_0> -> tensor<?x256xf32>
  return %y : tensor<?x256xf32>
}
