//===- LowBitONNXOps.td - ONNX graphs, imported generically -*- tablegen -*-===//
//
// An ONNX model is first imported node for node: every node becomes a
// lowbit.onnx.node carrying its op type, domain and attributes, so any graph
// round-trips untouched. Patterns then turn the nodes lowbit understands into
// lowbit ops (matmul over a quantizable weight, norms, ...).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ONNX_OPS_TD
#define LOWBIT_ONNX_OPS_TD

def LowBit_ONNXInitializerOp : LowBit_Op<"onnx.initializer",
    [Symbol, IsolatedFromAbove]> {
  let summary = "A tensor stored in an ONNX model";
  let description = [{
    An initializer of an ONNX graph, or the value of a node's tensor attribute
    (a `Constant` node's `value`). `data` is `#lowbit.external` (the bytes in
    the .onnx file or in an external data file, mmap'ed when used, never
    copied into the IR), a dense elements attribute (values the file stored in
    its typed fields), or a `dense_resource` blob. `external` records that the
    model kept the bytes in an external data file, so an exporter does too.
    `name` is the tensor's ONNX name where it differs from the symbol (ONNX
    names need not be unique across subgraphs; symbols are).

    ```mlir
    lowbit.onnx.initializer @W : tensor<4096x4096xf16>
        = #lowbit.external<"/m/model.onnx.data", offset = 0, size = 33554432> {external}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       TypeAttrOf<AnyRankedTensor>:$type,
                       AnyAttr:$data,
                       UnitAttr:$external,
                       OptionalAttr<StrAttr>:$name);
  let assemblyFormat = "$sym_name `:` $type `=` $data attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    RankedTensorType getTensorType() {
      return ::llvm::cast<RankedTensorType>(getType());
    }
    /// The tensor's name in the ONNX model.
    ::llvm::StringRef getONNXName() {
      return getName() ? *getName() : getSymName();
    }
  }];
}

def LowBit_ONNXConstantOp : LowBit_Op<"onnx.constant",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "The value of an ONNX initializer";
  let description = [{
    Reads a `lowbit.onnx.initializer`. The constants at the start of a graph's
    block are that graph's initializers, in the model's order.

    ```mlir
    %w = lowbit.onnx.constant @W : tensor<4096x4096xf16>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$tensor);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$tensor attr-dict `:` type($result)";
}

def LowBit_ONNXNoneOp : LowBit_Op<"onnx.none", [Pure]> {
  let summary = "An omitted optional input of an ONNX node";
  let description = [{
    ONNX leaves an optional input out by naming it "" while keeping the
    positions of the inputs after it; this value stands in that position.

    ```mlir
    %none = lowbit.onnx.none
    %y = lowbit.onnx.node "Clip"(%x, %none, %max) : (...) -> tensor<4xf32>
    ```
  }];
  let results = (outs NoneType:$result);
  let assemblyFormat = "attr-dict";
}

def LowBit_ONNXNodeOp : LowBit_Op<"onnx.node", [RecursiveMemoryEffects]> {
  let summary = "An ONNX node, imported as it is";
  let description = [{
    `op_type` and `domain` name the operator (none or "" is the default domain,
    "com.microsoft" ONNX Runtime's contrib ops). `onnx_attributes` holds the
    node's attributes: FLOAT as f32, INT as i64, STRING as a string, FLOATS
    and INTS as dense arrays, STRINGS as an array of strings, TENSOR as a
    symbol reference to a `lowbit.onnx.initializer`. GRAPH attributes are
    the regions, named in order by `subgraphs`; each region's block takes
    the subgraph's inputs and ends in `lowbit.onnx.yield`. `outputs` are the
    ONNX names of the results ("" for an omitted optional output).
    `attribute_order` keeps the file's order where it is not sorted. Results
    whose type neither the file nor ONNX shape inference gives are `none`.

    ```mlir
    %y = lowbit.onnx.node "Gemm"(%a, %b, %c) {domain = "",
        onnx_attributes = {transB = 1 : i64}, name = "fc", outputs = ["y"]}
        : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$op_type, Variadic<AnyType>:$inputs,
                       OptionalAttr<StrAttr>:$domain,
                       DefaultValuedAttr<DictionaryAttr, "{}">:$onnx_attributes,
                       OptionalAttr<StrAttr>:$name,
                       OptionalAttr<StrArrayAttr>:$outputs,
                       OptionalAttr<StrArrayAttr>:$subgraphs,
                       OptionalAttr<StrArrayAttr>:$attribute_order,
                       OptionalAttr<StrAttr>:$doc_string);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region VariadicRegion<SizedRegion<1>>:$graphs);
  let assemblyFormat = [{
    $op_type `(` $inputs `)` attr-dict `:` functional-type($inputs, $results)
    $graphs
  }];
  let hasVerifier = 1;
}

def LowBit_ONNXYieldOp : LowBit_Op<"onnx.yield",
    [Pure, Terminator, ParentOneOf<["ONNXNodeOp"]>]> {
  let summary = "The outputs of an ONNX subgraph";
  let description = [{
    Ends the block of an `If`/`Loop`/`Scan` body. The attributes carry what
    the subgraph declares: its name, the ONNX names of its inputs and
    outputs, and the dim_param names of their dimensions.
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // LOWBIT_ONNX_OPS_TD
