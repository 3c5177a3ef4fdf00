// The one-token paths: Q4_0 over whole 8-row groups (a vphaddw tree on
// AVX2; 512-bit vpdpbusd over word-permuted rows on AVX-512), and the
// K-quants on AVX-512 with two 32-weight chunks per 512-bit vector
// (vpmaddubsw, then vpdpwssd with the chunks' scales).
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v3" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s --check-prefix=V3
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v4" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s --check-prefix=V4

func.func @layer(%x: tensor<?x256xf32>,
                 %a: !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 8>>,
                 %c: !lowbit.qtensor<32x256 : q4_k, #lowbit.layout<rows = 4>>,
                 %d: !lowbit.qtensor<32x256 : q6_k, #lowbit.layout<rows = 4>>) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 8>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %c : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q4_k, #lowbit.layout<rows = 4>> -> tensor<?x32xf32>
  %2 = lowbit.matmul %x, %d : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q6_k, #lowbit.layout<rows = 4>> -> tensor<?x32xf32>
  return
}

// V3-LABEL: {{^}}lb_mm_q4_0_64x256_r8:
// V3:       vphaddw
// V3:       vpmaddwd
// V3:       vfmadd

// V4-LABEL: {{^}}lb_mm_q4_0_64x256_r8:
// V4:       vpermt2w
// V4:       vpdpbusd %zmm
// V4:       vpermt2d
// V4:       vfmadd
// V4-LABEL: {{^}}lb_mm_q4_k_32x256_r4:
// V4:       vpmaddubsw %zmm
// V4:       vpdpwssd %zmm
// V4-LABEL: {{^}}lb_mm_q6_k_32x256_r4:
// V4:       vpmaddubsw %zmm
// V4:       vpdpwssd %zmm
