// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v3" %s | FileCheck %s
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=aarch64" --lowbit-isolate-kernels %s | FileCheck --check-prefix=ISOLATED %s

// The lattice i-quants get kernels (Q8_K activations) that read their grid
// and ggml's sign table from constants of the kernel module; IQ1_S and
// IQ1_M share one grid, emitted once.
// CHECK-DAG: memref.global "private" constant @lb_grid_iq1s : memref<2048xi64> = dense<"0xFFFFFFFFFFFFFFFF01FFFFFFFFFFFFFF{{[0-9A-F]+}}"> {alignment = 64 : i64, lowbit.kernel_data}
// CHECK-DAG: memref.global "private" constant @lb_iq2_signs : memref<128xi8> = dense<"0x00818203840506878809{{[0-9A-F]+}}"> {alignment = 64 : i64, lowbit.kernel_data}
// CHECK-DAG: memref.global "private" constant @lb_grid_iq2xxs : memref<256xi64>
// CHECK-DAG: memref.global "private" constant @lb_grid_iq3s : memref<512xi32>
// CHECK-NOT: memref.global "private" constant @lb_grid_iq1s
// CHECK-LABEL: func.func @layer
// CHECK: lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @lb_mm_iq2_xxs_32x256_r1}
// CHECK: lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @lb_mm_iq1_m_32x256_r1}
// CHECK: lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @lb_mm_iq1_s_32x256_r1}
// CHECK: lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @lb_mm_iq3_s_32x256_r1}
// CHECK-NOT: lowbit.kernel_fallback
// CHECK-LABEL: func.func @lb_mm_iq2_xxs_32x256_r1
// CHECK: memref.get_global @lb_grid_iq2xxs : memref<256xi64>
// CHECK: memref.get_global @lb_iq2_signs : memref<128xi8>
// CHECK: llvm.call_intrinsic "llvm.x86.avx2.psign.b"

// After isolation only the kernels and their constants are left.
// ISOLATED-NOT: func.func @layer
// ISOLATED-DAG: memref.global "private" constant @lb_grid_iq1s
// ISOLATED-DAG: func.func @lb_mm_iq1_m_32x256_r1
// ISOLATED-DAG: arm_neon.intr.sdot
func.func @layer(%x: tensor<?x256xf32>, %w: !lowbit.qtensor<32x256 : iq2_xxs>,
                 %u: !lowbit.qtensor<32x256 : iq1_m>,
                 %s: !lowbit.qtensor<32x256 : iq1_s>,
                 %t: !lowbit.qtensor<32x256 : iq3_s>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %a = lowbit.matmul %x, %w : tensor<?x256xf32>, !lowbit.qtensor<32x256 : iq2_xxs> -> tensor<?x32xf32>
  %b = lowbit.matmul %x, %u : tensor<?x256xf32>, !lowbit.qtensor<32x256 : iq1_m> -> tensor<?x32xf32>
  %c = lowbit.matmul %x, %s : tensor<?x256xf32>, !lowbit.qtensor<32x256 : iq1_s> -> tensor<?x32xf32>
  %d = lowbit.matmul %x, %t : tensor<?x256xf32>, !lowbit.qtensor<32x256 : iq3_s> -> tensor<?x32xf32>
  return %a, %b, %c, %d : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}
