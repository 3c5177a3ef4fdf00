//===- Model.h - A decoder model as the executor sees it --------*- C++ -*-===//
//
// ModelDesc is the executor's whole view of a model: the hyperparameters of a
// llama-family decoder, every weight as (format, row-major shape, bytes) and
// the metadata the tokenizer needs. The weights are not copied: `data` points
// into memory (usually an mmap'ed GGUF file) that `storage` keeps alive.
// Sources other than GGUF (lowbit IR) fill the same struct.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_MODEL_H
#define LOWBIT_EXEC_MODEL_H

#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/GGUF.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::exec {

/// How RoPE pairs the dimensions of a head. llama.cpp's GGUF conversion
/// permutes the Q/K rows of llama models so that they use Normal.
enum class RopeMode {
  Normal, // rotates (x[2i], x[2i+1])          (ggml rope type 0)
  NeoX,   // rotates (x[i], x[i + ropeDims/2])  (ggml rope type 2)
};

/// One weight matrix, row-major: `rows` rows of `cols` weights, each row
/// `rowBytes` bytes of `format` blocks. A vector is 1 x n. (GGUF lists
/// dims as [ne0 = cols, ne1 = rows].)
struct WeightRef {
  formats::Format format = formats::Format::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t rowBytes = 0;
  const uint8_t *data = nullptr;
};

struct ModelDesc {
  std::string architecture = "llama";
  std::string name;
  int64_t vocabSize = 0;
  int64_t embeddingLength = 0;   // n_embd
  int64_t blockCount = 0;        // n_layer
  int64_t feedForwardLength = 0; // n_ff
  int64_t headCount = 0;         // n_head
  int64_t headCountKV = 0;       // n_head_kv (GQA when < n_head)
  int64_t headDim = 0;           // key/value length per head
  int64_t ropeDims = 0;          // rotated dimensions per head (<= headDim)
  int64_t contextLength = 0;     // training context
  float ropeFreqBase = 10000.0f;
  float ropeFreqScale = 1.0f;
  float rmsNormEps = 1e-5f;
  RopeMode ropeMode = RopeMode::Normal;

  /// Weights by GGUF tensor name: token_embd.weight, blk.N.attn_norm.weight,
  /// blk.N.attn_{q,k,v,output}.weight, blk.N.ffn_norm.weight,
  /// blk.N.ffn_{gate,up,down}.weight, output_norm.weight and, unless the
  /// output is tied to the embedding, output.weight.
  std::map<std::string, WeightRef> weights;
  /// Metadata for the tokenizer (tokenizer.ggml.*) and for reports.
  std::vector<gguf::KeyValue> metadata;
  /// Owner of the memory the weights point into.
  std::shared_ptr<const void> storage;

  const WeightRef *find(const std::string &name) const;
  /// True when output.weight is absent and token_embd.weight is reused.
  bool tiedOutput() const { return find("output.weight") == nullptr; }
  /// Checks the hyperparameters and that every weight the executor needs is
  /// present with the expected shape and a decodable format.
  bool validate(std::string &err) const;
};

/// Builds a ModelDesc from GGUF-style metadata (the llama.* hyperparameter
/// keys, the tokenizer's keys) and the weights by tensor name: what a GGUF
/// file and lowbit IR both provide. `storage` keeps the memory the weights
/// point into alive. Errors name what is missing or inconsistent.
bool modelFromMetadata(std::vector<gguf::KeyValue> metadata,
                       std::map<std::string, WeightRef> weights,
                       std::shared_ptr<const void> storage, ModelDesc &out,
                       std::string &err);

/// Builds a ModelDesc from an open GGUF file (architecture `llama`: the
/// llama.* hyperparameter keys and the standard tensor names). The reader is
/// kept alive by the result. Errors name what is missing or inconsistent.
bool modelFromGGUF(std::shared_ptr<const gguf::Reader> reader, ModelDesc &out,
                   std::string &err);

/// Name of the per-layer weight `what` ("attn_q", "ffn_down", ...).
std::string layerWeightName(int64_t layer, const char *what);

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_MODEL_H
