// RUN: lowbit-opt %s | FileCheck %s
// Round trip: print, parse again, and print the same.
// RUN: lowbit-opt %s | lowbit-opt | FileCheck %s
// Generic form parses back to the same IR.
// RUN: lowbit-opt %s --mlir-print-op-generic | lowbit-opt | FileCheck %s

// CHECK: module attributes {lowbit.metadata = [#lowbit.kv<"general.architecture", "llama">, #lowbit.kv<"llama.block_count", 1 : ui32>, #lowbit.kv<"llama.attention.layer_norm_rms_epsilon", 9.99999974E-6 : f32>, #lowbit.kv<"tokenizer.ggml.add_bos_token", true>, #lowbit.kv<"tokenizer.ggml.scores", #lowbit.array<f32: [0.000000e+00 : f32, -1.000000e+00 : f32]>>, #lowbit.kv<"tokenizer.ggml.tokens", #lowbit.array_ref<"/m/model.gguf", string x 32000>>, #lowbit.kv<"empty", #lowbit.array<string: []>>, #lowbit.kv<"nested", #lowbit.array<array: [#lowbit.array<i16: [-3 : si16]>]>>]}
module attributes {lowbit.metadata = [
    #lowbit.kv<"general.architecture", "llama">,
    #lowbit.kv<"llama.block_count", 1 : ui32>,
    #lowbit.kv<"llama.attention.layer_norm_rms_epsilon", 1.0e-5 : f32>,
    #lowbit.kv<"tokenizer.ggml.add_bos_token", true>,
    #lowbit.kv<"tokenizer.ggml.scores", #lowbit.array<f32: [0.0 : f32, -1.0 : f32]>>,
    #lowbit.kv<"tokenizer.ggml.tokens", #lowbit.array_ref<"/m/model.gguf", string x 32000>>,
    #lowbit.kv<"empty", #lowbit.array<string: []>>,
    #lowbit.kv<"nested", #lowbit.array<array: [#lowbit.array<i16: [-3 : si16]>]>>]} {

// CHECK: lowbit.global_weight @token_embd.weight : !lowbit.qtensor<512x64 : q8_0> = #lowbit.external<"/m/model.gguf", offset = 1536, size = 34816>
lowbit.global_weight @token_embd.weight : !lowbit.qtensor<512x64 : q8_0>
    = #lowbit.external<"/m/model.gguf", offset = 1536, size = 34816>
// CHECK: lowbit.global_weight @norm : !lowbit.qtensor<64 : f32> = #lowbit.external<"/m/model.gguf", offset = 0, size = 256>
lowbit.global_weight @norm : !lowbit.qtensor<64 : f32>
    = #lowbit.external<"/m/model.gguf", offset = 0, size = 256>
// CHECK: lowbit.global_weight @wq : !lowbit.qtensor<64x64 : q4_0> = #lowbit.external<"/m/model.gguf", offset = 4096, size = 2304>
lowbit.global_weight @wq : !lowbit.qtensor<64x64 : q4_0>
    = #lowbit.external<"/m/model.gguf", offset = 4096, size = 2304>
lowbit.global_weight @wk : !lowbit.qtensor<32x64 : iq4_nl>
    = #lowbit.external<"/m/model.gguf", offset = 8192, size = 1152>
lowbit.global_weight @wv : !lowbit.qtensor<32x64 : f16>
    = #lowbit.external<"/m/model.gguf", offset = 12288, size = 4096>
// A packed layout is part of the type.
// CHECK: lowbit.global_weight @packed : !lowbit.qtensor<8x256 : q4_k, #lowbit.layout<rows = 4>> = dense_resource<blob1> : tensor<1152xi8>
lowbit.global_weight @packed : !lowbit.qtensor<8x256 : q4_k, #lowbit.layout<rows = 4>>
    = dense_resource<blob1> : tensor<1152xi8>

// CHECK-LABEL: func.func @forward
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
    %cache: !lowbit.kv_cache<layers = 1, context = 128, kv_heads = 4, head_dim = 8>) -> tensor<?x64xf32> {
  // CHECK: %[[E:.*]] = lowbit.weight @token_embd.weight : <512x64 : q8_0>
  %e = lowbit.weight @token_embd.weight : !lowbit.qtensor<512x64 : q8_0>
  // CHECK: %[[X:.*]] = lowbit.embedding %[[E]][%{{.*}}] : !lowbit.qtensor<512x64 : q8_0>, tensor<?xi32> -> tensor<?x64xf32>
  %x = lowbit.embedding %e[%ids] : !lowbit.qtensor<512x64 : q8_0>, tensor<?xi32> -> tensor<?x64xf32>
  %nw = lowbit.weight @norm : !lowbit.qtensor<64 : f32>
  // CHECK: lowbit.rms_norm %[[X]], %{{.*}} {epsilon = 9.99999974E-6 : f32}
  %h = lowbit.rms_norm %x, %nw {epsilon = 1.0e-5 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>
  // CHECK: lowbit.layer_norm
  %ln = lowbit.layer_norm %x, %nw bias %nw {epsilon = 1.0e-5 : f32} : tensor<?x64xf32>, !lowbit.qtensor<64 : f32>, !lowbit.qtensor<64 : f32> -> tensor<?x64xf32>
  %wq = lowbit.weight @wq : !lowbit.qtensor<64x64 : q4_0>
  %wk = lowbit.weight @wk : !lowbit.qtensor<32x64 : iq4_nl>
  %wv = lowbit.weight @wv : !lowbit.qtensor<32x64 : f16>
  // CHECK: lowbit.matmul %{{.*}}, %{{.*}} : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q4_0> -> tensor<?x64xf32>
  %q = lowbit.matmul %h, %wq : tensor<?x64xf32>, !lowbit.qtensor<64x64 : q4_0> -> tensor<?x64xf32>
  %k = lowbit.matmul %h, %wk : tensor<?x64xf32>, !lowbit.qtensor<32x64 : iq4_nl> -> tensor<?x32xf32>
  // CHECK: lowbit.matmul %{{.*}}, %{{.*}} bias %{{.*}} : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f16>, tensor<32xf32> -> tensor<?x32xf32>
  %b = arith.constant dense<0.0> : tensor<32xf32>
  %v = lowbit.matmul %h, %wv bias %b : tensor<?x64xf32>, !lowbit.qtensor<32x64 : f16>, tensor<32xf32> -> tensor<?x32xf32>
  // CHECK: lowbit.rope %{{.*}}, %{{.*}} {head_dim = 8 : i64, heads = 8 : i64, mode = #lowbit.rope_mode<normal>, rope_dims = 8 : i64, theta = 1.000000e+04 : f32}
  %qr = lowbit.rope %q, %pos {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>
  // CHECK: mode = #lowbit.rope_mode<neox>
  %kr = lowbit.rope %k, %pos {heads = 4 : i64, head_dim = 8 : i64, rope_dims = 4 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<neox>} : tensor<?x32xf32>, tensor<?xi32>
  // CHECK: lowbit.rope %{{.*}}, %{{.*}} factors %{{.*}} {{{.*}}} : tensor<?x32xf32>, tensor<?xi32>, tensor<2xf32>
  %ff = arith.constant dense<[1.0, 8.0]> : tensor<2xf32>
  %kf = lowbit.rope %k, %pos factors %ff {heads = 4 : i64, head_dim = 8 : i64, rope_dims = 4 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<neox>} : tensor<?x32xf32>, tensor<?xi32>, tensor<2xf32>
  // CHECK: lowbit.rope %{{.*}}, %{{.*}} factors %{{.*}} long_factors %{{.*}} {{{.*}}original_context = 16 : i64{{.*}}} : tensor<?x32xf32>, tensor<?xi32>, tensor<2xf32>, tensor<2xf32>
  %kl = lowbit.rope %k, %pos factors %ff long_factors %ff {heads = 4 : i64, head_dim = 8 : i64, rope_dims = 4 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<neox>, original_context = 16 : i64} : tensor<?x32xf32>, tensor<?xi32>, tensor<2xf32>, tensor<2xf32>
  // CHECK: lowbit.scale %{{.*}} {factor = 1.600000e+01 : f32} : tensor<?x32xf32>
  %ks = lowbit.scale %kf {factor = 16.0 : f32} : tensor<?x32xf32>
  // CHECK: lowbit.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {heads = 8 : i64, layer = 0 : i64, scale = 0.353553385 : f32}
  %o = lowbit.attention %qr, %kr, %v, %cache, %pos {layer = 0 : i64, heads = 8 : i64, scale = 0.353553385 : f32}
      : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 1, context = 128, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x64xf32>
  // CHECK: lowbit.add
  %r = lowbit.add %x, %o : tensor<?x64xf32>
  // CHECK: lowbit.silu
  %s = lowbit.silu %r : tensor<?x64xf32>
  // CHECK: lowbit.gelu
  %g = lowbit.gelu %s : tensor<?x64xf32>
  // CHECK: lowbit.mul
  %m = lowbit.mul %g, %r : tensor<?x64xf32>
  // CHECK: lowbit.softmax
  %sm = lowbit.softmax %m : tensor<?x64xf32>
  return %sm : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @quant
func.func @quant(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  // CHECK: lowbit.quantize %{{.*}} : tensor<4x64xf32> -> <4x64 : q8_0>
  %q = lowbit.quantize %x : tensor<4x64xf32> -> !lowbit.qtensor<4x64 : q8_0>
  // CHECK: lowbit.dequantize %{{.*}} : <4x64 : q8_0> -> tensor<4x64xf32>
  %d = lowbit.dequantize %q : !lowbit.qtensor<4x64 : q8_0> -> tensor<4x64xf32>
  return %d : tensor<4x64xf32>
}

// CHECK-LABEL: func.func @families
func.func @families(%x: tensor<?x8xf32>, %q: tensor<?x16xf32>, %k: tensor<?x8xf32>,
                   %pos: tensor<?xi32>, %h: tensor<4xf32>, %r: tensor<4x8xf32>,
                   %g: !lowbit.qtensor<4x16x8 : f32>, %d: !lowbit.qtensor<4x8x16 : f32>,
                   %sg: tensor<12x8xf32>, %sd: tensor<8x12xf32>, %si: tensor<8xf32>,
                   %c: !lowbit.kv_cache<layers = 1, context = 16, kv_heads = 2, head_dim = 4>)
    -> (tensor<?x8xf32>, tensor<?x16xf32>) {
  // CHECK: lowbit.rms_norm %{{.*}}, %{{.*}} {epsilon = 9.99999997E-7 : f32, group = 4 : i64}
  %qn = lowbit.rms_norm %q, %h {epsilon = 1.0e-6 : f32, group = 4 : i64} : tensor<?x16xf32>, tensor<4xf32> -> tensor<?x16xf32>
  // CHECK: lowbit.attention {{.*}} {heads = 4 : i64, layer = 0 : i64, scale = 5.000000e-01 : f32, window = 64 : i64}
  %o = lowbit.attention %qn, %k, %k, %c, %pos {layer = 0 : i64, heads = 4 : i64, scale = 0.5 : f32, window = 64 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !lowbit.kv_cache<layers = 1, context = 16, kv_heads = 2, head_dim = 4>, tensor<?xi32> -> tensor<?x16xf32>
  // CHECK: lowbit.moe_ffn %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {normalize = true, top_k = 2 : i64}
  %m = lowbit.moe_ffn %x, %r, %g, %g, %d {top_k = 2 : i64, normalize = true} : tensor<?x8xf32>, tensor<4x8xf32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x8x16 : f32> -> tensor<?x8xf32>
  // CHECK: lowbit.moe_ffn {{.*}} shared(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {normalize = false, top_k = 1 : i64}
  %s = lowbit.moe_ffn %m, %r, %g, %g, %d shared(%sg, %sg, %sd, %si) {top_k = 1 : i64, normalize = false} : tensor<?x8xf32>, tensor<4x8xf32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x8x16 : f32>, tensor<12x8xf32>, tensor<12x8xf32>, tensor<8x12xf32>, tensor<8xf32> -> tensor<?x8xf32>
  // CHECK: lowbit.softcap %{{.*}} {cap = 3.000000e+01 : f32} : tensor<?x8xf32>
  %c30 = lowbit.softcap %s {cap = 30.0 : f32} : tensor<?x8xf32>
  // CHECK: lowbit.attention {{.*}} {heads = 4 : i64, layer = 0 : i64, scale = 5.000000e-01 : f32, softcap = 5.000000e+01 : f32}
  %o2 = lowbit.attention %qn, %k, %k, %c, %pos {layer = 0 : i64, heads = 4 : i64, scale = 0.5 : f32, softcap = 50.0 : f32} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !lowbit.kv_cache<layers = 1, context = 16, kv_heads = 2, head_dim = 4>, tensor<?xi32> -> tensor<?x16xf32>
  return %c30, %o2 : tensor<?x8xf32>, tensor<?x16xf32>
}
}

{-#
  dialect_resources: {
    builtin: {
      blob1: "0x04000000"
    }
  }
#-}
