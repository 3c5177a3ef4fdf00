//===- Model.cpp - ModelDesc from GGUF and its validation -----------------===//

#include "lowbit/Exec/Model.h"

namespace lowbit::exec {

std::string layerWeightName(int64_t layer, const char *what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}

const WeightRef *ModelDesc::find(const std::string &name) const {
  auto it = weights.find(name);
  return it == weights.end() ? nullptr : &it->second;
}

bool ModelDesc::validate(std::string &err) const {
  if (embeddingLength <= 0 || blockCount <= 0 || feedForwardLength <= 0 ||
      headCount <= 0 || headCountKV <= 0 || headDim <= 0 || vocabSize <= 0) {
    err = "incomplete hyperparameters (embedding length, block count, feed "
          "forward length, head counts, head size, vocabulary size)";
    return false;
  }
  if (headCount % headCountKV != 0) {
    err = "head count " + std::to_string(headCount) +
          " is not a multiple of the KV head count " +
          std::to_string(headCountKV);
    return false;
  }
  if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
    err = "invalid RoPE dimension count " + std::to_string(ropeDims) +
          " (head size " + std::to_string(headDim) + ")";
    return false;
  }
  auto check = [&](const std::string &name, int64_t rows,
                   int64_t cols) -> bool {
    const WeightRef *w = find(name);
    if (!w) {
      err = "missing tensor " + name;
      return false;
    }
    if (w->rows != rows || w->cols != cols) {
      err = "tensor " + name + " has shape [" + std::to_string(w->rows) + ", " +
            std::to_string(w->cols) + "], expected [" + std::to_string(rows) +
            ", " + std::to_string(cols) + "]";
      return false;
    }
    if (!formats::hasCodec(w->format)) {
      err = std::string("tensor ") + name + " has format " +
            formats::info(w->format).name + ", which has no decoder";
      return false;
    }
    const formats::FormatInfo &fi = formats::info(w->format);
    if (w->rowBytes != formats::rowBytes(fi, static_cast<uint64_t>(cols)) ||
        w->rowBytes == 0 || !w->data) {
      err = "tensor " + name + ": rows of " + std::to_string(cols) +
            " weights do not fit format " + fi.name;
      return false;
    }
    return true;
  };
  const int64_t d = embeddingLength, q = headCount * headDim,
                kv = headCountKV * headDim, ff = feedForwardLength;
  if (!check("token_embd.weight", vocabSize, d) ||
      !check("output_norm.weight", 1, d))
    return false;
  if (!tiedOutput() && !check("output.weight", vocabSize, d))
    return false;
  for (int64_t l = 0; l < blockCount; ++l) {
    if (!check(layerWeightName(l, "attn_norm"), 1, d) ||
        !check(layerWeightName(l, "attn_q"), q, d) ||
        !check(layerWeightName(l, "attn_k"), kv, d) ||
        !check(layerWeightName(l, "attn_v"), kv, d) ||
        !check(layerWeightName(l, "attn_output"), d, q) ||
        !check(layerWeightName(l, "ffn_norm"), 1, d) ||
        !check(layerWeightName(l, "ffn_gate"), ff, d) ||
        !check(layerWeightName(l, "ffn_up"), ff, d) ||
        !check(layerWeightName(l, "ffn_down"), d, ff))
      return false;
  }
  return true;
}

namespace {

/// Reads of a metadata list with the semantics of gguf::Reader's accessors:
/// the default when the key is missing or has another type.
class MetadataView {
public:
  explicit MetadataView(const std::vector<gguf::KeyValue> &kvs) : kvs_(kvs) {}
  const gguf::KeyValue *find(const std::string &key) const {
    for (const gguf::KeyValue &kv : kvs_)
      if (kv.key == key)
        return &kv;
    return nullptr;
  }
  std::string getString(const std::string &key, std::string dflt = "") const {
    const gguf::KeyValue *kv = find(key);
    if (!kv || kv->value.type != gguf::ValueType::String)
      return dflt;
    return kv->value.str;
  }
  int64_t getInt(const std::string &key, int64_t dflt) const {
    const gguf::KeyValue *kv = find(key);
    if (!kv || !kv->value.isInteger())
      return dflt;
    return kv->value.asInt();
  }
  double getFloat(const std::string &key, double dflt) const {
    const gguf::KeyValue *kv = find(key);
    if (!kv)
      return dflt;
    if (kv->value.type == gguf::ValueType::F32 ||
        kv->value.type == gguf::ValueType::F64)
      return kv->value.f;
    if (kv->value.isInteger())
      return static_cast<double>(kv->value.asInt());
    return dflt;
  }

private:
  const std::vector<gguf::KeyValue> &kvs_;
};

} // namespace

bool modelFromMetadata(std::vector<gguf::KeyValue> metadata,
                       std::map<std::string, WeightRef> weights,
                       std::shared_ptr<const void> storage, ModelDesc &out,
                       std::string &err) {
  out = ModelDesc();
  const MetadataView r(metadata);
  out.architecture = r.getString("general.architecture");
  out.name = r.getString("general.name");
  if (out.architecture != "llama") {
    err = "unsupported architecture '" + out.architecture +
          "' (the executor runs llama-family models)";
    return false;
  }
  const std::string a = out.architecture + ".";
  auto need = [&](const char *key, int64_t &v) {
    v = r.getInt(a + key, -1);
    if (v <= 0) {
      err = "missing or invalid metadata key " + a + key;
      return false;
    }
    return true;
  };
  if (!need("embedding_length", out.embeddingLength) ||
      !need("block_count", out.blockCount) ||
      !need("feed_forward_length", out.feedForwardLength) ||
      !need("attention.head_count", out.headCount))
    return false;
  out.headCountKV = r.getInt(a + "attention.head_count_kv", out.headCount);
  out.headDim = out.headCount > 0 ? out.embeddingLength / out.headCount : 0;
  out.headDim = r.getInt(a + "attention.key_length", out.headDim);
  if (r.getInt(a + "attention.value_length", out.headDim) != out.headDim) {
    err = "different key and value head sizes are not supported";
    return false;
  }
  out.ropeDims = r.getInt(a + "rope.dimension_count", out.headDim);
  out.contextLength = r.getInt(a + "context_length", 0);
  out.ropeFreqBase =
      static_cast<float>(r.getFloat(a + "rope.freq_base", 10000.0));
  out.rmsNormEps = static_cast<float>(
      r.getFloat(a + "attention.layer_norm_rms_epsilon", 1e-5));
  // Linear RoPE scaling: positions are multiplied by 1/factor.
  double factor = r.getFloat(a + "rope.scaling.factor", 0.0);
  if (factor <= 0)
    factor = r.getFloat(a + "rope.scale_linear", 0.0);
  std::string scalingType = r.getString(a + "rope.scaling.type", "linear");
  if (factor > 0 && scalingType != "none" && scalingType != "linear") {
    err = "unsupported RoPE scaling type '" + scalingType + "'";
    return false;
  }
  out.ropeFreqScale = factor > 0 ? static_cast<float>(1.0 / factor) : 1.0f;
  out.ropeMode = RopeMode::Normal;

  out.weights = std::move(weights);
  if (const WeightRef *emb = out.find("token_embd.weight"))
    out.vocabSize = emb->rows;
  else {
    err = "missing tensor token_embd.weight";
    return false;
  }
  int64_t declaredVocab = r.getInt(a + "vocab_size", out.vocabSize);
  if (declaredVocab != out.vocabSize) {
    err = a + "vocab_size = " + std::to_string(declaredVocab) +
          " but token_embd.weight has " + std::to_string(out.vocabSize) +
          " rows";
    return false;
  }
  out.metadata = std::move(metadata);
  out.storage = std::move(storage);
  return out.validate(err);
}

bool modelFromGGUF(std::shared_ptr<const gguf::Reader> reader, ModelDesc &out,
                   std::string &err) {
  const gguf::Reader &r = *reader;
  // Tensors with a type the codec library does not know.
  for (const gguf::TensorInfo &t : r.tensors())
    if (!formats::findByGGMLType(t.ggmlType) &&
        (t.name == "token_embd.weight" || t.name == "output.weight" ||
         t.name.rfind("blk.", 0) == 0)) {
      const char *tn = gguf::ggmlTypeName(t.ggmlType);
      err = "tensor " + t.name + " has ggml type " +
            (tn ? std::string(tn) : std::to_string(t.ggmlType)) +
            ", which lowbit cannot decode";
      return false;
    }
  std::map<std::string, WeightRef> weights;
  for (const gguf::TensorInfo &t : r.tensors()) {
    const formats::FormatInfo *fi = formats::findByGGMLType(t.ggmlType);
    if (!fi)
      continue; // validate() reports it if the executor needs it
    if (t.dims.empty() || t.dims.size() > 2)
      continue;
    WeightRef w;
    w.format = fi->format;
    w.cols = static_cast<int64_t>(t.dims[0]);
    w.rows = t.dims.size() > 1 ? static_cast<int64_t>(t.dims[1]) : 1;
    w.rowBytes = formats::rowBytes(*fi, t.dims[0]);
    w.data = r.tensorData(t);
    weights.emplace(t.name, w);
  }
  return modelFromMetadata(r.metadata(), std::move(weights), reader, out, err);
}

} // namespace lowbit::exec
