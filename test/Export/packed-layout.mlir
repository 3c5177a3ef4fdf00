// RUN: not lowbit export %s -o %t.gguf 2>&1 | FileCheck %s
// RUN: not test -e %t.gguf

// CHECK: 'lowbit.global_weight' op has a packed layout for a target; GGUF holds only the row-major GGML layout
lowbit.global_weight @w : !lowbit.qtensor<4x32 : q8_0, #lowbit.layout<rows = 4>> = #lowbit.external<"/nonexistent", offset = 0, size = 136>
