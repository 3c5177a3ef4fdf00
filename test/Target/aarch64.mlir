// AArch64 NEON + dotprod: sdot (s8 x s8 -> s32 over groups of four) for every
// quantized format, fmla for the float accumulators.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=aarch64" %s | FileCheck %s --check-prefix=IR
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=aarch64" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s

func.func @layer(%x: tensor<?x256xf32>,
                 %a: !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>,
                 %c: !lowbit.qtensor<64x256 : q4_k, #lowbit.layout<rows = 2>>,
                 %e: !lowbit.qtensor<16x256 : f32>) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %c : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_k, #lowbit.layout<rows = 2>> -> tensor<?x64xf32>
  %2 = lowbit.matmul %x, %e : tensor<?x256xf32>, !lowbit.qtensor<16x256 : f32> -> tensor<?x16xf32>
  return
}

// IR:     module attributes {lowbit.codegen_target = "aarch64"}
// IR:     func.func @lb_mm_q4_0_64x256_r4(
// IR-SAME:    lowbit.dot_path = "neon-sdot"
// IR-SAME:    target_features = #llvm.target_features<["+neon", "+dotprod"]>
// IR:       arm_neon.intr.sdot {{.*}} : vector<16xi8>, vector<16xi8> to vector<4xi32>
// IR-NOT:   llvm.call_intrinsic

// CHECK-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// CHECK:       sdot v{{[0-9]+}}.4s, v{{[0-9]+}}.16b, v{{[0-9]+}}.16b
// CHECK:       fmla
// CHECK-LABEL: {{^}}lb_quant_q8_0:
// CHECK-LABEL: {{^}}lb_abi_version:
// CHECK-LABEL: {{^}}lb_mm_q4_k_64x256_r2:
// CHECK:       sdot v{{[0-9]+}}.4s
// CHECK-LABEL: {{^}}lb_quant_q8_k:
// CHECK-LABEL: {{^}}lb_mm_f32_16x256_r1:
// CHECK:       fmla
// CHECK-NOT:   sdot
// CHECK-LABEL: {{^}}lb_kernel_table:
