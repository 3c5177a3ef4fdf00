// RUN: lowbit-opt --split-input-file --convert-lowbit-to-kernels="target=x86-64-v3" %s | FileCheck %s

// One kernel per distinct (format, rows, cols, layout); quantizers shared by
// the formats that consume the same activation blocks.
// CHECK-LABEL: module attributes {lowbit.codegen_target = "x86-64-v3"}
// CHECK:       func.func @layer
// CHECK:         lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_0, lowbit.kernel = @[[Q40:lb_mm_q4_0_64x256_r4]]}
// CHECK:         lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_0, lowbit.kernel = @[[Q40]]}
// CHECK:         lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_0, lowbit.kernel = @[[Q40PLAIN:lb_mm_q4_0_64x256_r1]]}
// CHECK:         lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @[[Q4K:lb_mm_q4_k_32x256_r2]]}
// CHECK:         lowbit.matmul {{.*}} {lowbit.kernel = @[[F32:lb_mm_f32_16x256_r1]]}
// CHECK:       func.func @[[Q40]](%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME:      lowbit.dot_path = "avx2-maddubs", lowbit.kernel_entry, target_cpu = "x86-64-v3"
// CHECK:         builtin.unrealized_conversion_cast {{.*}} to memref<?xi8>
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK:             vector.load {{.*}} : memref<?xi8>, vector<16xi8>
// CHECK:             llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"({{.*}}) : (vector<32xi8>, vector<32xi8>) -> vector<16xi16>
// CHECK:             llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"({{.*}}) : (vector<16xi16>, vector<16xi16>) -> vector<8xi32>
// CHECK:             vector.fma
// CHECK:           vector.reduction <add>
// CHECK:       func.func @lb_quant_q8_0(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:         math.round
// CHECK:         arith.truncf {{.*}} : f32 to f16
// CHECK:       func.func @lb_abi_version() -> i32
// CHECK:         arith.constant 3 : i32
// CHECK:       func.func @[[Q40PLAIN]](
// CHECK:       func.func @[[Q4K]](
// CHECK:       func.func @lb_quant_q8_k(
// CHECK:         math.roundeven
// CHECK:       func.func @[[F32]](
// CHECK-SAME:      lowbit.dot_path = "avx2-fma"
// CHECK:         vector.fma
// CHECK-NOT:   func.func

!q40 = !lowbit.qtensor<64x256 : q4_0, #lowbit.layout<rows = 4>>
!q40plain = !lowbit.qtensor<64x256 : q4_0>
!q4k = !lowbit.qtensor<32x256 : q4_k, #lowbit.layout<rows = 2>>
!f32 = !lowbit.qtensor<16x256 : f32>
func.func @layer(%x: tensor<?x256xf32>, %a: !q40, %b: !q40, %c: !q40plain, %d: !q4k, %e: !f32) {
  %0 = lowbit.matmul %x, %a : tensor<?x256xf32>, !q40 -> tensor<?x64xf32>
  %1 = lowbit.matmul %x, %b : tensor<?x256xf32>, !q40 -> tensor<?x64xf32>
  %2 = lowbit.matmul %x, %c : tensor<?x256xf32>, !q40plain -> tensor<?x64xf32>
  %3 = lowbit.matmul %x, %d : tensor<?x256xf32>, !q4k -> tensor<?x32xf32>
  %4 = lowbit.matmul %x, %e : tensor<?x256xf32>, !f32 -> tensor<?x16xf32>
  return
}

// -----

// Fused ops get kernels too: qmatmul takes the pre-quantized activations,
// matmul_residual's kernel computes the product the runtime adds.
// CHECK-LABEL: func.func @fused
// CHECK:         lowbit.qmatmul {{.*}} {act_format = #lowbit.format<q8_0>, lowbit.act_quantizer = @lb_quant_q8_0, lowbit.kernel = @lb_mm_q8_0_64x64_r4}
// CHECK:         lowbit.matmul_residual {{.*}} {lowbit.act_quantizer = @lb_quant_q8_0, lowbit.kernel = @lb_mm_q8_0_64x64_r4}
!q80 = !lowbit.qtensor<64x64 : q8_0, #lowbit.layout<rows = 4>>
func.func @fused(%xq: tensor<?x68xi8>, %x: tensor<?x64xf32>, %w: !q80) {
  %0 = lowbit.qmatmul %xq, %w {act_format = #lowbit.format<q8_0>} : tensor<?x68xi8>, !q80 -> tensor<?x64xf32>
  %1 = lowbit.matmul_residual %x, %w, %x : tensor<?x64xf32>, !q80, tensor<?x64xf32> -> tensor<?x64xf32>
  return
}

// -----

// Weights from the model's globals; activations computed by the graph
// (an f32 tensor operand) are not stored weights and get no kernel.
// CHECK-LABEL: func.func @globals
// CHECK:         lowbit.matmul {{.*}} {lowbit.act_quantizer = @lb_quant_q8_k, lowbit.kernel = @lb_mm_q6_k_8x256_r2}
// CHECK:         lowbit.matmul {{.*}} : tensor<?x64xf32>, tensor<16x64xf32> -> tensor<?x16xf32>
lowbit.global_weight @w : !lowbit.qtensor<8x256 : q6_k, #lowbit.layout<rows = 2>> = #lowbit.external<"/nonexistent", offset = 0, size = 1680>
func.func @globals(%x: tensor<?x256xf32>, %y: tensor<?x64xf32>, %t: tensor<16x64xf32>) {
  %w = lowbit.weight @w : !lowbit.qtensor<8x256 : q6_k, #lowbit.layout<rows = 2>>
  %0 = lowbit.matmul %x, %w : tensor<?x256xf32>, !lowbit.qtensor<8x256 : q6_k, #lowbit.layout<rows = 2>> -> tensor<?x8xf32>
  %1 = lowbit.matmul %y, %t : tensor<?x64xf32>, tensor<16x64xf32> -> tensor<?x16xf32>
  return
}
