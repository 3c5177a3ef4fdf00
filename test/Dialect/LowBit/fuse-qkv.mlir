// RUN: lowbit-opt %s --split-input-file --lowbit-fuse-qkv --verify-diagnostics | FileCheck %s

// Three f32 projections of one input: one weight with q's rows, then k's,
// then v's (the bytes concatenated), one matmul, a split.

// CHECK:     lowbit.global_weight @blk.0.attn_qkv.weight : !lowbit.qtensor<8x2 : f32> = dense_resource<[[BLOB:[^>]+]]> : tensor<64xi8>
// CHECK-SAME: lowbit.fused_from = ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"], lowbit.fused_rows = array<i64: 4, 2, 2>
// CHECK-NOT: @blk.0.attn_q.weight :
// CHECK-NOT: @blk.0.attn_k.weight :
// CHECK-NOT: @blk.0.attn_v.weight :
// CHECK:     lowbit.global_weight @blk.0.attn_output.weight
lowbit.global_weight @blk.0.attn_q.weight : !lowbit.qtensor<4x2 : f32> = dense_resource<q> : tensor<32xi8>
lowbit.global_weight @blk.0.attn_k.weight : !lowbit.qtensor<2x2 : f32> = dense_resource<k> : tensor<16xi8>
lowbit.global_weight @blk.0.attn_v.weight : !lowbit.qtensor<2x2 : f32> = dense_resource<v> : tensor<16xi8>
lowbit.global_weight @blk.0.attn_output.weight : !lowbit.qtensor<2x4 : f32> = dense_resource<o> : tensor<32xi8>

// CHECK-LABEL: func.func @forward
// CHECK-SAME:  (%[[X:[^:]*]]: tensor<?x2xf32>, %[[POS:[^:]*]]: tensor<?xi32>, %[[CACHE:[^:]*]]: !lowbit.kv_cache
// CHECK:       %[[W:.*]] = lowbit.weight @blk.0.attn_qkv.weight : <8x2 : f32>
// CHECK:       %[[QKV:.*]] = lowbit.matmul %[[X]], %[[W]] : tensor<?x2xf32>, !lowbit.qtensor<8x2 : f32> -> tensor<?x8xf32>
// CHECK:       %[[S:[^:]*]]:3 = lowbit.split %[[QKV]] {sizes = array<i64: 4, 2, 2>} : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>
// CHECK:       %[[Q:.*]] = lowbit.rope %[[S]]#0, %[[POS]]
// CHECK:       %[[K:.*]] = lowbit.rope %[[S]]#1, %[[POS]]
// CHECK:       lowbit.attention %[[Q]], %[[K]], %[[S]]#2, %[[CACHE]], %[[POS]]
// CHECK-NOT:   lowbit.matmul %[[X]]
func.func @forward(%x: tensor<?x2xf32>, %pos: tensor<?xi32>,
                   %cache: !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>) -> tensor<?x2xf32> {
  %wq = lowbit.weight @blk.0.attn_q.weight : !lowbit.qtensor<4x2 : f32>
  %q = lowbit.matmul %x, %wq : tensor<?x2xf32>, !lowbit.qtensor<4x2 : f32> -> tensor<?x4xf32>
  %wk = lowbit.weight @blk.0.attn_k.weight : !lowbit.qtensor<2x2 : f32>
  %k = lowbit.matmul %x, %wk : tensor<?x2xf32>, !lowbit.qtensor<2x2 : f32> -> tensor<?x2xf32>
  %wv = lowbit.weight @blk.0.attn_v.weight : !lowbit.qtensor<2x2 : f32>
  %v = lowbit.matmul %x, %wv : tensor<?x2xf32>, !lowbit.qtensor<2x2 : f32> -> tensor<?x2xf32>
  %qr = lowbit.rope %q, %pos {heads = 2 : i64, head_dim = 2 : i64, rope_dims = 2 : i64, theta = 1.0e+04 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x4xf32>, tensor<?xi32>
  %kr = lowbit.rope %k, %pos {heads = 1 : i64, head_dim = 2 : i64, rope_dims = 2 : i64, theta = 1.0e+04 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x2xf32>, tensor<?xi32>
  %a = lowbit.attention %qr, %kr, %v, %cache, %pos {layer = 0 : i64, heads = 2 : i64, scale = 0.7071 : f32}
      : tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>, !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>, tensor<?xi32> -> tensor<?x4xf32>
  %wo = lowbit.weight @blk.0.attn_output.weight : !lowbit.qtensor<2x4 : f32>
  %o = lowbit.matmul %a, %wo : tensor<?x4xf32>, !lowbit.qtensor<2x4 : f32> -> tensor<?x2xf32>
  return %o : tensor<?x2xf32>
}

// The fused bytes are q's, k's and v's back to back.
// CHECK: [[BLOB]]: "0x080000000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F40"
{-#
  dialect_resources: {
    builtin: {
      q: "0x080000000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20",
      k: "0x080000002122232425262728292A2B2C2D2E2F30",
      v: "0x080000003132333435363738393A3B3C3D3E3F40",
      o: "0x080000000000000000000000000000000000000000000000000000000000000000000000"
    }
  }
#-}

// -----

// Formats differ (q4_k_m keeps attn_v in q6_k in some layers): not fused.

lowbit.global_weight @blk.1.attn_q.weight : !lowbit.qtensor<4x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 136>
lowbit.global_weight @blk.1.attn_k.weight : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 68>
lowbit.global_weight @blk.1.attn_v.weight : !lowbit.qtensor<2x32 : q4_0> = #lowbit.external<"/nonexistent", offset = 0, size = 36>

// CHECK-LABEL: func.func @mixed
// CHECK-COUNT-3: lowbit.matmul
// CHECK-NOT:     lowbit.split
func.func @mixed(%x: tensor<?x32xf32>, %pos: tensor<?xi32>,
                 %cache: !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>) -> tensor<?x4xf32> {
  %wq = lowbit.weight @blk.1.attn_q.weight : !lowbit.qtensor<4x32 : q8_0>
  %q = lowbit.matmul %x, %wq : tensor<?x32xf32>, !lowbit.qtensor<4x32 : q8_0> -> tensor<?x4xf32>
  %wk = lowbit.weight @blk.1.attn_k.weight : !lowbit.qtensor<2x32 : q8_0>
  %k = lowbit.matmul %x, %wk : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0> -> tensor<?x2xf32>
  %wv = lowbit.weight @blk.1.attn_v.weight : !lowbit.qtensor<2x32 : q4_0>
  %v = lowbit.matmul %x, %wv : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q4_0> -> tensor<?x2xf32>
  // expected-remark @+1 {{q/k/v not fused: @blk.1.attn_v.weight is q4_0 but @blk.1.attn_q.weight is q8_0}}
  %a = lowbit.attention %q, %k, %v, %cache, %pos {layer = 0 : i64, heads = 2 : i64, scale = 0.7071 : f32}
      : tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>, !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>, tensor<?xi32> -> tensor<?x4xf32>
  return %a : tensor<?x4xf32>
}

// -----

// Different inputs: nothing to share.

lowbit.global_weight @wq : !lowbit.qtensor<4x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 136>
lowbit.global_weight @wk : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent", offset = 0, size = 68>

// CHECK-LABEL: func.func @inputs
// CHECK-COUNT-3: lowbit.matmul
func.func @inputs(%x: tensor<?x32xf32>, %y: tensor<?x32xf32>, %pos: tensor<?xi32>,
                  %cache: !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>) -> tensor<?x4xf32> {
  %wq = lowbit.weight @wq : !lowbit.qtensor<4x32 : q8_0>
  %q = lowbit.matmul %x, %wq : tensor<?x32xf32>, !lowbit.qtensor<4x32 : q8_0> -> tensor<?x4xf32>
  %wk = lowbit.weight @wk : !lowbit.qtensor<2x32 : q8_0>
  %k = lowbit.matmul %y, %wk : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0> -> tensor<?x2xf32>
  %v = lowbit.matmul %x, %wk : tensor<?x32xf32>, !lowbit.qtensor<2x32 : q8_0> -> tensor<?x2xf32>
  // expected-remark @+1 {{q/k/v not fused: the projections read different inputs}}
  %a = lowbit.attention %q, %k, %v, %cache, %pos {layer = 0 : i64, heads = 2 : i64, scale = 0.7071 : f32}
      : tensor<?x4xf32>, tensor<?x2xf32>, tensor<?x2xf32>, !lowbit.kv_cache<layers = 1, context = 8, kv_heads = 1, head_dim = 2>, tensor<?xi32> -> tensor<?x4xf32>
  return %a : tensor<?x4xf32>
}
