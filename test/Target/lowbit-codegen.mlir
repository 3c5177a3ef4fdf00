// The in-process path of the driver: convert-lowbit-to-kernels, the LLVM
// dialect, LLVM's O3 pipeline and the TargetMachine, without external tools.
// RUN: lowbit codegen %s --target x86-64-v3 --emit asm -o %t.s | FileCheck %s --check-prefix=TABLE
// RUN: FileCheck %s --check-prefix=V3 < %t.s
// RUN: lowbit codegen %s --target x86-64-v4 --emit asm -o - -q | FileCheck %s --check-prefix=V4
// RUN: lowbit codegen %s --target aarch64 --emit asm -o - -q | FileCheck %s --check-prefix=A64
// RUN: lowbit codegen %s --target aarch64 --emit obj -o %t.o -q
// RUN: lowbit codegen %s --target x86-64-v3 --emit so -o %t.so -q
// RUN: lowbit codegen %s --target x86-64-v3 --emit llvm -o - -q | FileCheck %s --check-prefix=LLVM
// RUN: not lowbit codegen %s --target z80 -o %t.x 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not lowbit codegen %s --target x86-64-v3 --emit exe -o %t.x 2>&1 | FileCheck %s --check-prefix=KIND

// TABLE: target x86-64-v3 (x86_64-unknown-linux-gnu, x86-64-v3), kernel ABI v3: 2 weights on x86-64-v3 kernels, 1 fall-backs
// TABLE-NEXT: blk.0.attn_q.weight q4_0 64x256 rows=4 lb_mm_q4_0_64x256_r4 lb_quant_q8_0 avx2-maddubs
// TABLE-NEXT: blk.0.ffn_down.weight q4_k 256x512 rows=2 lb_mm_q4_k_256x512_r2 lb_quant_q8_k avx2-maddubs

// V3-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// V3:       vpmaddubsw
// V3:       vpmaddwd
// V3:       vfmadd
// V3-LABEL: {{^}}lb_mm_q4_k_256x512_r2:
// V3:       vpmaddubsw

// V4-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// V4:       vpdpbusd

// A64-LABEL: {{^}}lb_mm_q4_0_64x256_r4:
// A64:       sdot
// A64-LABEL: {{^}}lb_mm_q4_k_256x512_r2:
// A64:       sdot

// LLVM: target triple = "x86_64-unknown-linux-gnu"
// LLVM: @lb_kernel_table = {{.*}}constant [6 x { ptr, ptr }]
// LLVM: define void @lb_mm_q4_0_64x256_r4(ptr {{.*}}, ptr {{.*}}, ptr {{.*}}, ptr {{.*}}, i64 {{.*}}, i64 {{.*}}, i64 {{.*}}, i64 {{.*}}, i64 {{.*}})
// LLVM: @llvm.x86.avx2.pmadd.ub.sw

// UNKNOWN: error: unknown target 'z80'; known targets: host, aarch64, x86-64-v3, x86-64-v4
// KIND: error: --emit must be so, obj, asm or llvm, got 'exe'

lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>> = #lowbit.external<"/nonexistent", offset = 0, size = 9216>
lowbit.global_weight @blk.0.ffn_down.weight : !lowbit.qtensor<256x512 : q4_k, #lowbit.layout<rows = 2>> = #lowbit.external<"/nonexistent", offset = 0, size = 73728>
lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<512x256 : tq2_0> = #lowbit.external<"/nonexistent", offset = 0, size = 33792>
func.func @matmuls(%x: tensor<?x256xf32>) -> tensor<?x256xf32> {
  %q = lowbit.weight @blk.0.attn_q.weight : !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>
  %up = lowbit.weight @blk.0.ffn_up.weight : !lowbit.qtensor<512x256 : tq2_0>
  %down = lowbit.weight @blk.0.ffn_down.weight : !lowbit.qtensor<256x512 : q4_k, #lowbit.layout<rows = 2>>
  %0 = lowbit.matmul %x, %q : tensor<?x256xf32>, !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>> -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %up : tensor<?x256xf32>, !lowbit.qtensor<512x256 : tq2_0> -> tensor<?x512xf32>
  %2 = lowbit.matmul %1, %down : tensor<?x512xf32>, !lowbit.qtensor<256x512 : q4_k, #lowbit.layout<rows = 2>> -> tensor<?x256xf32>
  return %2 : tensor<?x256xf32>
}
