//===- ONNXFile.cpp - Read and check ONNX model files ---------------------===//
#include "lowbit/ONNX/ONNXFile.h"

#include "lowbit/Formats/Formats.h"

#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace lowbit::onnxfile {
namespace formats = ::lowbit::formats;

//===----------------------------------------------------------------------===//
// Data types
//===----------------------------------------------------------------------===//

int64_t bitsPerElement(int32_t dataType) {
  switch (dataType) {
  case onnx::TensorProto::FLOAT:
  case onnx::TensorProto::INT32:
  case onnx::TensorProto::UINT32:
    return 32;
  case onnx::TensorProto::UINT8:
  case onnx::TensorProto::INT8:
  case onnx::TensorProto::BOOL:
  case 17: // FLOAT8E4M3FN
  case 18: // FLOAT8E4M3FNUZ
  case 19: // FLOAT8E5M2
  case 20: // FLOAT8E5M2FNUZ
    return 8;
  case onnx::TensorProto::UINT16:
  case onnx::TensorProto::INT16:
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    return 16;
  case onnx::TensorProto::INT64:
  case onnx::TensorProto::UINT64:
  case onnx::TensorProto::DOUBLE:
  case onnx::TensorProto::COMPLEX64:
    return 64;
  case onnx::TensorProto::COMPLEX128:
    return 128;
  case 21: // UINT4
  case 22: // INT4
    return 4;
  default:
    return 0;
  }
}

int64_t storageBytes(int32_t dataType, int64_t count) {
  int64_t bits = bitsPerElement(dataType);
  if (bits == 0 || count < 0 || count > (INT64_MAX - 7) / bits)
    return -1;
  return (count * bits + 7) / 8;
}

const char *dataTypeName(int32_t dataType) {
  static const char *names[] = {
      "UNDEFINED",    "FLOAT",          "UINT8",      "INT8",
      "UINT16",       "INT16",          "INT32",      "INT64",
      "STRING",       "BOOL",           "FLOAT16",    "DOUBLE",
      "UINT32",       "UINT64",         "COMPLEX64",  "COMPLEX128",
      "BFLOAT16",     "FLOAT8E4M3FN",   "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
      "FLOAT8E5M2FNUZ", "UINT4",        "INT4"};
  if (dataType >= 0 && dataType < int32_t(sizeof(names) / sizeof(names[0])))
    return names[dataType];
  return "unknown";
}

bool decodeElements(int32_t dataType, const uint8_t *bytes, int64_t count,
                    std::vector<double> &out) {
  out.resize(count);
  auto load = [&](auto zero) {
    using T = decltype(zero);
    for (int64_t i = 0; i < count; ++i) {
      T v;
      std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
      out[i] = double(v);
    }
  };
  switch (dataType) {
  case onnx::TensorProto::FLOAT:
    load(float());
    return true;
  case onnx::TensorProto::DOUBLE:
    load(double());
    return true;
  case onnx::TensorProto::UINT8:
  case onnx::TensorProto::BOOL:
    load(uint8_t());
    return true;
  case onnx::TensorProto::INT8:
    load(int8_t());
    return true;
  case onnx::TensorProto::UINT16:
    load(uint16_t());
    return true;
  case onnx::TensorProto::INT16:
    load(int16_t());
    return true;
  case onnx::TensorProto::INT32:
    load(int32_t());
    return true;
  case onnx::TensorProto::UINT32:
    load(uint32_t());
    return true;
  case onnx::TensorProto::INT64:
    load(int64_t());
    return true;
  case onnx::TensorProto::UINT64:
    load(uint64_t());
    return true;
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16: {
    // The codec library's half and bfloat16 decoders (one definition).
    std::vector<float> floats(count);
    formats::dequantizeRow(dataType == onnx::TensorProto::FLOAT16
                               ? formats::Format::F16
                               : formats::Format::BF16,
                           bytes, floats.data(), count);
    out.assign(floats.begin(), floats.end());
    return true;
  }
  default:
    return false;
  }
}

bool readTensor(const onnx::TensorProto &tensor, const std::string &base,
                onnxrt::Tensor &out, std::string &error) {
  std::string label = "tensor '" + tensor.name() + "'";
  out.dataType = tensor.data_type();
  out.shape.assign(tensor.dims().begin(), tensor.dims().end());
  int64_t count = 1;
  for (int64_t d : out.shape) {
    if (d < 0 || (d && count > (int64_t(1) << 40) / d)) {
      error = label + ": bad shape";
      return false;
    }
    count *= d;
  }
  int64_t bytes = storageBytes(out.dataType, count);
  std::vector<double> typed;
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    uint64_t offset = 0;
    for (const auto &e : tensor.external_data()) {
      if (e.key() == "location")
        location = e.value();
      else if (e.key() == "offset")
        offset = std::strtoull(e.value().c_str(), nullptr, 10);
    }
    if (location.empty() || location[0] == '/' ||
        location.find("..") != std::string::npos) {
      error = label + ": bad external data location";
      return false;
    }
    auto file = MappedFile::openCached(base + "/" + location, error);
    const uint8_t *p = file && bytes >= 0
                           ? file->range(offset, uint64_t(bytes), error)
                           : nullptr;
    if (!p || !decodeElements(out.dataType, p, count, out.values)) {
      if (error.empty())
        error = label + ": type " + dataTypeName(out.dataType) +
                " is not read by the executor";
      return false;
    }
    return true;
  }
  if (tensor.has_raw_data()) {
    if (bytes < 0 || int64_t(tensor.raw_data().size()) != bytes ||
        !decodeElements(out.dataType,
                        reinterpret_cast<const uint8_t *>(
                            tensor.raw_data().data()),
                        count, out.values)) {
      error = label + ": raw_data of type " + dataTypeName(out.dataType) +
              " not read by the executor";
      return false;
    }
    return true;
  }
  switch (out.dataType) {
  case onnx::TensorProto::FLOAT:
    out.values.assign(tensor.float_data().begin(), tensor.float_data().end());
    break;
  case onnx::TensorProto::DOUBLE:
    out.values.assign(tensor.double_data().begin(), tensor.double_data().end());
    break;
  case onnx::TensorProto::INT64:
    out.values.assign(tensor.int64_data().begin(), tensor.int64_data().end());
    break;
  case onnx::TensorProto::UINT32:
  case onnx::TensorProto::UINT64:
    out.values.assign(tensor.uint64_data().begin(), tensor.uint64_data().end());
    break;
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16: {
    std::vector<uint8_t> raw;
    for (int32_t v : tensor.int32_data()) {
      raw.push_back(uint8_t(v));
      raw.push_back(uint8_t(v >> 8));
    }
    if (!decodeElements(out.dataType, raw.data(),
                        int64_t(tensor.int32_data_size()), out.values))
      return false;
    break;
  }
  case onnx::TensorProto::STRING:
  case onnx::TensorProto::COMPLEX64:
  case onnx::TensorProto::COMPLEX128:
  case 21:
  case 22:
    error = label + ": type " + dataTypeName(out.dataType) +
            " is not read by the executor";
    return false;
  default:
    out.values.assign(tensor.int32_data().begin(), tensor.int32_data().end());
    break;
  }
  if (int64_t(out.values.size()) != count) {
    error = label + ": holds " + std::to_string(out.values.size()) +
            " values, its shape needs " + std::to_string(count);
    return false;
  }
  (void)typed;
  return true;
}

bool readTensorFiles(const std::string &folder, const std::string &prefix,
                     std::vector<onnxrt::Tensor> &out, std::string &error) {
  out.clear();
  for (int i = 0;; ++i) {
    std::string path = folder + "/" + prefix + "_" + std::to_string(i) + ".pb";
    if (!std::filesystem::exists(path))
      return true;
    std::string bytes;
    onnx::TensorProto proto;
    onnxrt::Tensor tensor;
    if (!readWholeFile(path, bytes, error))
      return false;
    if (bytes.size() > size_t(INT_MAX) || !proto.ParseFromString(bytes)) {
      error = path + ": not an ONNX TensorProto";
      return false;
    }
    if (!readTensor(proto, folder, tensor, error)) {
      error = path + ": " + error;
      return false;
    }
    out.push_back(std::move(tensor));
  }
}

bool writeTensorFile(const std::string &path, const std::string &name,
                     const onnxrt::Tensor &tensor, std::string &error) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(tensor.dataType);
  for (int64_t d : tensor.shape)
    proto.add_dims(d);
  std::string raw;
  auto put = [&](auto sample) {
    using T = decltype(sample);
    for (double v : tensor.values) {
      T t = T(v);
      raw.append(reinterpret_cast<const char *>(&t), sizeof(T));
    }
  };
  switch (tensor.dataType) {
  case onnx::TensorProto::FLOAT:
    put(float());
    break;
  case onnx::TensorProto::DOUBLE:
    put(double());
    break;
  case onnx::TensorProto::INT64:
    put(int64_t());
    break;
  case onnx::TensorProto::INT32:
    put(int32_t());
    break;
  case onnx::TensorProto::INT8:
    put(int8_t());
    break;
  case onnx::TensorProto::UINT8:
  case onnx::TensorProto::BOOL:
    put(uint8_t());
    break;
  default:
    error = path + ": no writer for " + std::string(dataTypeName(tensor.dataType)) +
            " tensors yet";
    return false;
  }
  proto.set_raw_data(raw);
  std::string bytes = proto.SerializeAsString();
  AtomicFileWriter writer(path);
  return writer.open(error) && writer.write(bytes.data(), bytes.size(), error) &&
         writer.commit(error);
}

bool looksLikeONNX(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  char first = 0;
  // ModelProto's first field is ir_version (field 1, varint): tag byte 0x08.
  return in.get(first) && first == 0x08;
}

//===----------------------------------------------------------------------===//
// Wire-format scan: where each tensor's raw_data lies in the file
//===----------------------------------------------------------------------===//

namespace {

/// Byte range of one TensorProto's raw_data (size 0 offset 0 when absent).
struct TensorScan {
  bool hasRaw = false;
  uint64_t offset = 0, size = 0;
};
struct GraphScan;
struct AttributeScan {
  TensorScan t;
  std::vector<GraphScan> g;
  std::vector<GraphScan> graphs;
  std::vector<TensorScan> tensors;
};
struct NodeScan {
  std::vector<AttributeScan> attributes;
};
struct GraphScan {
  std::vector<NodeScan> nodes;
  std::vector<TensorScan> initializers;
};

/// Walks protobuf wire format inside [begin, end) of the mapped file. Every
/// length is checked against the enclosing message, so a truncated or
/// corrupt file is reported at the offset where it breaks.
class WireScanner {
public:
  WireScanner(const uint8_t *data, std::string &error)
      : data(data), error(error) {}

  struct Field {
    uint32_t number = 0;
    uint32_t wireType = 0;
    uint64_t tagOffset = 0;
    /// LEN fields: payload offset and length.
    uint64_t offset = 0, length = 0;
  };

  /// Reads the next field of a message ending at `end`; false at the end
  /// (error empty) or on damage (error set).
  bool next(uint64_t &pos, uint64_t end, Field &field) {
    if (pos >= end)
      return false;
    field.tagOffset = pos;
    uint64_t tag;
    if (!varint(pos, end, tag))
      return false;
    field.number = uint32_t(tag >> 3);
    field.wireType = uint32_t(tag & 7);
    if (field.number == 0)
      return fail(field.tagOffset, "field number 0");
    switch (field.wireType) {
    case 0: {
      uint64_t ignored;
      return varint(pos, end, ignored);
    }
    case 1:
      return skip(pos, end, 8);
    case 5:
      return skip(pos, end, 4);
    case 2: {
      uint64_t length;
      if (!varint(pos, end, length))
        return false;
      if (length > end - pos)
        return fail(field.tagOffset,
                    "field " + std::to_string(field.number) + " of " +
                        std::to_string(length) + " bytes runs past the end of "
                        "its message at offset " + std::to_string(end) +
                        " (truncated or corrupt file)");
      field.offset = pos;
      field.length = length;
      pos += length;
      return true;
    }
    default:
      return fail(field.tagOffset,
                  "unknown wire type " + std::to_string(field.wireType));
    }
  }

  bool failed() const { return !error.empty(); }

  bool scanTensor(uint64_t pos, uint64_t end, TensorScan &out) {
    Field f;
    while (next(pos, end, f))
      if (f.number == 9 && f.wireType == 2) {
        out.hasRaw = true;
        out.offset = f.offset;
        out.size = f.length;
      }
    return !failed();
  }

  bool scanAttribute(uint64_t pos, uint64_t end, AttributeScan &out,
                     int depth) {
    Field f;
    while (next(pos, end, f)) {
      if (f.wireType != 2)
        continue;
      if (f.number == 5) {
        out.t = {};
        if (!scanTensor(f.offset, f.offset + f.length, out.t))
          return false;
      } else if (f.number == 6) {
        out.g.assign(1, {});
        if (!scanGraph(f.offset, f.offset + f.length, out.g[0], depth + 1))
          return false;
      } else if (f.number == 11) {
        out.graphs.emplace_back();
        if (!scanGraph(f.offset, f.offset + f.length, out.graphs.back(),
                       depth + 1))
          return false;
      } else if (f.number == 10) {
        out.tensors.emplace_back();
        if (!scanTensor(f.offset, f.offset + f.length, out.tensors.back()))
          return false;
      }
    }
    return !failed();
  }

  bool scanNode(uint64_t pos, uint64_t end, NodeScan &out, int depth) {
    Field f;
    while (next(pos, end, f))
      if (f.number == 5 && f.wireType == 2) {
        out.attributes.emplace_back();
        if (!scanAttribute(f.offset, f.offset + f.length,
                           out.attributes.back(), depth))
          return false;
      }
    return !failed();
  }

  bool scanGraph(uint64_t pos, uint64_t end, GraphScan &out, int depth) {
    if (depth > 64)
      return fail(pos, "subgraphs nested more than 64 deep");
    Field f;
    while (next(pos, end, f)) {
      if (f.wireType != 2)
        continue;
      if (f.number == 1) {
        out.nodes.emplace_back();
        if (!scanNode(f.offset, f.offset + f.length, out.nodes.back(), depth))
          return false;
      } else if (f.number == 5) {
        out.initializers.emplace_back();
        if (!scanTensor(f.offset, f.offset + f.length,
                        out.initializers.back()))
          return false;
      }
    }
    return !failed();
  }

  /// ModelProto: the graph (field 7). A second graph field would be merged
  /// by protobuf; lowbit rejects it instead of guessing.
  bool scanModel(uint64_t size, GraphScan &out, bool &hasGraph) {
    uint64_t pos = 0;
    Field f;
    hasGraph = false;
    while (next(pos, size, f)) {
      if (f.number == 7 && f.wireType == 2) {
        if (hasGraph)
          return fail(f.tagOffset, "a second graph field");
        hasGraph = true;
        if (!scanGraph(f.offset, f.offset + f.length, out, 0))
          return false;
      }
    }
    return !failed();
  }

  bool fail(uint64_t offset, const std::string &message) {
    if (error.empty())
      error = "offset " + std::to_string(offset) + ": " + message;
    return false;
  }

private:
  bool varint(uint64_t &pos, uint64_t end, uint64_t &value) {
    value = 0;
    uint64_t start = pos;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= end)
        return fail(start, "varint runs past the end of its message "
                           "(truncated or corrupt file)");
      uint8_t byte = data[pos++];
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return true;
    }
    return fail(start, "varint longer than 10 bytes");
  }
  bool skip(uint64_t &pos, uint64_t end, uint64_t n) {
    if (n > end - pos)
      return fail(pos, "fixed-size field runs past the end of its message "
                       "(truncated or corrupt file)");
    pos += n;
    return true;
  }

  const uint8_t *data;
  std::string &error;
};

//===----------------------------------------------------------------------===//
// Checks on the parsed model
//===----------------------------------------------------------------------===//

/// IR that names files works from any folder.
std::string absolute(const std::string &path) {
  std::error_code error;
  std::filesystem::path full = std::filesystem::absolute(path, error);
  return error ? path : full.lexically_normal().string();
}

class ModelChecker {
public:
  ModelChecker(Model &model, std::string &error) : model(model), error(error) {}

  bool run(const GraphScan &scan) {
    return tensorsOfGraph(*model.proto.mutable_graph(), scan, "") &&
           bindGraph(model.proto.graph(), {}, "graph");
  }

private:
  bool fail(const std::string &message) {
    if (error.empty())
      error = message;
    return false;
  }

  static std::string tensorLabel(const onnx::TensorProto &tensor,
                                 const std::string &where) {
    std::string label = tensor.name().empty()
                            ? std::string("tensor")
                            : "tensor '" + tensor.name() + "'";
    return where.empty() ? label : label + " (" + where + ")";
  }

  /// Elements of the tensor's shape; -1 (error set) when a dim is negative
  /// or the product overflows.
  int64_t elementCount(const onnx::TensorProto &tensor,
                       const std::string &label) {
    int64_t count = 1;
    for (int64_t dim : tensor.dims()) {
      if (dim < 0) {
        fail(label + ": negative dimension " + std::to_string(dim));
        return -1;
      }
      if (dim != 0 && count > (int64_t(1) << 62) / dim) {
        fail(label + ": shape has more than 2^62 elements");
        return -1;
      }
      count *= dim;
    }
    return count;
  }

  /// Values stored in the typed repeated field this data type uses.
  static int64_t typedValueCount(const onnx::TensorProto &t) {
    switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      return t.float_data_size();
    case onnx::TensorProto::COMPLEX64:
      return t.float_data_size() / 2;
    case onnx::TensorProto::DOUBLE:
      return t.double_data_size();
    case onnx::TensorProto::COMPLEX128:
      return t.double_data_size() / 2;
    case onnx::TensorProto::INT64:
      return t.int64_data_size();
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
      return t.uint64_data_size();
    case onnx::TensorProto::STRING:
      return t.string_data_size();
    case 21:
    case 22: // 4-bit types: two per int32
      return int64_t(t.int32_data_size()) * 2;
    default:
      return t.int32_data_size();
    }
  }

  bool checkTensor(onnx::TensorProto &tensor, const TensorScan *scan,
                   const std::string &where) {
    std::string label = tensorLabel(tensor, where);
    int64_t count = elementCount(tensor, label);
    if (count < 0)
      return false;
    int32_t type = tensor.data_type();
    if (type == onnx::TensorProto::UNDEFINED)
      return fail(label + ": data_type is UNDEFINED");
    int64_t expected = storageBytes(type, count);
    if (tensor.data_location() == onnx::TensorProto::EXTERNAL)
      return checkExternal(tensor, label, expected);
    if (tensor.has_raw_data()) {
      if (expected < 0)
        return fail(label + ": raw_data for " + dataTypeName(type) +
                    ", which has no fixed size");
      if (int64_t(tensor.raw_data().size()) != expected)
        return fail(label + ": raw_data holds " +
                    std::to_string(tensor.raw_data().size()) +
                    " bytes; its shape and type " + dataTypeName(type) +
                    " need " + std::to_string(expected));
      if (scan && scan->hasRaw && scan->size == uint64_t(expected))
        model.fileBytes[&tensor] = {absolute(model.path), scan->offset,
                                    scan->size, false};
      return true;
    }
    int64_t values = typedValueCount(tensor);
    bool packedOdd = (type == 21 || type == 22) && values == count + 1;
    if (values != count && !packedOdd)
      return fail(label + ": holds " + std::to_string(values) +
                  " values; its shape needs " + std::to_string(count));
    return true;
  }

  bool checkExternal(onnx::TensorProto &tensor, const std::string &label,
                     int64_t expected) {
    std::string location;
    std::optional<uint64_t> offset, length;
    for (const auto &entry : tensor.external_data()) {
      if (entry.key() == "location") {
        location = entry.value();
      } else if (entry.key() == "offset" || entry.key() == "length") {
        const std::string &text = entry.value();
        if (text.empty() || text.size() > 19 ||
            text.find_first_not_of("0123456789") != std::string::npos)
          return fail(label + ": external data " + entry.key() + " '" +
                      text + "' is not a non-negative integer");
        (entry.key() == "offset" ? offset : length) = std::stoull(text);
      }
    }
    if (expected < 0)
      return fail(label + ": external data for " +
                  dataTypeName(tensor.data_type()) +
                  ", which has no fixed size");
    if (location.empty())
      return fail(label + ": external data without a location");
    // ONNX resolves locations relative to the model's folder; like ONNX
    // Runtime, refuse paths that leave it.
    if (location[0] == '/' || location.find("..") != std::string::npos)
      return fail(label + ": external data location '" + location +
                  "' must be a relative path inside the model's folder");
    if (length && *length != uint64_t(expected))
      return fail(label + ": external data length " + std::to_string(*length) +
                  " but its shape and type " +
                  dataTypeName(tensor.data_type()) + " need " +
                  std::to_string(expected));
    std::string folder;
    size_t slash = model.path.rfind('/');
    if (slash != std::string::npos)
      folder = model.path.substr(0, slash + 1);
    std::string path = folder + location;
    std::string openError;
    auto file = MappedFile::openCached(path, openError);
    if (!file)
      return fail(label + ": external data: " + openError);
    uint64_t begin = offset.value_or(0);
    if (begin > file->size() || uint64_t(expected) > file->size() - begin)
      return fail(label + ": external data [" + std::to_string(begin) + ", " +
                  std::to_string(begin + uint64_t(expected)) +
                  ") lies outside " + path + " (" +
                  std::to_string(file->size()) + " bytes)");
    model.fileBytes[&tensor] = {absolute(path), begin, uint64_t(expected),
                                true};
    return true;
  }

  bool tensorsOfGraph(onnx::GraphProto &graph, const GraphScan &scan,
                      const std::string &where) {
    bool scanned = int64_t(scan.initializers.size()) ==
                   int64_t(graph.initializer_size());
    for (int i = 0; i < graph.initializer_size(); ++i)
      if (!checkTensor(*graph.mutable_initializer(i),
                       scanned ? &scan.initializers[i] : nullptr, where))
        return false;
    if (graph.sparse_initializer_size() > 0)
      return fail("graph '" + graph.name() +
                  "': sparse initializers are not supported yet");
    bool nodesScanned = int64_t(scan.nodes.size()) == graph.node_size();
    for (int n = 0; n < graph.node_size(); ++n) {
      onnx::NodeProto &node = *graph.mutable_node(n);
      const NodeScan *nodeScan = nodesScanned ? &scan.nodes[n] : nullptr;
      bool attrsScanned = nodeScan && int64_t(nodeScan->attributes.size()) ==
                                          node.attribute_size();
      std::string nodeWhere = "attribute of node '" + node.name() + "' (" +
                              node.op_type() + ")";
      for (int a = 0; a < node.attribute_size(); ++a) {
        onnx::AttributeProto &attr = *node.mutable_attribute(a);
        const AttributeScan *attrScan =
            attrsScanned ? &nodeScan->attributes[a] : nullptr;
        if (attr.has_t() &&
            !checkTensor(*attr.mutable_t(), attrScan ? &attrScan->t : nullptr,
                         nodeWhere))
          return false;
        bool tensorsScanned =
            attrScan && int64_t(attrScan->tensors.size()) == attr.tensors_size();
        for (int t = 0; t < attr.tensors_size(); ++t)
          if (!checkTensor(*attr.mutable_tensors(t),
                           tensorsScanned ? &attrScan->tensors[t] : nullptr,
                           nodeWhere))
            return false;
        static const GraphScan empty;
        if (attr.has_g() &&
            !tensorsOfGraph(*attr.mutable_g(),
                            attrScan && !attrScan->g.empty() ? attrScan->g[0]
                                                             : empty,
                            "subgraph"))
          return false;
        bool graphsScanned =
            attrScan && int64_t(attrScan->graphs.size()) == attr.graphs_size();
        for (int g = 0; g < attr.graphs_size(); ++g)
          if (!tensorsOfGraph(*attr.mutable_graphs(g),
                              graphsScanned ? attrScan->graphs[g] : empty,
                              "subgraph"))
            return false;
      }
    }
    return true;
  }

  /// Every node input names a value defined before it (graph inputs,
  /// initializers, earlier nodes, enclosing graphs), every value is defined
  /// once, and the graph outputs exist.
  bool bindGraph(const onnx::GraphProto &graph,
                 const std::set<std::string> &outer, const std::string &what) {
    std::set<std::string> defined = outer;
    std::set<std::string> local;
    auto define = [&](const std::string &name, const std::string &by) {
      if (name.empty())
        return true;
      if (!local.insert(name).second && by != "initializer")
        return fail(what + ": value '" + name + "' is defined twice (again " +
                    by + ")");
      defined.insert(name);
      return true;
    };
    for (const auto &input : graph.input())
      if (!define(input.name(), "as a graph input"))
        return false;
    for (const auto &init : graph.initializer()) {
      if (init.name().empty())
        return fail(what + ": an initializer without a name");
      if (!define(init.name(), "initializer"))
        return false;
    }
    for (int n = 0; n < graph.node_size(); ++n) {
      const onnx::NodeProto &node = graph.node(n);
      std::string label = what + ": node " + std::to_string(n) + " '" +
                          node.name() + "' (" + node.op_type() + ")";
      if (node.op_type().empty())
        return fail(label + " has no op_type");
      for (const std::string &input : node.input())
        if (!input.empty() && !defined.count(input))
          return fail(label + ": input '" + input +
                      "' is not defined before the node (ONNX needs graph "
                      "inputs, initializers or earlier nodes, in "
                      "topological order)");
      for (const auto &attr : node.attribute()) {
        if (attr.has_g() && !bindGraph(attr.g(), defined,
                                       label + " attribute " + attr.name()))
          return false;
        for (const auto &g : attr.graphs())
          if (!bindGraph(g, defined, label + " attribute " + attr.name()))
            return false;
      }
      for (const std::string &output : node.output())
        if (!define(output, "by " + label))
          return false;
    }
    for (const auto &output : graph.output())
      if (!defined.count(output.name()))
        return fail(what + ": output '" + output.name() +
                    "' is not produced by any node, input or initializer");
    return true;
  }

  Model &model;
  std::string &error;
};

/// What a graph declared before shape inference, which also rewrites the
/// inputs and outputs of subgraphs.
struct DeclaredGraph {
  onnx::GraphProto *graph;
  std::vector<onnx::ValueInfoProto> inputs, outputs, valueInfo;
};

void recordDeclared(Model &model, onnx::GraphProto &graph,
                    std::vector<DeclaredGraph> &declared) {
  model.declaredValueInfo[&graph] = graph.value_info_size();
  declared.push_back({&graph,
                      {graph.input().begin(), graph.input().end()},
                      {graph.output().begin(), graph.output().end()},
                      {graph.value_info().begin(), graph.value_info().end()}});
  for (auto &node : *graph.mutable_node())
    for (auto &attr : *node.mutable_attribute()) {
      if (attr.has_g())
        recordDeclared(model, *attr.mutable_g(), declared);
      for (auto &g : *attr.mutable_graphs())
        recordDeclared(model, g, declared);
    }
}

/// Puts back the declared inputs and outputs; where inference refined one,
/// the refined type joins the inferred value_info entries.
void restoreDeclared(std::vector<DeclaredGraph> &declared) {
  auto restore = [](onnx::GraphProto &graph,
                    google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>
                        &current,
                    std::vector<onnx::ValueInfoProto> &original) {
    for (int i = 0; i < current.size() && i < int(original.size()); ++i) {
      if (current.Get(i).SerializeAsString() ==
          original[i].SerializeAsString())
        continue;
      *graph.add_value_info() = current.Get(i);
      current.Mutable(i)->Swap(&original[i]);
    }
  };
  for (DeclaredGraph &entry : declared) {
    restore(*entry.graph, *entry.graph->mutable_input(), entry.inputs);
    restore(*entry.graph, *entry.graph->mutable_output(), entry.outputs);
    restore(*entry.graph, *entry.graph->mutable_value_info(),
            entry.valueInfo);
  }
}

/// Tensors larger than this are not handed to shape inference.
constexpr uint64_t kInferenceTensorBytes = 1 << 16;

/// The declared inputs, outputs and value_info of every graph (the order of
/// `declared`), after shape inference, written to `fd` as length-prefixed
/// GraphProtos holding just those fields.
bool writeInferredTypes(int fd, const std::vector<DeclaredGraph> &declared) {
  for (const DeclaredGraph &entry : declared) {
    onnx::GraphProto types;
    *types.mutable_input() = entry.graph->input();
    *types.mutable_output() = entry.graph->output();
    *types.mutable_value_info() = entry.graph->value_info();
    std::string bytes = types.SerializeAsString();
    uint64_t size = bytes.size();
    bytes.insert(0, reinterpret_cast<const char *>(&size), sizeof(size));
    for (size_t done = 0; done < bytes.size();) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      done += size_t(n);
    }
  }
  return true;
}

/// Types of intermediate values come from ONNX's own shape inference (what
/// it cannot infer, e.g. com.microsoft ops, stays untyped). libonnx's
/// inference is not hardened against hostile graphs (a fuzzed Scan crashes
/// it), so it runs in a child process that sends the typed value infos back
/// through a pipe; when the child fails, dies or takes over 30 s, the values
/// stay as the file declares them.
void inferTypes(onnx::ModelProto &proto,
                std::vector<DeclaredGraph> &declared) {
  int fds[2];
  if (::pipe(fds) != 0)
    return;
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (child == 0) {
    ::close(fds[0]);
    ::alarm(30);
    // A crash here is expected on hostile input: no core file.
    struct rlimit noCore = {0, 0};
    ::setrlimit(RLIMIT_CORE, &noCore);
    try {
      onnx::ShapeInferenceOptions options{/*check_type=*/false,
                                          /*error_mode=*/0,
                                          /*enable_data_propagation=*/false};
      onnx::shape_inference::InferShapes(
          proto, onnx::OpSchemaRegistry::Instance(), options);
    } catch (...) {
      // What was inferred before the failure is kept.
    }
    restoreDeclared(declared);
    ::_exit(writeInferredTypes(fds[1], declared) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string received;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    received.append(buffer, size_t(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return;
  std::vector<onnx::GraphProto> types(declared.size());
  size_t at = 0;
  for (onnx::GraphProto &graph : types) {
    uint64_t size = 0;
    if (received.size() - at < sizeof(size))
      return;
    std::memcpy(&size, received.data() + at, sizeof(size));
    at += sizeof(size);
    if (received.size() - at < size ||
        !graph.ParseFromArray(received.data() + at, int(size)))
      return;
    at += size;
  }
  for (size_t i = 0; i < declared.size(); ++i) {
    onnx::GraphProto &graph = *declared[i].graph;
    graph.mutable_input()->Swap(types[i].mutable_input());
    graph.mutable_output()->Swap(types[i].mutable_output());
    graph.mutable_value_info()->Swap(types[i].mutable_value_info());
  }
}

} // namespace

std::unique_ptr<Model> readModel(const std::string &path, std::string &error) {
  auto model = std::make_unique<Model>();
  model->path = path;
  std::string openError;
  model->file = MappedFile::openCached(path, openError);
  if (!model->file) {
    error = openError;
    return nullptr;
  }
  const MappedFile &file = *model->file;
  auto failAt = [&](const std::string &message) {
    error = path + ": " + message;
    return nullptr;
  };
  if (file.size() > uint64_t(INT_MAX))
    return failAt("larger than 2 GiB; ONNX (protobuf) keeps the weights of "
                  "such models in external data files");
  GraphScan scan;
  bool hasGraph = false;
  WireScanner scanner(file.data(), error);
  if (!scanner.scanModel(file.size(), scan, hasGraph))
    return failAt(error.empty() ? "not an ONNX model" : error);
  if (!model->proto.ParseFromArray(file.data(), int(file.size())))
    return failAt("not an ONNX model (protobuf cannot parse it as a "
                  "ModelProto)");
  if (!hasGraph || !model->proto.has_graph())
    return failAt("not an ONNX model: no graph");
  if (model->proto.functions_size() > 0)
    return failAt("model-local functions (FunctionProto '" +
                  model->proto.functions(0).name() +
                  "') are not supported yet");
  if (model->proto.training_info_size() > 0)
    return failAt("training information (TrainingInfoProto) is not "
                  "supported");
  ModelChecker checker(*model, error);
  if (!checker.run(scan))
    return failAt(error);

  std::vector<DeclaredGraph> declared;
  recordDeclared(*model, *model->proto.mutable_graph(), declared);
  // Large tensors are read through the mapping from here on; inference only
  // needs the small ones (shapes given as initializers).
  for (auto &[tensor, bytes] : model->fileBytes)
    if (bytes.size > kInferenceTensorBytes)
      const_cast<onnx::TensorProto *>(tensor)->clear_raw_data();
  inferTypes(model->proto, declared);
  for (auto &[tensor, bytes] : model->fileBytes)
    const_cast<onnx::TensorProto *>(tensor)->clear_raw_data();
  return model;
}

} // namespace lowbit::onnxfile
