//===- LowBitTypes.td - lowbit types -----------------------*- tablegen -*-===//
#ifndef LOWBIT_TYPES_TD
#define LOWBIT_TYPES_TD

include "LowBit/IR/LowBitAttrs.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

class LowBit_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<LowBit_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def LowBit_QTensorType : LowBit_Type<"QTensor", "qtensor"> {
  let summary = "A weight tensor stored in a block format";
  let description = [{
    Logical shape (row-major, the last dimension contiguous: `[rows, cols]`
    for a matmul weight of `rows` outputs), the format, and an optional packed
    layout for a target. Unlike `!quant.uniform` this covers GGML super-block
    formats, codebooks and interleaved layouts with one parametric type.

    ```mlir
    !lowbit.qtensor<512x64 : q4_0>
    !lowbit.qtensor<64 : f32>
    !lowbit.qtensor<4096x4096 : q4_k, #lowbit.layout<rows = 8>>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape,
                        "::mlir::lowbit::FormatAttr":$format,
                        OptionalParameter<"::mlir::lowbit::LayoutAttr">:$layout);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    TypeBuilder<(ins "::llvm::ArrayRef<int64_t>":$shape,
                     "::lowbit::formats::Format":$format), [{
      return $_get($_ctxt, shape, FormatAttr::get($_ctxt, format), LayoutAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    int64_t getNumElements() const;
    int64_t getRowLength() const { return getShape().back(); }
    int64_t getNumRows() const { return getNumElements() / getRowLength(); }
    /// Total bytes of the stored data.
    uint64_t getByteSize() const;
    /// Same shape and layout, another format.
    QTensorType withFormat(::lowbit::formats::Format format) const;
  }];
}

def LowBit_KVCacheType : LowBit_Type<"KVCache", "kv_cache"> {
  let summary = "Key/value cache of every attention layer of a model";
  let description = [{
    Holds keys and values of `layers` layers for up to `context` positions,
    `kv_heads` heads of `head_dim` each, in f32.

    ```mlir
    !lowbit.kv_cache<layers = 5, context = 512, kv_heads = 4, head_dim = 8>
    ```
  }];
  let parameters = (ins "int64_t":$layers, "int64_t":$contextLength,
                        "int64_t":$kvHeads, "int64_t":$headDim);
  let assemblyFormat = [{
    `<` `layers` `=` $layers `,` `context` `=` $contextLength `,` `kv_heads` `=` $kvHeads
    `,` `head_dim` `=` $headDim `>`
  }];
  let genVerifyDecl = 1;
}

#endif // LOWBIT_TYPES_TD
