//===- LowBitDialect.td - The lowbit dialect ---------------*- tablegen -*-===//
#ifndef LOWBIT_DIALECT_TD
#define LOWBIT_DIALECT_TD

include "mlir/IR/DialectBase.td"

def LowBit_Dialect : Dialect {
  let name = "lowbit";
  let cppNamespace = "::mlir::lowbit";
  let summary = "Quantized neural-network models at the level of layers";
  let description = [{
    The lowbit dialect describes a model as a graph of model-level ops
    (embedding, matmul against a quantized weight, norms, RoPE, attention with
    a KV cache, activations) over f32 activations and weights of any block
    format. Weights are module-level symbols (`lowbit.global_weight`) whose
    bytes live outside the IR: in the source file (`#lowbit.external`) or in a
    resource blob after quantization. Formats come from the codec library's
    single table (`lowbit/Formats/FormatTable.def`).
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

#endif // LOWBIT_DIALECT_TD
