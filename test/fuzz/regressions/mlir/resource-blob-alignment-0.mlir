// A weight packed for a target's kernels (rows interleaved): the executor
// reads row-major weights.
module {
  lowbit.global_weight @embed : !lowbit.qtensor<8x32 : q8_0> = dense_resource<embed> : tensor<272xi8>
  lowbit.global_weight @out : !lowbit.qtensor<8x32 : q8_0, #lowbit.layout<rows = 4>> = dense_resource<out> : tensor<136xi8>
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x8xf32> {
    %w = lowbit.weight @embed : !lowbit.qtensor<8x32 : q8_0>
    %x = lowbit.embedding %w[%tokens] : !lowbit.qtensor<8x32 : q8_0>, tensor<?xi32> -> tensor<?x32xf32>
    %o = lowbit.weight @out : !lowbit.qtensor<8x32 : q8_0, #lowbit.layout<rows = 4>>
    %y = lowbit.matmul %x, %o : tensor<?x32xf32>, !lowbit.qtensor<8x32 : q8_0, #lowbit.layout<rows = 4>> -> tensor<?x8xf32>
    return %y : tensor<?x8xf32>
  }
}
{-#
  dialect_resources: {
    builtin: {
      embed: "0x040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
      out: "0x000000000000000000000000000000000000000000000000000000000000"
    }
  }
#-}
