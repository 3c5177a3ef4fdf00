// The many-token (prompt) group paths on AVX-512 VNNI. Q4_0 over 8-row
// groups: each activation dword broadcast to the 8 rows (vpdpbusd with an
// embedded broadcast). Q4_K over its 4-row groups: a qword transpose of the
// rows' quants (lanes 2i, 2i + 1 = row i), each 8-byte activation piece
// broadcast (vpbroadcastq) into vpdpbusd, the chunk sums scaled by vpmulld,
// the minimums by vpmaddwd; the two lanes of a row are added at the end.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v4" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s
// Without a whole group (rows = 1: no layout) there is no group path.
// RUN: lowbit-opt --convert-lowbit-to-kernels="target=x86-64-v4" --lowbit-kernels-to-llvm %s \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 | FileCheck %s --check-prefix=PLAIN

func.func @layer(%x: tensor<?x256xf32>,
                 %a: !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 8>>,
                 %c: !lowbit.qtensor<32x256 : q4_k, #lowbit.layout<rows = 4>>,
                 %d: !lowbit.qtensor<32x256 : q4_k>,
                 %e: !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>>) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 8>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %c : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q4_k, #lowbit.layout<rows = 4>> -> tensor<?x32xf32>
  %2 = lowbit.matmul %x, %d : tensor<?x256xf32>, !lowbit.qtensor<32x256 : q4_k> -> tensor<?x32xf32>
  %3 = lowbit.matmul %x, %e : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q8_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  return
}

// CHECK-LABEL: {{^}}lb_mm_q4_0_64x256_r8:
// CHECK:       vpdpbusd {{.*}}{1to8}, %ymm
// CHECK-LABEL: {{^}}lb_mm_q4_k_32x256_r4:
// CHECK:       vpbroadcastq
// CHECK:       vpdpbusd %ymm
// CHECK:       vpmulld %ymm
// CHECK:       vpmaddwd
// CHECK:       vfmadd
// CHECK-LABEL: {{^}}lb_mm_q4_k_32x256_r1:
// CHECK-LABEL: {{^}}lb_mm_q8_0_64x256_r4:
// CHECK:       vpdpbusd {{.*}}{1to8}, %ymm

// PLAIN-LABEL: {{^}}lb_mm_q4_k_32x256_r1:
// PLAIN-NOT:   vpmulld
// PLAIN-LABEL: {{^}}lb_mm_q8_0_64x256_r4:
