//===- TestModels.h - Small decoders for the unit tests ---------*- C++ -*-===//
//
// Tests that run a model build its weights in memory and need the executor's
// graph for them. The graph is not written here: the weights go into a GGUF
// file with llama-family metadata and lowbit's GGUF importer builds @forward,
// which the IR glue translates, exactly as for a user's model.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TEST_UNIT_SUPPORT_TESTMODELS_H
#define LOWBIT_TEST_UNIT_SUPPORT_TESTMODELS_H

#include "lowbit/Exec/Model.h"

#include <map>
#include <memory>
#include <string>

namespace lowbit::testing {

struct DecoderShape {
  int64_t vocab = 0, embedding = 0, layers = 0, heads = 0, kvHeads = 0,
          feedForward = 0, context = 0;
  /// Normal: a `llama` file; NeoX: a `qwen2` file (the importer's rule).
  exec::RopeMode ropeMode = exec::RopeMode::Normal;
  float rmsEpsilon = 1e-5f;
  float ropeBase = 10000.0f;
  /// Rotated dimensions per head (0: the whole head).
  int64_t ropeDims = 0;
};

/// The model the GGUF importer makes of `weights` (GGUF tensor names, shapes
/// as rows x cols; tied output when there is no output.weight) and `shape`.
/// The result's weights point at the callers' memory, which `storage` keeps
/// alive. False with `err` when the importer or the translation rejects it.
bool makeDecoder(const DecoderShape &shape,
                 const std::map<std::string, exec::WeightRef> &weights,
                 std::shared_ptr<const void> storage, exec::ModelDesc &out,
                 std::string &err);

/// Loads a GGUF model file for the executor (lowbit run's path).
bool loadModel(const std::string &path, exec::ModelDesc &out,
               std::string &err);

} // namespace lowbit::testing

#endif // LOWBIT_TEST_UNIT_SUPPORT_TESTMODELS_H
