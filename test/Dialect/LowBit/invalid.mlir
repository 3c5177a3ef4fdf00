// RUN: lowbit-opt %s --split-input-file --verify-diagnostics

// expected-error @+1 {{unknown weight format 'q9_9'}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q9_9> = #lowbit.external<"m", offset = 0, size = 4>

// -----

// expected-error @+1 {{row length 48 is not a multiple of q4_0's block size 32}}
lowbit.global_weight @w : !lowbit.qtensor<4x48 : q4_0> = #lowbit.external<"m", offset = 0, size = 4>

// -----

// expected-error @+1 {{row length 64 is not a multiple of q4_k's block size 256}}
lowbit.global_weight @w : !lowbit.qtensor<4x64 : q4_k> = #lowbit.external<"m", offset = 0, size = 4>

// -----

// expected-error @+1 {{qtensor dimensions must be positive, got 0}}
lowbit.global_weight @w : !lowbit.qtensor<0x32 : q4_0> = #lowbit.external<"m", offset = 0, size = 0>

// -----

// expected-error @+1 {{row count 6 is not a multiple of the layout's 4 interleaved rows}}
lowbit.global_weight @w : !lowbit.qtensor<6x32 : q4_0, #lowbit.layout<rows = 4>> = #lowbit.external<"m", offset = 0, size = 108>

// -----

// expected-error @+1 {{layout rows must be a power of two in [1, 64], got 3}}
lowbit.global_weight @w : !lowbit.qtensor<6x32 : q4_0, #lowbit.layout<rows = 3>> = #lowbit.external<"m", offset = 0, size = 108>

// -----

// expected-error @+1 {{external data holds 100 bytes but '!lowbit.qtensor<4x32 : q4_0>' needs 72}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = #lowbit.external<"m", offset = 0, size = 100>

// -----

// expected-error @+1 {{external data has an empty path}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = #lowbit.external<"", offset = 0, size = 72>

// -----

// expected-error @+1 {{resource data holds 8 bytes but '!lowbit.qtensor<4x32 : q4_0>' needs 72}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = dense_resource<blob> : tensor<8xi8>

// -----

// expected-error @+1 {{resource data must be a 1-D tensor of i8}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = dense_resource<blob> : tensor<18xi32>

// -----

// expected-error @+1 {{data must be #lowbit.external or a dense_resource}}
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = 5 : i32

// -----

func.func @f() {
  // expected-error @+1 {{'missing' does not name a lowbit.global_weight}}
  %w = lowbit.weight @missing : !lowbit.qtensor<4x32 : q4_0>
  return
}

// -----

lowbit.global_weight @w : !lowbit.qtensor<4x32 : q4_0> = #lowbit.external<"m", offset = 0, size = 72>
func.func @f() {
  // expected-error @+1 {{type '!lowbit.qtensor<4x32 : q8_0>' differs from '!lowbit.qtensor<4x32 : q4_0>' of @w}}
  %w = lowbit.weight @w : !lowbit.qtensor<4x32 : q8_0>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: !lowbit.qtensor<16x32 : q4_0>) {
  // expected-error @+1 {{input width 64 does not match the weight's row length 32}}
  %y = lowbit.matmul %x, %w : tensor<?x64xf32>, !lowbit.qtensor<16x32 : q4_0> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<16x32 : q4_0>) {
  // expected-error @+1 {{result 'tensor<?x8xf32>' must end in the weight's 16 rows}}
  %y = lowbit.matmul %x, %w : tensor<?x32xf32>, !lowbit.qtensor<16x32 : q4_0> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<16x32 : q4_0>, %b: tensor<8xf32>) {
  // expected-error @+1 {{bias must be 1-D of size 16}}
  %y = lowbit.matmul %x, %w bias %b : tensor<?x32xf32>, !lowbit.qtensor<16x32 : q4_0>, tensor<8xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<32xf32>, %w: !lowbit.qtensor<16x32 : q4_0>) {
  // expected-error @+1 {{input must have rank 2 or more, got 'tensor<32xf32>'}}
  %y = lowbit.matmul %x, %w : tensor<32xf32>, !lowbit.qtensor<16x32 : q4_0> -> tensor<16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x?x32xf32>, %w: !lowbit.qtensor<16x32 : q4_0>) {
  // expected-error @+1 {{result 'tensor<?x16xf32>' must have the input's rank 3}}
  %y = lowbit.matmul %x, %w : tensor<2x?x32xf32>, !lowbit.qtensor<16x32 : q4_0> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x?x32xf32>, %w: !lowbit.qtensor<16x32 : q4_0>) {
  // expected-error @+1 {{result 'tensor<3x?x16xf32>' must keep the input's leading dimensions}}
  %y = lowbit.matmul %x, %w : tensor<2x?x32xf32>, !lowbit.qtensor<16x32 : q4_0> -> tensor<3x?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<2x16x32 : q4_0>) {
  // expected-error @+1 {{weight must have rank 2}}
  %y = lowbit.matmul %x, %w : tensor<?x32xf32>, !lowbit.qtensor<2x16x32 : q4_0> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%t: !lowbit.qtensor<10x32 : q8_0>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{result 'tensor<?x16xf32>' must be [tokens, 32]}}
  %y = lowbit.embedding %t[%ids] : !lowbit.qtensor<10x32 : q8_0>, tensor<?xi32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<16 : f32>) {
  // expected-error @+1 {{weight must be 1-D of size 32}}
  %y = lowbit.rms_norm %x, %w {epsilon = 1.0e-5 : f32} : tensor<?x32xf32>, !lowbit.qtensor<16 : f32> -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<32 : f32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %y = lowbit.rms_norm %x, %w {epsilon = 0.0 : f32} : tensor<?x32xf32>, !lowbit.qtensor<32 : f32> -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<32 : f32>) {
  // expected-error @+1 {{result type 'tensor<4x32xf32>' must equal the input type 'tensor<?x32xf32>'}}
  %y = lowbit.rms_norm %x, %w {epsilon = 1.0e-5 : f32} : tensor<?x32xf32>, !lowbit.qtensor<32 : f32> -> tensor<4x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: !lowbit.qtensor<32 : f32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{bias must be 1-D of size 32}}
  %y = lowbit.layer_norm %x, %w bias %b {epsilon = 1.0e-5 : f32} : tensor<?x32xf32>, !lowbit.qtensor<32 : f32>, tensor<4xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{input width 64 must be heads * head_dim = 32}}
  %y = lowbit.rope %x, %p {heads = 4 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope_dims must be even and in (0, head_dim = 8], got 7}}
  %y = lowbit.rope %x, %p {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 7 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<neox>} : tensor<?x64xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<3x64xf32>, %p: tensor<2xi32>) {
  // expected-error @+1 {{needs one position per token}}
  %y = lowbit.rope %x, %p {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<neox>} : tensor<3x64xf32>, tensor<2xi32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{theta must be positive}}
  %y = lowbit.rope %x, %p {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = -1.0 : f32, mode = #lowbit.rope_mode<neox>} : tensor<?x64xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %f: tensor<8xf32>) {
  // expected-error @+1 {{factors must be 1-D of size rope_dims / 2 = 4, got 'tensor<8xf32>'}}
  %y = lowbit.rope %x, %p factors %f {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>, tensor<8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<?xi32>) {
  // expected-error @+1 {{layer 2 is outside the cache's 2 layers}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 2 : i64, heads = 8 : i64, scale = 1.0 : f32} : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x48xf32>, %k: tensor<?x32xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<?xi32>) {
  // expected-error @+1 {{heads (6) must be a positive multiple of the cache's 4 kv heads}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 0 : i64, heads = 6 : i64, scale = 1.0 : f32} : tensor<?x48xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x48xf32>
  return
}

// -----

func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<?xi32>) {
  // expected-error @+1 {{key and value width must be kv_heads * head_dim = 32}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 0 : i64, heads = 8 : i64, scale = 1.0 : f32} : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x32xf32>, %k: tensor<?x32xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<?xi32>) {
  // expected-error @+1 {{query width must be heads * head_dim = 64}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 0 : i64, heads = 8 : i64, scale = 1.0 : f32} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%q: tensor<3x64xf32>, %k: tensor<2x32xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<3xi32>) {
  // expected-error @+1 {{query, key and value must have the same tokens}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 0 : i64, heads = 8 : i64, scale = 1.0 : f32} : tensor<3x64xf32>, tensor<2x32xf32>, tensor<2x32xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<3xi32> -> tensor<3x64xf32>
  return
}

// -----

// expected-error @+1 {{kv_cache sizes must be positive}}
func.func @f(%c: !lowbit.kv_cache<layers = 0, context = 16, kv_heads = 4, head_dim = 8>) {
  return
}

// -----

func.func @f(%x: tensor<4x64xf32>) {
  // expected-error @+1 {{shapes of 'tensor<4x64xf32>' and '!lowbit.qtensor<4x32 : q8_0>' differ}}
  %q = lowbit.quantize %x : tensor<4x64xf32> -> !lowbit.qtensor<4x32 : q8_0>
  return
}

// -----

func.func @f(%q: !lowbit.qtensor<4x32 : q8_0>) {
  // expected-error @+1 {{shapes of 'tensor<2x32xf32>' and '!lowbit.qtensor<4x32 : q8_0>' differ}}
  %x = lowbit.dequantize %q : !lowbit.qtensor<4x32 : q8_0> -> tensor<2x32xf32>
  return
}

// -----

// expected-error @+1 {{metadata key must not be empty}}
module attributes {lowbit.metadata = [#lowbit.kv<"", 1 : ui32>]} {}

// -----

// expected-error @+1 {{metadata value 1 : i32 is not a GGUF value}}
module attributes {lowbit.metadata = [#lowbit.kv<"k", 1 : i32>]} {}

// -----

// expected-error @+2 {{array element 1 (2 : si32) is not of type u32}}
// expected-error @+1 {{failed to parse LowBit_MetadataEntryAttr parameter 'value'}}
module attributes {lowbit.metadata = [#lowbit.kv<"k", #lowbit.array<u32: [1 : ui32, 2 : si32]>>]} {}

// -----

// expected-error @+2 {{unknown GGUF value type 'u128'}}
// expected-error @+1 {{failed to parse LowBit_MetadataEntryAttr parameter 'value'}}
module attributes {lowbit.metadata = [#lowbit.kv<"k", #lowbit.array<u128: []>>]} {}

// -----

func.func @split_sizes(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{sizes add up to 7 but the input has 8 columns}}
  %a, %b = lowbit.split %x {sizes = array<i64: 4, 3>} : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x3xf32>
  return
}

// -----

func.func @split_count(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{has 3 sizes but 2 results}}
  %a, %b = lowbit.split %x {sizes = array<i64: 4, 2, 2>} : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xf32>
  return
}

// -----

func.func @split_result(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{result 'tensor<?x5xf32>' must be [tokens, 4]}}
  %a, %b = lowbit.split %x {sizes = array<i64: 4, 4>} : tensor<?x8xf32> -> tensor<?x5xf32>, tensor<?x4xf32>
  return
}

// -----

func.func @split_positive(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{sizes must be positive}}
  %a, %b = lowbit.split %x {sizes = array<i64: 8, 0>} : tensor<?x8xf32> -> tensor<?x8xf32>, tensor<?x0xf32>
  return
}

// -----

func.func @swiglu_types(%g: tensor<?x8xf32>, %u: tensor<?x4xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %h = "lowbit.swiglu"(%g, %u) : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @norm_quant_bytes(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{quantized rows of 64 values in q8_0 are 68 bytes, got 'tensor<?x64xi8>'}}
  %y, %q = lowbit.rms_norm_quant %x, %w {act_format = #lowbit.format<q8_0>, epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>, tensor<?x64xi8>
  return
}

// -----

func.func @norm_quant_blocks(%x: tensor<?x48xf32>, %w: tensor<48xf32>) {
  // expected-error @+1 {{rows of 48 values do not fill q8_0 blocks of 32}}
  %y, %q = lowbit.rms_norm_quant %x, %w {act_format = #lowbit.format<q8_0>, epsilon = 1.0e-05 : f32} : tensor<?x48xf32>, tensor<48xf32> -> tensor<?x48xf32>, tensor<?x51xi8>
  return
}

// -----

func.func @norm_quant_weight(%x: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight must be 1-D of size 64}}
  %y, %q = lowbit.rms_norm_quant %x, %w {act_format = #lowbit.format<q8_0>, epsilon = 1.0e-05 : f32} : tensor<?x64xf32>, tensor<32xf32> -> tensor<?x64xf32>, tensor<?x68xi8>
  return
}

// -----

func.func @norm_quant_epsilon(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %y, %q = lowbit.rms_norm_quant %x, %w {act_format = #lowbit.format<q8_0>, epsilon = 0.0 : f32} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>, tensor<?x68xi8>
  return
}

// -----

lowbit.global_weight @w : !lowbit.qtensor<16x64 : q4_0> = #lowbit.external<"m", offset = 0, size = 576>
func.func @qmatmul_bytes(%xq: tensor<?x64xi8>) {
  %w = lowbit.weight @w : !lowbit.qtensor<16x64 : q4_0>
  // expected-error @+1 {{input rows must be 68 bytes (64 values in q8_0), got 64}}
  %y = lowbit.qmatmul %xq, %w {act_format = #lowbit.format<q8_0>} : tensor<?x64xi8>, !lowbit.qtensor<16x64 : q4_0> -> tensor<?x16xf32>
  return
}

// -----

lowbit.global_weight @w : !lowbit.qtensor<16x64 : q4_0> = #lowbit.external<"m", offset = 0, size = 576>
func.func @qmatmul_result(%xq: tensor<?x68xi8>) {
  %w = lowbit.weight @w : !lowbit.qtensor<16x64 : q4_0>
  // expected-error @+1 {{result 'tensor<?x8xf32>' must be [tokens, 16]}}
  %y = lowbit.qmatmul %xq, %w {act_format = #lowbit.format<q8_0>} : tensor<?x68xi8>, !lowbit.qtensor<16x64 : q4_0> -> tensor<?x8xf32>
  return
}

// -----

lowbit.global_weight @w : !lowbit.qtensor<16x64 : q8_0> = #lowbit.external<"m", offset = 0, size = 1088>
func.func @qmatmul_blocks(%xq: tensor<?x68xi8>) {
  %w = lowbit.weight @w : !lowbit.qtensor<16x64 : q8_0>
  // expected-error @+1 {{rows of 64 values do not fill q8_k blocks of 256}}
  %y = lowbit.qmatmul %xq, %w {act_format = #lowbit.format<q8_k>} : tensor<?x68xi8>, !lowbit.qtensor<16x64 : q8_0> -> tensor<?x16xf32>
  return
}

// -----

func.func @residual_type(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>, %r: tensor<?x64xf32>) {
  // expected-error @+1 {{residual type 'tensor<?x64xf32>' must equal the result type 'tensor<?x32xf32>'}}
  %y = lowbit.matmul_residual %x, %w, %r : tensor<?x64xf32>, tensor<32x64xf32>, tensor<?x64xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @residual_width(%x: tensor<?x48xf32>, %w: tensor<32x64xf32>, %r: tensor<?x32xf32>) {
  // expected-error @+1 {{input width 48 does not match the weight's row length 64}}
  %y = lowbit.matmul_residual %x, %w, %r : tensor<?x48xf32>, tensor<32x64xf32>, tensor<?x32xf32> -> tensor<?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<16xf32>) {
  // expected-error @+1 {{group 24 must be positive and divide the width 64}}
  %y = lowbit.rms_norm %x, %w {epsilon = 1.0e-6 : f32, group = 24 : i64} : tensor<?x64xf32>, tensor<16xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{weight must be 1-D of size group = 16, got 'tensor<32xf32>'}}
  %y = lowbit.rms_norm %x, %w {epsilon = 1.0e-6 : f32, group = 16 : i64} : tensor<?x64xf32>, tensor<32xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %c: !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, %p: tensor<?xi32>) {
  // expected-error @+1 {{window must be positive, got 0}}
  %o = lowbit.attention %q, %k, %k, %c, %p {layer = 0 : i64, heads = 8 : i64, scale = 0.35 : f32, window = 0 : i64} : tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>, !lowbit.kv_cache<layers = 2, context = 16, kv_heads = 4, head_dim = 8>, tensor<?xi32> -> tensor<?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %g: !lowbit.qtensor<4x16x8 : f32>, %d: !lowbit.qtensor<4x8x16 : f32>) {
  // expected-error @+1 {{top_k must be in [1, 4], got 5}}
  %y = lowbit.moe_ffn %x, %r, %g, %g, %d {top_k = 5 : i64, normalize = true} : tensor<?x8xf32>, tensor<4x8xf32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x8x16 : f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %g: !lowbit.qtensor<4x16x8 : f32>, %d: !lowbit.qtensor<3x8x16 : f32>) {
  // expected-error @+1 {{expert weights must be gate/up [4, ffn, 8] and down [4, 8, ffn]}}
  %y = lowbit.moe_ffn %x, %r, %g, %g, %d {top_k = 2 : i64, normalize = true} : tensor<?x8xf32>, tensor<4x8xf32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<3x8x16 : f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<4x8xf32>, %g: !lowbit.qtensor<4x16x8 : f32>, %d: !lowbit.qtensor<4x8x16 : f32>, %sg: tensor<12x8xf32>) {
  // expected-error @+1 {{shared expert needs gate, up, down and gate_inp}}
  %y = lowbit.moe_ffn %x, %r, %g, %g, %d shared(%sg) {top_k = 2 : i64, normalize = true} : tensor<?x8xf32>, tensor<4x8xf32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x16x8 : f32>, !lowbit.qtensor<4x8x16 : f32>, tensor<12x8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{YaRN (ext_factor != 0) needs the original context length}}
  %y = lowbit.rope %x, %p {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e+04 : f32, mode = #lowbit.rope_mode<normal>, freq_scale = 0.25 : f32, ext_factor = 1.0 : f32} : tensor<?x64xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{cap must be positive and finite}}
  %y = lowbit.softcap %x {cap = 0.0 : f32} : tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %f: tensor<4xf32>) {
  // expected-error @+1 {{long_factors need factors (the short ones) and original_context > 0}}
  %y = lowbit.rope %x, %p factors %f long_factors %f {heads = 8 : i64, head_dim = 8 : i64, rope_dims = 8 : i64, theta = 1.0e4 : f32, mode = #lowbit.rope_mode<normal>} : tensor<?x64xf32>, tensor<?xi32>, tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %pos: tensor<?xi32>,
             %c: !lowbit.kv_cache<layers = 1, context = 16, kv_heads = 2, head_dim = 4>) {
  // expected-error @+1 {{softcap must be >= 0 and finite}}
  %o = lowbit.attention %q, %k, %k, %c, %pos {layer = 0 : i64, heads = 4 : i64, scale = 0.5 : f32, softcap = -1.0 : f32} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !lowbit.kv_cache<layers = 1, context = 16, kv_heads = 2, head_dim = 4>, tensor<?xi32> -> tensor<?x16xf32>
  return
}
