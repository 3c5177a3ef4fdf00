//===- Kernels.h - Reference kernels of ONNX operators ----------*- C++ -*-===//
//
// The reference executor's ONNX operators (no MLIR): N-D tensors with numpy
// broadcasting, values held as double and rounded to the tensor's element
// type after every operator (an f32 add computed in double and rounded is
// the correctly rounded f32 add). Written for correctness on the operator
// set lowbit imports (docs/ARCHITECTURE.md lists it), checked against ONNX's
// backend node tests; not for speed.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_ONNX_KERNELS_H
#define LOWBIT_ONNX_KERNELS_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::onnxrt {

struct Tensor {
  /// ONNX TensorProto data type (FLOAT = 1, INT64 = 7, BOOL = 9, ...).
  int32_t dataType = 1;
  std::vector<int64_t> shape;
  std::vector<double> values;

  int64_t count() const;
  /// Rounds every value to the element type (float, integer wrap, bool).
  void round();
};

/// A node's attributes by name (ONNX's INT/FLOAT/STRING/INTS/FLOATS; tensor
/// attributes as tensors).
struct Attributes {
  std::map<std::string, int64_t> ints;
  std::map<std::string, double> floats;
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<int64_t>> intLists;
  std::map<std::string, std::vector<double>> floatLists;
  std::map<std::string, Tensor> tensors;

  bool has(const std::string &name) const;
  int64_t getInt(const std::string &name, int64_t fallback) const;
  double getFloat(const std::string &name, double fallback) const;
  std::string getString(const std::string &name,
                        const std::string &fallback) const;
};

/// Runs one node: `inputs` in order (null for an omitted optional input),
/// `opset` the model's version of the node's domain. Fills `outputs` (one
/// per node output) or returns false with `error`.
bool runOperator(const std::string &domain, const std::string &opType,
                 int64_t opset, const std::vector<const Tensor *> &inputs,
                 const Attributes &attributes, size_t outputCount,
                 std::vector<Tensor> &outputs, std::string &error);

/// Whether runOperator knows `opType` of `domain`.
bool hasOperator(const std::string &domain, const std::string &opType);

} // namespace lowbit::onnxrt

#endif // LOWBIT_ONNX_KERNELS_H
