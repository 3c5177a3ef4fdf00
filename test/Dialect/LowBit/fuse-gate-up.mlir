// RUN: lowbit-opt %s --split-input-file --lowbit-fuse-gate-up --verify-diagnostics | FileCheck %s

// CHECK:      lowbit.global_weight @blk.0.ffn_gate_up.weight : !lowbit.qtensor<4x2 : f32> = dense_resource<[[BLOB:[^>]+]]> : tensor<32xi8>
// CHECK-SAME: lowbit.fused_from = ["blk.0.ffn_gate.weight", "blk.0.ffn_up.weight"], lowbit.fused_rows = array<i64: 2, 2>
// CHECK-NOT:  @blk.0.ffn_gate.weight :
// CHECK-NOT:  @blk.0.ffn_up.weight :
lowbit.global_weight @blk.0.ffn_gate.weight : !lowbit.qtensor<2x2 : f32> = dense_resource<g> : tensor<16xi8>
lowbit.global_weight @blk.0.ffn_up.weight : !lowbit.qtensor<2x2 : f32> = dense_resource<u> : tensor<16xi8>

// CHECK-LABEL: func.func @ffn
// CHECK-SAME:  (%[[X:[^:]*]]: tensor<?x2xf32>)
// CHECK:       %[[W:.*]] = lowbit.weight @blk.0.ffn_gate_up.weight
// CHECK:       %[[GU:.*]] = lowbit.matmul %[[X]], %[[W]] : tensor<?x2xf32>, !lowbit.qtensor<4x2 : f32> -> tensor<?x4xf32>
// CHECK:       %[[S:[^:]*]]:2 = lowbit.split %[[GU]] {sizes = array<i64: 2, 2>}
// CHECK:       %[[A:.*]] = lowbit.silu %[[S]]#0
// CHECK:       lowbit.mul %[[A]], %[[S]]#1
func.func @ffn(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %wg = lowbit.weight @blk.0.ffn_gate.weight : !lowbit.qtensor<2x2 : f32>
  %g = lowbit.matmul %x, %wg : tensor<?x2xf32>, !lowbit.qtensor<2x2 : f32> -> tensor<?x2xf32>
  %wu = lowbit.weight @blk.0.ffn_up.weight : !lowbit.qtensor<2x2 : f32>
  %u = lowbit.matmul %x, %wu : tensor<?x2xf32>, !lowbit.qtensor<2x2 : f32> -> tensor<?x2xf32>
  %s = lowbit.silu %g : tensor<?x2xf32>
  %h = lowbit.mul %s, %u : tensor<?x2xf32>
  return %h : tensor<?x2xf32>
}

// Gate rows first, then up rows.
// CHECK: [[BLOB]]: "0x080000000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20"
{-#
  dialect_resources: {
    builtin: {
      g: "0x080000000102030405060708090A0B0C0D0E0F10",
      u: "0x080000001112131415161718191A1B1C1D1E1F20"
    }
  }
#-}

// -----

// An already fused lowbit.swiglu is recognised too.

lowbit.global_weight @blk.1.ffn_gate.weight : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 68>
lowbit.global_weight @blk.1.ffn_up.weight : !lowbit.qtensor<2x32 : q4_0> = #lowbit.external<"/nonexistent", offset = 0, size = 36>

// CHECK-LABEL: func.func @mixed
// CHECK-COUNT-2: lowbit.matmul
// CHECK-NOT:     lowbit.split
func.func @mixed(%x: tensor<?x32xf32>) -> tensor<?x2xf32> {
  %wg = lowbit.weight @blk.1.ffn_gate.weight : !lowbit.qtensor<2x32 : q8_0>
  %g = lowbit.matmul %x, %wg : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0> -> tensor<?x2xf32>
  %wu = lowbit.weight @blk.1.ffn_up.weight : !lowbit.qtensor<2x32 : q4_0>
  %u = lowbit.matmul %x, %wu : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q4_0> -> tensor<?x2xf32>
  // expected-remark @+1 {{gate/up not fused: @blk.1.ffn_up.weight is q4_0 but @blk.1.ffn_gate.weight is q8_0}}
  %h = lowbit.swiglu %g, %u : tensor<?x2xf32>
  return %h : tensor<?x2xf32>
}

// -----

// A bias is not concatenated: left alone.

lowbit.global_weight @g : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 68>
lowbit.global_weight @u : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 68>

// CHECK-LABEL: func.func @bias
// CHECK-COUNT-2: lowbit.matmul
func.func @bias(%x: tensor<?x32xf32>, %b: tensor<2xf32>) -> tensor<?x2xf32> {
  %wg = lowbit.weight @g : !lowbit.qtensor<2x32 : q8_0>
  %g = lowbit.matmul %x, %wg bias %b : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0>, tensor<2xf32> -> tensor<?x2xf32>
  %wu = lowbit.weight @u : !lowbit.qtensor<2x32 : q8_0>
  %u = lowbit.matmul %x, %wu : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0> -> tensor<?x2xf32>
  %s = lowbit.silu %g : tensor<?x2xf32>
  // expected-remark @+1 {{gate/up not fused: a projection has a bias}}
  %h = lowbit.mul %u, %s : tensor<?x2xf32>
  return %h : tensor<?x2xf32>
}
