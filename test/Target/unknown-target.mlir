// RUN: not lowbit-opt --convert-lowbit-to-kernels="target=z80" %s 2>&1 | FileCheck %s
// CHECK: error: unknown target 'z80'; known targets: host, aarch64, x86-64-v3, x86-64-v4
func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<8x32 : q4_0>) {
  %0 = lowbit.matmul %x, %w : tensor<?x32xf32>, !lowbit.qtensor<8x32 : q4_0> -> tensor<?x8xf32>
  return
}
