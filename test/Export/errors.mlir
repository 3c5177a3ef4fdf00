// Export failures are diagnosed on the offending op and leave no file.
// RUN: rm -rf %t && mkdir -p %t
// RUN: not lowbit export %s -o %t/out.gguf 2>&1 | FileCheck %s
// RUN: ls %t | count 0

// CHECK: error: {{.*}}errors.mlir:[[# @LINE + 1]]:1: 'lowbit.global_weight' op format nf4_g64 has no GGUF type; choose a GGML format or export to ONNX
lowbit.global_weight @w : !lowbit.qtensor<2x64 : nf4_g64> = dense_resource<blob> : tensor<68xi8>

{-#
  dialect_resources: {
    builtin: {
      blob: "0x04000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    }
  }
#-}
