// AVX-512 VNNI: vpdpbusd (u8 x s8 -> s32, no saturation) on 256-bit vectors
// for the 32-weight blocks; Q4_0's offset of 8 rides in the accumulator the
// vpdpbusd starts from. K-quants keep vpmaddubsw + vpmaddwd, which applies
// the sub-block scale in the same instruction.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v4" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s

func.func @layer(%x: tensor<?x256xf32>,
                 %a: !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>,
                 %b: !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>>,
                 %c: !lowbit.qtensor<64x256 : q5_k, #lowbit.layout<rows = 4>>) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %b : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %2 = lowbit.matmul %x, %c : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q5_k, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  return
}

// CHECK-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// CHECK-NOT:   vpmaddubsw
// CHECK:       vpdpbusd %ymm
// CHECK-NOT:   vpmaddubsw
// CHECK:       vfmadd
// CHECK-LABEL: {{^}}lb_quant_q8_0:
// CHECK-LABEL: {{^}}lb_abi_version:

// CHECK-LABEL: {{^}}lb_mm_q8_0_64x256_r4:
// CHECK:       vpabsb
// CHECK:       vpsignb
// CHECK:       vpdpbusd %ymm

// CHECK-LABEL: {{^}}lb_mm_q5_k_64x256_r4:
// CHECK:       vpmaddubsw
// CHECK:       vpmaddwd
// CHECK-LABEL: {{^}}lb_quant_q8_k:
