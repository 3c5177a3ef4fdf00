//===- Model.h - A model as the executor sees it ----------------*- C++ -*-===//
//
// ModelDesc is the executor's whole view of a model: a graph of ops (the
// `@forward` function of a lowbit module, translated op for op by
// dialects' IR-to-executor glue), every weight the graph names as (format,
// row-major shape, bytes), and the metadata the tokenizer needs. Nothing here
// knows an architecture: the graph says what to compute. The weights are not
// copied: `data` points into memory (an mmap'ed file or a module's resource
// blob) that `storage` keeps alive.
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
/// `rowBytes` bytes of `format` blocks. A vector is 1 x n.
struct WeightRef {
  formats::Format format = formats::Format::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t rowBytes = 0;
  const uint8_t *data = nullptr;
};

/// The ops the executor runs: one per lowbit dialect op kind it supports.
enum class OpKind {
  Embedding,      // out = decode(weight[token ids])
  Matmul,         // out = in0 * weight^T (+ bias)
  MatmulResidual, // out = in1 + in0 * weight^T
  RMSNorm,        // out = in0 / rms(in0) * weight
  LayerNorm,      // out = (in0 - mean) / std * weight (+ bias)
  Rope,           // out = in0 rotated by position
  Attention,      // out = causal attention of q=in0 over the cache after
                  // appending k=in1, v=in2
  Add,            // out = in0 + in1
  Mul,            // out = in0 * in1
  SiLU,           // out = in0 * sigmoid(in0)
  GELU,           // out = gelu_tanh(in0)
  Softmax,        // out = softmax(in0) over each row
  SwiGLU,         // out = silu(in0) * in1
  Split,          // outs = column slices of in0 (sizes)
  Scale,          // out = in0 * scale
  MoEFFN,         // out = top-k mixture of experts (weight = router)
  SoftCap,        // out = scale * tanh(in0 / scale)
  Boundary,       // out = in0: the residual stream between two layers
};

/// The name of an op kind as the dialect spells it ("matmul", ...).
const char *opKindName(OpKind kind);
/// The kind named `name`; false when there is none.
bool opKindFromName(const std::string &name, OpKind &kind);

/// One op of the graph. Activation values are numbered; every value is a
/// [tokens, width] f32 matrix. Token ids and positions are the graph's
/// inputs, implicit in the ops that read them (Embedding, Rope, Attention).
struct GraphOp {
  OpKind kind = OpKind::Add;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;
  /// Names of weights in ModelDesc::weights ("" = none).
  std::string weight, bias;
  /// rope: LongRoPE's factors for runs whose context exceeds
  /// originalContext (`weight` holds the short ones).
  std::string longWeight;
  float epsilon = 0.0f;   // norms
  float theta = 10000.0f; // rope base
  float freqScale = 1.0f; // rope: positions are multiplied by it
  /// rope, YaRN (ggml's ext_factor, attn_factor, n_ctx_orig, beta_fast and
  /// beta_slow); extFactor 0 = no YaRN.
  float extFactor = 0.0f, attnFactor = 1.0f;
  int64_t originalContext = 0;
  float betaFast = 32.0f, betaSlow = 1.0f;
  float scale = 0.0f;     // attention score scale; scale, softcap factor
  float softcap = 0.0f;   // attention: scores capped to softcap * tanh(s /
                          // softcap) (0 = none)
  int64_t heads = 0, headDim = 0, ropeDims = 0; // rope, attention
  int64_t cacheLayer = 0;                       // attention
  int64_t group = 0;  // rms_norm: values per normalised group (0 = the row)
  int64_t window = 0; // attention: keys within this many positions (0 = all)
  /// moe_ffn: the stacked expert weights gate, up, down, then (optional) the
  /// shared expert's gate, up, down and gate_inp.
  std::vector<std::string> experts;
  int64_t topK = 0;
  bool normalize = false;
  RopeMode ropeMode = RopeMode::Normal;
  std::vector<int64_t> sizes; // split
  /// Where the op came from ("file:line:col" of its IR location), for
  /// error messages.
  std::string where;
};

struct KVCacheShape {
  int64_t layers = 0, context = 0, kvHeads = 0, headDim = 0;
};

/// A whole forward pass: tokens (and their positions, consecutive from the
/// first) in, logits out.
struct Graph {
  std::vector<GraphOp> ops;
  /// Columns per token of every value.
  std::vector<int64_t> valueWidth;
  /// The value holding the logits.
  int32_t result = -1;
  KVCacheShape cache;
  /// Indices into `ops` of the Boundary ops, in order: boundary i is the
  /// residual stream entering layer i; the last one enters the output head.
  std::vector<size_t> boundaries;
};

/// What a graph's shapes say about the model, for reports (lb_model_info):
/// 0 where the graph does not say.
struct GraphSummary {
  int64_t vocab = 0, embedding = 0, layers = 0, heads = 0, kvHeads = 0,
          headDim = 0, feedForward = 0, context = 0;
};
GraphSummary summarize(const Graph &graph);

struct ModelDesc {
  std::string architecture; // for reports only
  std::string name;         // for reports only
  int64_t vocabSize = 0;     // width of the logits
  int64_t contextLength = 0; // the KV cache's length in the graph
  Graph graph;

  /// Weights by the module's symbol names.
  std::map<std::string, WeightRef> weights;
  /// Metadata for the tokenizer (tokenizer.ggml.*) and for reports.
  std::vector<gguf::KeyValue> metadata;
  /// Owner of the memory the weights point into.
  std::shared_ptr<const void> storage;

  const WeightRef *find(const std::string &name) const;
  /// The weight of the op that produces the logits ("" when that op has
  /// none): calibration treats its input statistics specially.
  std::string outputWeight() const;
  /// Checks the graph: value numbering, widths against the weights' shapes,
  /// every named weight present with a decodable format (and its bytes, with
  /// `requireData`). Errors name the op (with its location) and the weight.
  bool validate(std::string &err, bool requireData = true) const;
};

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_MODEL_H
