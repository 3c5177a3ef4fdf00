// lowbit-generate-entry writes @forward as the native program: one call per
// op, in graph order, each into the op function of its kind, with a constant
// record of the op's operands and attributes. Inputs/../handwritten.mlir is
// a model no importer made (two layers and a head).
// RUN: lowbit-opt --lowbit-generate-entry %S/../Exec/Inputs/handwritten.mlir | FileCheck %s
// RUN: lowbit-opt --lowbit-generate-entry %s -split-input-file -verify-diagnostics
// RUN: lowbit-opt --lowbit-generate-entry --lowbit-isolate-kernels %S/../Exec/Inputs/handwritten.mlir | FileCheck %s --check-prefix=KEPT

// Record 2 is the first rms_norm: kind 3, one input (value 1), one output
// (value 2), weight 1 (norm0), epsilon 1e-5, located in the IR.
// CHECK-DAG: llvm.mlir.global private constant @lb_op.2.inputs(dense<1> : tensor<1xi32>) {{.*}}lowbit.kernel_data
// CHECK-DAG: llvm.mlir.global private constant @lb_op.2.location("{{.*}}handwritten.mlir:29:11\00")
// CHECK:     llvm.mlir.global private constant @lb_op.2()
// CHECK-NEXT:  llvm.mlir.constant(3 : i32)
// CHECK-NEXT:  llvm.mlir.constant(0 : i32)
// CHECK-NEXT:  llvm.mlir.constant(1 : i32)
// CHECK-NEXT:  llvm.mlir.constant(1 : i32)
// CHECK:       llvm.mlir.constant(9.99999974E-6 : f32)

// The entry: the module's 20 ops in order.
// CHECK-LABEL: llvm.func internal @lb_forward(%arg0: !llvm.ptr, %arg1: !llvm.ptr)
// CHECK-NEXT:  %[[R0:.*]] = llvm.mlir.addressof @lb_op.0
// CHECK-NEXT:  llvm.call @lb_op_embedding(%arg0, %arg1, %[[R0]])
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.1
// CHECK-NEXT:  llvm.call @lb_op_layer_boundary(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.2
// CHECK-NEXT:  llvm.call @lb_op_rms_norm(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.3
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.4
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.5
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.6
// CHECK-NEXT:  llvm.call @lb_op_rope(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.7
// CHECK-NEXT:  llvm.call @lb_op_rope(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.8
// CHECK-NEXT:  llvm.call @lb_op_attention(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.9
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.10
// CHECK-NEXT:  llvm.call @lb_op_add(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.11
// CHECK-NEXT:  llvm.call @lb_op_layer_boundary(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.12
// CHECK-NEXT:  llvm.call @lb_op_rms_norm(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.13
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.14
// CHECK-NEXT:  llvm.call @lb_op_gelu(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.15
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.16
// CHECK-NEXT:  llvm.call @lb_op_add(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.17
// CHECK-NEXT:  llvm.call @lb_op_layer_boundary(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.18
// CHECK-NEXT:  llvm.call @lb_op_rms_norm(
// CHECK-NEXT:  llvm.mlir.addressof @lb_op.19
// CHECK-NEXT:  llvm.call @lb_op_matmul(
// CHECK-NEXT:  llvm.return

// A trampoline calls entry 3 (rms_norm) of the runtime's op table.
// CHECK-LABEL: llvm.func internal @lb_op_rms_norm(%arg0: !llvm.ptr, %arg1: !llvm.ptr, %arg2: !llvm.ptr)
// CHECK-NEXT:  llvm.getelementptr %arg1[0, 2, 3] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, array<18 x ptr>)>
// CHECK-NEXT:  %[[FN:.*]] = llvm.load
// CHECK-NEXT:  llvm.call %[[FN]](%arg0, %arg2)

// The plan: 20 values in 6 buffers, the logits in value 19 (computed in
// the output head), the KV cache's shape, the weights by name.
// CHECK: llvm.mlir.global private constant @lb_weight_name.0("embed\00")
// CHECK: llvm.mlir.global private constant @lb_program()
// CHECK-NEXT:  llvm.mlir.constant(3 : i32)
// CHECK-NEXT:  llvm.mlir.constant(20 : i32)
// CHECK-NEXT:  llvm.mlir.constant(6 : i32)
// CHECK-NEXT:  llvm.mlir.constant(12 : i32)
// CHECK-NEXT:  llvm.mlir.constant(19 : i32)
// CHECK-NEXT:  llvm.mlir.constant(1 : i32)
// CHECK-LABEL: llvm.func @lb_get_program() -> !llvm.ptr attributes {lowbit.kernel_data, lowbit.kernel_entry}
// CHECK-NEXT:  llvm.mlir.addressof @lb_program

// The kernel object keeps the program and drops the model.
// KEPT-NOT: lowbit.global_weight
// KEPT-NOT: func.func @forward
// KEPT: llvm.func internal @lb_forward
// KEPT: llvm.func @lb_get_program

// -----

// A graph the executor cannot run is rejected, located at the op.
module {
  lowbit.global_weight @w : !lowbit.qtensor<2x4 : f32> = dense_resource<w> : tensor<32xi8>
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x4xf32> {
    %w = lowbit.weight @w : !lowbit.qtensor<2x4 : f32>
    %e = lowbit.embedding %w[%tokens] : !lowbit.qtensor<2x4 : f32>, tensor<?xi32> -> tensor<?x4xf32>
    // expected-error @+1 {{is not an op the reference executor runs}}
    %s = math.tanh %e : tensor<?x4xf32>
    return %s : tensor<?x4xf32>
  }
}

{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000000000000000000000000000000000000000000000000000000000000000000"
    }
  }
#-}

// -----

// A module without @forward (kernels only) is left alone.
// expected-no-diagnostics
module {
  func.func @kernel_only() {
    return
  }
}
