// RUN: lowbit-opt %s --lowbit-quantize --split-input-file --verify-diagnostics

// NaN weights are rejected, naming the tensor.
// expected-error @+1 {{tensor 'w': q8_0: row 0, column 0 is NaN (counting from row 0)}}
lowbit.global_weight @w : !lowbit.qtensor<1x32 : f32> = dense_resource<w> : tensor<128xi8> {lowbit.target = #lowbit.format<q8_0>}
{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000000C07F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F"
    }
  }
#-}

// -----

// A target whose block does not divide the row.
// expected-error @+1 {{tensor 'w' cannot be stored as q4_k: its row length 32 is not a multiple of the block size 256}}
lowbit.global_weight @w : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 128> {lowbit.target = #lowbit.format<q4_k>}

// -----

// expected-error @+1 {{tensor 'w': /nonexistent: cannot open: No such file or directory}}
lowbit.global_weight @w : !lowbit.qtensor<1x32 : f32> = #lowbit.external<"/nonexistent", offset = 0, size = 128> {lowbit.target = #lowbit.format<q8_0>}
