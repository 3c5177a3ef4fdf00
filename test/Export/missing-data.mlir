// RUN: rm -rf %t && mkdir -p %t
// RUN: not lowbit export %s -o %t/out.gguf 2>&1 | FileCheck %s
// RUN: ls %t | count 0

// CHECK: error: {{.*}}missing-data.mlir:[[# @LINE + 1]]:1: 'lowbit.global_weight' op /nonexistent/model.gguf: cannot open: No such file or directory
lowbit.global_weight @w : !lowbit.qtensor<2x32 : q8_0> = #lowbit.external<"/nonexistent/model.gguf", offset = 0, size = 68>
