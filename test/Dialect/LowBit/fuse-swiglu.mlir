// RUN: lowbit-opt %s --lowbit-fuse-swiglu | FileCheck %s

// CHECK-LABEL: func.func @swiglu
// CHECK-SAME:  (%[[G:[^:]*]]: tensor<?x8xf32>, %[[U:[^:]*]]: tensor<?x8xf32>)
// CHECK-NEXT:  %[[H:.*]] = lowbit.swiglu %[[G]], %[[U]] : tensor<?x8xf32>
// CHECK-NEXT:  return %[[H]]
func.func @swiglu(%g: tensor<?x8xf32>, %u: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = lowbit.silu %g : tensor<?x8xf32>
  %h = lowbit.mul %s, %u : tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// Either operand order.
// CHECK-LABEL: func.func @swapped
// CHECK-SAME:  (%[[G:[^:]*]]: tensor<?x8xf32>, %[[U:[^:]*]]: tensor<?x8xf32>)
// CHECK-NEXT:  lowbit.swiglu %[[G]], %[[U]]
func.func @swapped(%g: tensor<?x8xf32>, %u: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = lowbit.silu %g : tensor<?x8xf32>
  %h = lowbit.mul %u, %s : tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// The silu is used elsewhere: fusing would compute it twice.
// CHECK-LABEL: func.func @shared
// CHECK:       lowbit.silu
// CHECK:       lowbit.mul
// CHECK-NOT:   lowbit.swiglu
func.func @shared(%g: tensor<?x8xf32>, %u: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %s = lowbit.silu %g : tensor<?x8xf32>
  %h = lowbit.mul %s, %u : tensor<?x8xf32>
  return %h, %s : tensor<?x8xf32>, tensor<?x8xf32>
}

// No silu: a plain product stays.
// CHECK-LABEL: func.func @plain
// CHECK:       lowbit.mul
// CHECK-NOT:   lowbit.swiglu
func.func @plain(%g: tensor<?x8xf32>, %u: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %h = lowbit.mul %g, %u : tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}
