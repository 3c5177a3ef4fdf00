// An array_ref whose source no longer holds the array is an error.
// RUN: lowbit-gguf make-fixture all-types -o %t.src.gguf
// RUN: sed -e 's|SRC|%t.src.gguf|' %s > %t.mlir
// RUN: not lowbit export %t.mlir -o %t.gguf 2>&1 | FileCheck %s
// RUN: not test -e %t.gguf

// CHECK: error: {{.*}}metadata 'test.array.i32' refers to {{.*}}.src.gguf, which no longer holds an array of 11 i32 under that key
module attributes {lowbit.metadata = [#lowbit.kv<"test.array.i32", #lowbit.array_ref<"SRC", i32 x 11>>]} {}
