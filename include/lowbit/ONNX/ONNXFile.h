//===- ONNXFile.h - Read and check ONNX model files -------------*- C++ -*-===//
//
// The one reader of ONNX files (no MLIR): parses a ModelProto with Debian's
// ONNX protobuf library, checks what the rest of lowbit relies on (names bind,
// nodes in topological order, every tensor's bytes inside its file and of the
// size its shape needs), and locates every tensor's bytes in a file so that
// importers reference them by offset instead of copying them: raw_data inside
// the .onnx file itself, or external data (data_location = EXTERNAL).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ONNX_ONNXFILE_H
#define LOWBIT_ONNX_ONNXFILE_H

#include "lowbit/ONNX/Kernels.h"
#include "lowbit/Support/MappedFile.h"

#include "onnx/onnx_pb.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace lowbit::onnxfile {

/// `size` bytes at `offset` of the file `path`.
struct FileBytes {
  std::string path;
  uint64_t offset = 0;
  uint64_t size = 0;
  /// True when the model stored them in an external data file.
  bool external = false;
};

struct Model {
  std::string path;
  std::shared_ptr<MappedFile> file;
  onnx::ModelProto proto;
  /// Tensors (initializers, Constant values, tensor attributes, also in
  /// subgraphs) whose bytes are in a file. Their raw_data is cleared in
  /// `proto`: the bytes are only read through the mapping.
  std::unordered_map<const onnx::TensorProto *, FileBytes> fileBytes;
  /// How many value_info entries each graph declared in the file; entries
  /// after these were added by shape inference.
  std::unordered_map<const onnx::GraphProto *, int> declaredValueInfo;
};

/// Reads `path`, checks it and runs ONNX shape inference (types of values
/// the file does not declare are appended to each graph's value_info).
/// Errors name the file, and the offset, node or tensor at fault.
std::unique_ptr<Model> readModel(const std::string &path, std::string &error);

/// Bits per element of an ONNX TensorProto data type (4-bit types included);
/// 0 for strings and unknown types.
int64_t bitsPerElement(int32_t dataType);

/// The bytes `count` elements of `dataType` take (4-bit types packed two per
/// byte, rounded up); -1 for types without a fixed size.
int64_t storageBytes(int32_t dataType, int64_t count);

/// ONNX's name of a data type ("FLOAT", "INT4", ...).
const char *dataTypeName(int32_t dataType);

/// The values of `tensor` (raw_data or typed fields; external data read from
/// the folder `base`) as an executor tensor. False with `error` for types
/// the executor does not hold (strings, 4-bit, complex).
bool readTensor(const onnx::TensorProto &tensor, const std::string &base,
                onnxrt::Tensor &out, std::string &error);

/// Reads `folder`/PREFIX_0.pb, PREFIX_1.pb, ... (ONNX's test-data layout:
/// serialized TensorProtos) until the first missing index; false with
/// `error` naming the file when one does not read.
bool readTensorFiles(const std::string &folder, const std::string &prefix,
                     std::vector<onnxrt::Tensor> &out, std::string &error);

/// Writes `tensor` named `name` as a serialized TensorProto (raw_data) at
/// `path`, atomically. False for element types without an encoder here.
bool writeTensorFile(const std::string &path, const std::string &name,
                     const onnxrt::Tensor &tensor, std::string &error);

/// Decodes `count` little-endian elements of `dataType` at `bytes` into
/// doubles; false for types without a decoder here.
bool decodeElements(int32_t dataType, const uint8_t *bytes, int64_t count,
                    std::vector<double> &out);

/// True when `path` starts with ONNX's protobuf framing of a ModelProto
/// (field 1 ir_version, varint), i.e. is worth trying as an ONNX file.
bool looksLikeONNX(const std::string &path);

} // namespace lowbit::onnxfile

#endif // LOWBIT_ONNX_ONNXFILE_H
