// RUN: lowbit-opt %s --lowbit-fuse-residual | FileCheck %s

lowbit.global_weight @wo : !lowbit.qtensor<64x64 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 4352>

// CHECK-LABEL: func.func @residual
// CHECK-SAME:  (%[[X:[^:]*]]: tensor<?x64xf32>, %[[H:[^:]*]]: tensor<?x64xf32>)
// CHECK:       %[[W:.*]] = lowbit.weight @wo
// CHECK-NEXT:  %[[Y:.*]] = lowbit.matmul_residual %[[H]], %[[W]], %[[X]] : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0>, tensor<?x64xf32> -> tensor<?x64xf32>
// CHECK-NEXT:  return %[[Y]]
func.func @residual(%x: tensor<?x64xf32>, %h: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %w = lowbit.weight @wo : !lowbit.qtensor<64x64 : q8_0>
  %o = lowbit.matmul %h, %w : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0> -> tensor<?x64xf32>
  %y = lowbit.add %x, %o : tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// Matmul on the left works too.
// CHECK-LABEL: func.func @swapped
// CHECK-SAME:  (%[[X:[^:]*]]: tensor<?x64xf32>, %[[H:[^:]*]]: tensor<?x64xf32>)
// CHECK:       lowbit.matmul_residual %[[H]], %{{.*}}, %[[X]]
func.func @swapped(%x: tensor<?x64xf32>, %h: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %w = lowbit.weight @wo : !lowbit.qtensor<64x64 : q8_0>
  %o = lowbit.matmul %h, %w : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0> -> tensor<?x64xf32>
  %y = lowbit.add %o, %x : tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// The update is needed on its own too: not fused.
// CHECK-LABEL: func.func @shared
// CHECK:       lowbit.matmul %
// CHECK:       lowbit.add
// CHECK-NOT:   lowbit.matmul_residual
func.func @shared(%x: tensor<?x64xf32>, %h: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %w = lowbit.weight @wo : !lowbit.qtensor<64x64 : q8_0>
  %o = lowbit.matmul %h, %w : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0> -> tensor<?x64xf32>
  %y = lowbit.add %x, %o : tensor<?x64xf32>
  return %y, %o : tensor<?x64xf32>, tensor<?x64xf32>
}

// A matmul with a bias is left alone.
// CHECK-LABEL: func.func @bias
// CHECK:       lowbit.matmul %{{.*}} bias
// CHECK:       lowbit.add
func.func @bias(%x: tensor<?x64xf32>, %h: tensor<?x64xf32>, %b: tensor<64xf32>) -> tensor<?x64xf32> {
  %w = lowbit.weight @wo : !lowbit.qtensor<64x64 : q8_0>
  %o = lowbit.matmul %h, %w bias %b : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q8_0>, tensor<64xf32> -> tensor<?x64xf32>
  %y = lowbit.add %x, %o : tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
