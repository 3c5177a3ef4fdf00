//===- LowBit.h - The lowbit dialect ----------------------------*- C++ -*-===//
#ifndef LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_H
#define LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_H

#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/TensorNames.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/Support/MemoryBuffer.h"

#include <memory>

#include "LowBit/IR/LowBitDialect.h.inc"
#include "LowBit/IR/LowBitEnums.h.inc"
#define GET_ATTRDEF_CLASSES
#include "LowBit/IR/LowBitAttrs.h.inc"
#define GET_TYPEDEF_CLASSES
#include "LowBit/IR/LowBitTypes.h.inc"
#define GET_OP_CLASSES
#include "LowBit/IR/LowBitOps.h.inc"

namespace mlir::lowbit {
/// Module attribute holding the ordered GGUF metadata (array of #lowbit.kv).
constexpr llvm::StringLiteral kMetadataAttrName = "lowbit.metadata";
/// Module attributes recording the source file's GGUF version and alignment.
constexpr llvm::StringLiteral kGGUFVersionAttrName = "lowbit.gguf_version";
constexpr llvm::StringLiteral kSourceAttrName = "lowbit.source";

/// Module attribute holding the #lowbit.model (architecture and typed
/// hyperparameters).
constexpr llvm::StringLiteral kModelAttrName = "lowbit.model";

/// The lowbit.model field that the GGUF key `key` of architecture `arch`
/// maps to ("llama.attention.head_count" -> "head_count"), or "" when the key
/// is not a hyperparameter of the table.
llvm::StringRef modelFieldOfKey(llvm::StringRef arch, llvm::StringRef key);
/// Whether `field` is a float field of the table (else an integer).
bool isFloatModelField(llvm::StringRef field);
/// The module's lowbit.model, or null.
ModelAttr getModelAttr(ModuleOp module);

/// Bytes an ONNX tensor of `type` takes in a file (4-bit types two to a
/// byte, bool one byte); -1 for a dynamic shape or a type without a size.
int64_t getONNXStorageBytes(RankedTensorType type);

/// GGUF value type names as used in #lowbit.array ("u32", "string", ...).
llvm::StringRef ggufTypeName(uint32_t type);
std::optional<uint32_t> parseGGUFTypeName(llvm::StringRef name);

/// Bytes of a weight's data wherever they are (#lowbit.external file bytes,
/// mmap'ed and kept mapped for the life of the process, or a dense_resource
/// blob). Null with `error` set when the data cannot be reached.
const uint8_t *getWeightBytes(GlobalWeightOp op, std::string &error);
/// The same for an ONNX tensor; its dense elements (non-splat, not i1) are
/// read in place too. Null with `error` set otherwise.
const uint8_t *getONNXTensorBytes(ONNXInitializerOp op, std::string &error);

/// Checks the hex blobs of a textual module's `dialect_resources` before
/// MLIR's parser sees them: their first 4 bytes are the blob's alignment,
/// and MLIR 22 allocates with an alignment of 0 or an absurd one (2^31)
/// without checking, which aborts the process. False with `error` =
/// "<name>:<line>:<col>: ..." for a blob lowbit refuses (alignment not a
/// power of two in [1, 4096]).
bool checkResourceBlobAlignments(llvm::StringRef source, llvm::StringRef name,
                                 std::string &error);

/// The buffer MLIR's parser is given for a textual module: a copy of
/// `source` that ends in a newline (MemoryBuffer adds the NUL), after
/// checkResourceBlobAlignments. MLIR 22's lexer steps over the terminating
/// NUL when a file ends inside a string literal or right after '@', and the
/// parser then reads past the buffer; a final newline ends both tokens
/// first. Null with `error` set when the blobs are refused.
std::unique_ptr<llvm::MemoryBuffer>
makeParserBuffer(llvm::StringRef source, llvm::StringRef name,
                 std::string &error);

/// The name llama.cpp gives the weight: its role's GGUF tensor name (the one
/// role <-> name map, lowbit/GGUF/TensorNames.h), or its symbol when it has
/// no role. What --tensor-type regexes, imatrix entries and the presets'
/// layer counting see.
std::string ggufTensorName(GlobalWeightOp weight);
/// The weight's role: its `role` attribute or, for IR written without roles,
/// the role the one map gives its symbol (a llama.cpp-style name).
RoleAttr getWeightRole(GlobalWeightOp weight);
/// getWeightRole as the MLIR-free role the quantization rules read (an empty
/// kind when the weight has none).
::lowbit::gguf::TensorRole getWeightTensorRole(GlobalWeightOp weight);

/// Reads of the ordered module metadata (lowbit.metadata); a
/// #lowbit.model_key reads as the lowbit.model field it stands for.
Attribute getMetadata(ModuleOp module, llvm::StringRef key);
std::optional<int64_t> getMetadataInt(ModuleOp module, llvm::StringRef key);
std::optional<std::string> getMetadataString(ModuleOp module,
                                             llvm::StringRef key);
/// Replaces the value of `key` where it stands, or appends it.
void setMetadata(ModuleOp module, llvm::StringRef key, Attribute value);
/// Removes `key` (if present) and appends it with `value`: what llama.cpp's
/// gguf_set_val_* does, so quantized files list keys in llama.cpp's order.
void appendMetadata(ModuleOp module, llvm::StringRef key, Attribute value);
} // namespace mlir::lowbit

#endif // LOWBIT_DIALECT_LOWBIT_IR_LOWBIT_H
