//===- IMatrix.h - Importance matrices (llama.cpp-compatible) ---*- C++ -*-===//
//
// Per weight tensor, per input channel statistics of the activations that
// multiply it: the sum of squares (what llama.cpp calls the importance
// matrix), optionally the sum (for mean activations), and the token count.
// Reads and writes llama.cpp's two file formats:
//  - GGUF (current): tensors "<name>.in_sum2" (F32, [n_in, n_mat]) and
//    "<name>.counts" (F32, [1, n_mat]) plus imatrix.* metadata;
//  - legacy binary ".dat": entries of (name, ncall, values = sum2/ncall
//    scaled as llama.cpp writes them), then the chunk count and dataset name.
// No MLIR dependency. Every size read from a file is bounds-checked.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_CALIBRATION_IMATRIX_H
#define LOWBIT_CALIBRATION_IMATRIX_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lowbit::gguf {
class Writer;
} // namespace lowbit::gguf

namespace lowbit::calib {

struct IMatrixEntry {
  /// Sum over tokens of x[c]^2, per input channel; n_mat * n_in values
  /// (n_mat = number of experts, 1 for dense weights).
  std::vector<float> sumSquares;
  /// Sum over tokens of x[c] (empty when unknown, e.g. read from llama.cpp).
  std::vector<float> sum;
  /// Tokens seen, per matrix (n_mat values).
  std::vector<float> counts;
  int64_t inputs() const {
    return counts.empty() ? 0 : int64_t(sumSquares.size() / counts.size());
  }
};

class IMatrix {
public:
  std::map<std::string, IMatrixEntry> entries;
  std::vector<std::string> datasets; // calibration file names
  int64_t chunkCount = 0;
  /// Tokens per chunk; 0 when unknown (a legacy file does not record it, and
  /// its counts are then in chunks, not tokens).
  int64_t chunkSize = 0;
  /// Entry order of the file this was loaded from. The writers emit these
  /// names first, in this order, then the rest sorted (llama.cpp's order), so
  /// that a loaded file is rewritten byte for byte.
  std::vector<std::string> order;

  /// Reads either format (detected from the content). On failure returns
  /// false with `error` = "<file>: <what> [at offset <n>]".
  static bool load(const std::string &path, IMatrix &out, std::string &error);
  /// As above; a legacy file's values and call counts are multiplied by
  /// `legacyChunkSize` (when > 0) so that counts are tokens, as llama.cpp
  /// does with its context size when it reads a .dat file.
  static bool load(const std::string &path, IMatrix &out, std::string &error,
                   int64_t legacyChunkSize);
  /// Parses an in-memory image; `name` is used in error messages.
  static bool loadFromMemory(const void *data, size_t size,
                             const std::string &name, IMatrix &out,
                             std::string &error, int64_t legacyChunkSize = 0);
  /// Whether `size` bytes at `data` start like a GGUF file.
  static bool isGGUF(const void *data, size_t size);
  /// Writes llama.cpp's GGUF imatrix format (temporary file + rename).
  bool saveGGUF(const std::string &path, std::string &error) const;
  /// Adds that format's keys and tensors to `writer` (files that carry an
  /// importance matrix and more, such as lowbit's calibration state).
  bool addToGGUF(gguf::Writer &writer, std::string &error) const;
  /// Writes llama.cpp's legacy .dat format (temporary file + rename).
  bool saveLegacy(const std::string &path, std::string &error) const;

  /// Per-column importance for quantizing a weight: mean of squares
  /// (sumSquares / count) of matrix `expert`. Empty when no entry exists.
  /// With `inputs` (the weight's row length), an entry of several matrices
  /// with one count (a legacy file's MoE weight) gives matrix `expert` of
  /// its values, divided by that count, as llama.cpp reads such a file.
  std::vector<float> importance(const std::string &tensorName,
                                int64_t expert = 0, int64_t inputs = 0) const;
  /// Mean activation per column (empty when sums were not recorded).
  std::vector<float> meanActivation(const std::string &tensorName,
                                    int64_t expert = 0) const;
  /// Tokens matrix `expert` of the weight saw (0 when unknown; an entry of
  /// several matrices with one count shares it).
  double tokenCount(const std::string &tensorName, int64_t expert = 0) const;
};

} // namespace lowbit::calib

#endif // LOWBIT_CALIBRATION_IMATRIX_H
