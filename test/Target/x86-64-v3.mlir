// The AVX2 kernels: vpmaddubsw (u8 x s8 pairs) + vpmaddwd (sums / scales) for
// the integer dot products, vfmadd for the float accumulators, F16C for f16
// scales and weights; no AVX-512.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v3" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s

func.func @layer(%x: tensor<?x256xf32>, %x2: tensor<?x512xf32>,
                 %a: !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>,
                 %b: !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>>,
                 %c: !lowbit.qtensor<32x512 : q4_k, #lowbit.layout<rows = 2>>,
                 %d: !lowbit.qtensor<32x512 : q6_k, #lowbit.layout<rows = 2>>,
                 %e: !lowbit.qtensor<16x256 : f16>) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %b : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %2 = lowbit.matmul %x2, %c : tensor<?x512xf32>, !lowbit.qtensor<32x512 : q4_k, #lowbit.layout<rows = 2>> -> tensor<?x32xf32>
  %3 = lowbit.matmul %x2, %d : tensor<?x512xf32>, !lowbit.qtensor<32x512 : q6_k, #lowbit.layout<rows = 2>> -> tensor<?x32xf32>
  %4 = lowbit.matmul %x, %e : tensor<?x256xf32>, !lowbit.qtensor<16x256 : f16> -> tensor<?x16xf32>
  return
}

// Functions come in the order the matmuls need them.
// CHECK-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// CHECK-NOT:   zmm
// CHECK:       vpmaddubsw
// CHECK:       vpmaddwd
// CHECK:       vcvtdq2ps
// CHECK:       vfmadd
// CHECK-NOT:   vpdpbusd

// CHECK-LABEL: {{^}}lb_quant_q8_0:
// CHECK:       vcvtps2ph

// CHECK-LABEL: {{^}}lb_abi_version:
// CHECK:       movl $3, %eax

// Q8_0 weights are signed: |w| times x with the sign of w.
// CHECK-LABEL: {{^}}lb_mm_q8_0_64x256_r4:
// CHECK:       vpabsb
// CHECK:       vpsignb
// CHECK:       vpmaddubsw
// CHECK:       vpmaddwd

// K-quants: sub-block scales through vpmaddwd, minimums against the Q8_K sums.
// CHECK-LABEL: {{^}}lb_mm_q4_k_32x512_r2:
// CHECK:       vpmaddubsw
// CHECK:       vpmaddwd
// CHECK:       vfmadd

// CHECK-LABEL: {{^}}lb_quant_q8_k:
// CHECK-LABEL: {{^}}lb_mm_q6_k_32x512_r2:
// CHECK:       vpmaddubsw
// CHECK:       vpmaddwd

// CHECK-LABEL: {{^}}lb_mm_f16_16x256_r1:
// CHECK:       vcvtph2ps
// CHECK:       vfmadd

// The table a static binary finds kernels through.
// CHECK-LABEL: {{^}}lb_kernel_table:
// CHECK-NEXT:  .quad .Llb_kernel_name.lb_mm_q4_0_64x256_r4
// CHECK-NEXT:  .quad lb_mm_q4_0_64x256_r4
