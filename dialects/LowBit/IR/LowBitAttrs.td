//===- LowBitAttrs.td - lowbit attributes ------------------*- tablegen -*-===//
#ifndef LOWBIT_ATTRS_TD
#define LOWBIT_ATTRS_TD

include "LowBit/IR/LowBitDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

class LowBit_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<LowBit_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def LowBit_FormatAttr : LowBit_Attr<"Format", "format"> {
  let summary = "A weight format from the codec library's format table";
  let description = [{
    Names one row of `FormatTable.def`: block size, bytes per block, GGML type
    id and kind (float, linear scale/min, K-quant super-blocks, codebook,
    ternary) all come from that table, so there is one definition.

    ```mlir
    #lowbit.format<q4_k>
    ```
  }];
  let parameters = (ins "::lowbit::formats::Format":$format);
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    const ::lowbit::formats::FormatInfo &getInfo() const;
    ::llvm::StringRef getName() const;
    unsigned getBlockSize() const { return getInfo().blockSize; }
    unsigned getBlockBytes() const { return getInfo().blockBytes; }
    double getBitsPerWeight() const { return getInfo().bitsPerWeight(); }
    bool isFloat() const;
    /// Bytes of `rows` rows of `cols` weights; 0 if cols is not a block multiple.
    uint64_t getByteSize(uint64_t rows, uint64_t cols) const;
  }];
}

def LowBit_LayoutAttr : LowBit_Attr<"Layout", "layout"> {
  let summary = "A packed weight layout for a target";
  let description = [{
    `rows` consecutive rows have their blocks interleaved so one SIMD load
    serves several output rows. `rows = 1` is the plain GGML row-major layout.

    ```mlir
    #lowbit.layout<rows = 4>
    ```
  }];
  let parameters = (ins "uint32_t":$rows);
  let assemblyFormat = "`<` `rows` `=` $rows `>`";
  let genVerifyDecl = 1;
}

def LowBit_ExternalDataAttr : LowBit_Attr<"ExternalData", "external"> {
  let summary = "Bytes of a weight stored in a file (mmap'ed when used)";
  let description = [{
    The weight's bytes are `size` bytes at absolute byte `offset` of `path`.
    The IR never holds the data itself, so a 7B model prints in kilobytes.

    ```mlir
    #lowbit.external<"/models/m.gguf", offset = 1536, size = 4096>
    ```
  }];
  let parameters = (ins StringRefParameter<"file path">:$path,
                        "uint64_t":$offset, "uint64_t":$size);
  let assemblyFormat = "`<` $path `,` `offset` `=` $offset `,` `size` `=` $size `>`";
}

def LowBit_GGUFArrayAttr : LowBit_Attr<"GGUFArray", "array"> {
  let summary = "A typed GGUF metadata array";
  let description = [{
    Keeps the GGUF element type (also of an empty array) so metadata round-
    trips exactly. Elements are integer attributes of types ui8/si8/.../si64,
    `true`/`false`, f32/f64 floats, strings, or nested `#lowbit.array`s.

    ```mlir
    #lowbit.array<u32: [1 : ui32, 2 : ui32]>
    #lowbit.array<string: []>
    ```
  }];
  let parameters = (ins "uint32_t":$elementType, "::mlir::ArrayAttr":$elements);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def LowBit_GGUFArrayRefAttr : LowBit_Attr<"GGUFArrayRef", "array_ref"> {
  let summary = "A large GGUF metadata array left in its source file";
  let description = [{
    Tokenizer vocabularies hold 32k-256k entries; printing them would make the
    IR megabytes. The array stays in `path` under the same key and is read back
    by the exporter, which checks its element type and count.

    ```mlir
    #lowbit.array_ref<"/models/m.gguf", string x 32000>
    ```
  }];
  let parameters = (ins StringRefParameter<"file path">:$path,
                        "uint32_t":$elementType, "uint64_t":$count);
  let hasCustomAssemblyFormat = 1;
}

def LowBit_MetadataEntryAttr : LowBit_Attr<"MetadataEntry", "kv"> {
  let summary = "One ordered GGUF key/value pair";
  let description = [{
    Metadata is an ordered list of these on the module
    (`lowbit.metadata`); order is kept because GGUF files are ordered.

    ```mlir
    #lowbit.kv<"llama.block_count", 5 : ui32>
    ```
  }];
  let parameters = (ins StringRefParameter<"key">:$key, "::mlir::Attribute":$value);
  let assemblyFormat = "`<` $key `,` $value `>`";
  let genVerifyDecl = 1;
}

def LowBit_RoleAttr : LowBit_Attr<"Role", "role"> {
  let summary = "What a weight is in its model";
  let description = [{
    Set by importers on every `lowbit.global_weight` they recognise: the
    tensor kind (llama.cpp's vocabulary: `token_embd`, `attn_q`, `ffn_down`,
    `ffn_up_exps`, ...; a bias is `<kind>.bias`), the layer (block) index and,
    for a per-expert tensor, the expert. Passes ask roles, not symbol names;
    the GGUF tensor name of a role comes from the one map in
    `lowbit/GGUF/TensorNames.h`.

    ```mlir
    #lowbit.role<token_embd>
    #lowbit.role<attn_q, layer = 3>
    #lowbit.role<ffn_up, layer = 7, expert = 5>
    ```
  }];
  let parameters = (ins StringRefParameter<"tensor kind">:$kind,
                        DefaultValuedParameter<"int64_t", "-1">:$layer,
                        DefaultValuedParameter<"int64_t", "-1">:$expert);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def LowBit_ModelAttr : LowBit_Attr<"Model", "model"> {
  let summary = "A model's architecture and hyperparameters";
  let description = [{
    The module attribute `lowbit.model`: the architecture and its
    hyperparameters as typed values (integers with their GGUF integer type,
    floats as f32/f64), under names from one table (ModelMetadata.cpp:
    `block_count`, `head_count`, `rms_epsilon`, ...). The GGUF importer moves
    the architecture keys here and leaves `#lowbit.model_key` in their place
    in `lowbit.metadata`; the GGUF exporter writes each such key from this
    attribute, so editing a value here changes the exported key. Passes read
    hyperparameters here, never from GGUF keys.

    ```mlir
    #lowbit.model<"llama", {block_count = 5 : ui32, head_count = 8 : ui32,
                            rms_epsilon = 9.99999974E-6 : f32}>
    ```
  }];
  let parameters = (ins StringRefParameter<"architecture">:$architecture,
                        "::mlir::DictionaryAttr":$fields);
  let assemblyFormat = "`<` $architecture `,` $fields `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// A field's value (nullopt when absent).
    std::optional<int64_t> getInt(::llvm::StringRef field) const;
    std::optional<double> getFloat(::llvm::StringRef field) const;
    int64_t getBlockCount() const { return getInt("block_count").value_or(0); }
    int64_t getHeadCount() const { return getInt("head_count").value_or(0); }
    int64_t getHeadCountKV() const {
      return getInt("head_count_kv").value_or(getHeadCount());
    }
    int64_t getExpertCount() const { return getInt("expert_count").value_or(0); }
  }];
}

def LowBit_ModelKeyAttr : LowBit_Attr<"ModelKey", "model_key"> {
  let summary = "A GGUF key whose value lives in the module's lowbit.model";
  let description = [{
    Stands in `lowbit.metadata` for an architecture key (keeping its place in
    the file's order); the exporter writes the `lowbit.model` field the key
    maps to.

    ```mlir
    #lowbit.kv<"llama.block_count", #lowbit.model_key>
    ```
  }];
}

def LowBit_RopeModeAttr : I32EnumAttr<"RopeMode", "rotary embedding pairing", [
    I32EnumAttrCase<"normal", 0>,  // pairs (2i, 2i+1), llama in GGUF
    I32EnumAttrCase<"neox", 2>     // pairs (i, i + d/2), GPT-NeoX, qwen2
  ]> {
  let cppNamespace = "::mlir::lowbit";
  let genSpecializedAttr = 0;
}
def LowBit_RopeModeEnumAttr : EnumAttr<LowBit_Dialect, LowBit_RopeModeAttr, "rope_mode"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // LOWBIT_ATTRS_TD
