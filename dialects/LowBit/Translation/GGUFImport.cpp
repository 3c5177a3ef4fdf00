//===- GGUFImport.cpp - GGUF file -> lowbit dialect -----------------------===//
//
// Weights become lowbit.global_weight ops referencing the bytes in the file;
// metadata becomes an ordered list of #lowbit.kv on the module (large arrays
// by reference); for llama-family architectures the forward pass is built as
// func @forward over the model-level ops.
//
//===----------------------------------------------------------------------===//
#include "LowBit/Translation/GGUFImport.h"
#include "LowBit/IR/LowBit.h"
#include "lowbit/GGUF/GGUF.h"
#include "lowbit/GGUF/TensorNames.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cmath>

using namespace mlir;
using namespace mlir::lowbit;
namespace gguf = ::lowbit::gguf;
namespace formats = ::lowbit::formats;

namespace {

class GGUFImporter {
public:
  GGUFImporter(MLIRContext *context, const gguf::Reader &reader,
               std::string path, const GGUFImportOptions &options)
      : context(context), builder(context), reader(reader),
        path(std::move(path)), options(options),
        fileLoc(FileLineColLoc::get(context, this->path, 0, 0)) {}

  OwningOpRef<ModuleOp> run();

private:
  Attribute convertValue(const gguf::Value &value, bool topLevel);
  LogicalResult importWeights(ModuleOp module);
  LogicalResult buildDecoder(ModuleOp module, StringRef arch);

  Location tensorLoc(StringRef name) {
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  int64_t getHParam(StringRef arch, StringRef key, int64_t dflt) {
    return reader.getInt((arch + "." + key).str(), dflt);
  }
  /// Checks that every key the architecture requires is there with a value
  /// of the right kind (llama.cpp refuses to load the model otherwise),
  /// naming each one that is not.
  LogicalResult checkRequiredKeys(StringRef arch);

  MLIRContext *context;
  OpBuilder builder;
  const gguf::Reader &reader;
  std::string path;
  GGUFImportOptions options;
  Location fileLoc;
  llvm::StringMap<GlobalWeightOp> weights;
};

} // namespace

Attribute GGUFImporter::convertValue(const gguf::Value &value, bool topLevel) {
  auto intAttr = [&](unsigned width, bool isSigned, int64_t v) -> Attribute {
    auto type = IntegerType::get(context, width,
                                 isSigned ? IntegerType::Signed
                                          : IntegerType::Unsigned);
    return IntegerAttr::get(type, APInt(width, static_cast<uint64_t>(v),
                                        isSigned));
  };
  switch (value.type) {
  case gguf::ValueType::U8:
    return intAttr(8, false, value.u);
  case gguf::ValueType::I8:
    return intAttr(8, true, value.i);
  case gguf::ValueType::U16:
    return intAttr(16, false, value.u);
  case gguf::ValueType::I16:
    return intAttr(16, true, value.i);
  case gguf::ValueType::U32:
    return intAttr(32, false, value.u);
  case gguf::ValueType::I32:
    return intAttr(32, true, value.i);
  case gguf::ValueType::U64:
    return intAttr(64, false, value.u);
  case gguf::ValueType::I64:
    return intAttr(64, true, value.i);
  case gguf::ValueType::Bool:
    return builder.getBoolAttr(value.u != 0);
  case gguf::ValueType::F32:
    return builder.getF32FloatAttr(static_cast<float>(value.f));
  case gguf::ValueType::F64:
    return builder.getF64FloatAttr(value.f);
  case gguf::ValueType::String:
    return builder.getStringAttr(value.str);
  case gguf::ValueType::Array: {
    uint32_t elementType = static_cast<uint32_t>(value.elementType);
    if (topLevel && value.elements.size() > options.inlineArrayLimit)
      return GGUFArrayRefAttr::get(context, path, elementType,
                                   value.elements.size());
    SmallVector<Attribute> elements;
    elements.reserve(value.elements.size());
    for (const gguf::Value &element : value.elements)
      elements.push_back(convertValue(element, /*topLevel=*/false));
    return GGUFArrayAttr::get(context, elementType,
                              builder.getArrayAttr(elements));
  }
  }
  return {};
}

LogicalResult GGUFImporter::importWeights(ModuleOp module) {
  builder.setInsertionPointToEnd(module.getBody());
  for (const gguf::TensorInfo &tensor : reader.tensors()) {
    Location loc = tensorLoc(tensor.name);
    const formats::FormatInfo *format =
        formats::findByGGMLType(tensor.ggmlType);
    if (!format)
      return emitError(loc) << "tensor '" << tensor.name << "' has GGML type "
                            << tensor.ggmlType
                            << ", which lowbit does not support";
    // GGUF lists ne0 (contiguous) first; the IR is row-major.
    SmallVector<int64_t> shape;
    for (auto it = tensor.dims.rbegin(); it != tensor.dims.rend(); ++it)
      shape.push_back(static_cast<int64_t>(*it));
    auto type = QTensorType::getChecked(
        [&] { return emitError(loc); }, context, ArrayRef<int64_t>(shape),
        FormatAttr::get(context, format->format), LayoutAttr());
    if (!type)
      return failure();
    auto data = ExternalDataAttr::get(context, path,
                                      reader.tensorFileOffset(tensor),
                                      tensor.byteSize);
    RoleAttr role;
    if (std::optional<gguf::TensorRole> r = gguf::roleOfTensorName(tensor.name))
      role = RoleAttr::get(context, r->kind, r->layer, r->expert);
    auto op =
        GlobalWeightOp::create(builder, loc, tensor.name, type, data, role);
    weights[tensor.name] = op;
  }
  return success();
}

LogicalResult GGUFImporter::checkRequiredKeys(StringRef arch) {
  // The keys llama.cpp's loader requires for llama/qwen2 (llm_load_hparams),
  // and the two its graph cannot do without (heads, FFN width).
  struct Required {
    const char *suffix;
    bool isFloat;
  };
  static constexpr Required kRequired[] = {
      {"context_length", false},
      {"embedding_length", false},
      {"block_count", false},
      {"feed_forward_length", false},
      {"attention.head_count", false},
      {"attention.layer_norm_rms_epsilon", true},
  };
  SmallVector<std::string> missing;
  for (const Required &r : kRequired) {
    std::string key = (arch + "." + r.suffix).str();
    const gguf::KeyValue *kv = reader.find(key);
    if (!kv) {
      missing.push_back(key);
      continue;
    }
    const gguf::Value &v = kv->value;
    bool isFloat =
        v.type == gguf::ValueType::F32 || v.type == gguf::ValueType::F64;
    bool ok = r.isFloat ? isFloat || v.isInteger()
                        : v.isInteger() && v.type != gguf::ValueType::Bool;
    if (!ok)
      return emitError(fileLoc)
             << "key '" << key << "' is " << gguf::valueTypeName(v.type)
             << ", but a " << arch << " model needs "
             << (r.isFloat ? "a number" : "an integer") << " there";
  }
  if (missing.empty())
    return success();
  InFlightDiagnostic diag = emitError(fileLoc);
  diag << "missing " << (missing.size() == 1 ? "key " : "keys ");
  llvm::interleaveComma(missing, diag,
                        [&](const std::string &k) { diag << "'" << k << "'"; });
  diag << ", which a " << arch
       << " model requires (llama.cpp does not load it either)";
  return diag;
}

/// Builds func @forward for llama-family decoders: token embedding, blocks of
/// (RMSNorm, attention with RoPE and a KV cache, residual, RMSNorm, SwiGLU
/// FFN, residual), final norm and the output projection (tied to the
/// embedding when the file has no output.weight).
LogicalResult GGUFImporter::buildDecoder(ModuleOp module, StringRef arch) {
  if (failed(checkRequiredKeys(arch)))
    return failure();
  int64_t nEmbd = getHParam(arch, "embedding_length", 0);
  int64_t nLayer = getHParam(arch, "block_count", 0);
  int64_t nHead = getHParam(arch, "attention.head_count", 0);
  int64_t nHeadKV = getHParam(arch, "attention.head_count_kv", nHead);
  int64_t nCtx = getHParam(arch, "context_length", 2048);
  if (nEmbd <= 0 || nLayer <= 0 || nHead <= 0 || nHeadKV <= 0 ||
      nEmbd % nHead != 0 || nHead % nHeadKV != 0 || nCtx <= 0)
    return emitError(fileLoc)
           << "invalid " << arch << " hyperparameters: embedding_length "
           << nEmbd << ", block_count " << nLayer << ", head_count " << nHead
           << ", head_count_kv " << nHeadKV << ", context_length " << nCtx;
  int64_t headDim = getHParam(arch, "attention.key_length", nEmbd / nHead);
  if (getHParam(arch, "attention.value_length", headDim) != headDim)
    return emitError(fileLoc) << "different key and value head sizes are not "
                                 "supported";
  int64_t ropeDims = getHParam(arch, "rope.dimension_count", headDim);
  float eps = static_cast<float>(
      reader.getFloat((arch + ".attention.layer_norm_rms_epsilon").str(), 1e-5));
  float theta = static_cast<float>(
      reader.getFloat((arch + ".rope.freq_base").str(), 10000.0));
  // Linear RoPE scaling: positions are multiplied by 1/factor.
  double factor = reader.getFloat((arch + ".rope.scaling.factor").str(), 0.0);
  if (factor <= 0)
    factor = reader.getFloat((arch + ".rope.scale_linear").str(), 0.0);
  std::string scalingType =
      reader.getString((arch + ".rope.scaling.type").str(), "linear");
  // Any other scaling would change the rotation in ways lowbit does not
  // compute: refuse it rather than evaluate a different model.
  if (scalingType != "none" && scalingType != "linear" &&
      scalingType != "yarn" && scalingType != "longrope")
    return emitError(fileLoc)
           << "RoPE scaling type '" << scalingType << "' (key " << arch
           << ".rope.scaling.type) is not supported yet; lowbit implements "
              "linear, YaRN and LongRoPE scaling and Llama-3.1 frequency "
              "factors (rope_freqs)";
  float freqScale = factor > 0 ? static_cast<float>(1.0 / factor) : 1.0f;
  auto key = [&](const char *suffix) {
    return (arch + ".rope.scaling." + suffix).str();
  };
  // cos/sin are multiplied by rope.scaling.attn_factor whatever the scaling
  // (llama.cpp's hparams.rope_attn_factor).
  float attnFactor =
      static_cast<float>(reader.getFloat(key("attn_factor"), 1.0));
  // LongRoPE (Phi-3 128k): short and long per-frequency factors, the long
  // ones for runs whose context exceeds the original one.
  const bool longRope = weights.count("rope_factors_long.weight") ||
                        weights.count("rope_factors_short.weight");
  if (longRope && !(weights.count("rope_factors_long.weight") &&
                    weights.count("rope_factors_short.weight")))
    return emitError(fileLoc) << "LongRoPE needs both rope_factors_long.weight "
                                 "and rope_factors_short.weight";
  if (scalingType == "longrope" && !longRope)
    return emitError(fileLoc)
           << arch << ".rope.scaling.type is 'longrope' but the file has no "
              "rope_factors_long.weight / rope_factors_short.weight";
  // YaRN with llama.cpp's defaults (ext_factor 1, beta_fast 32, beta_slow 1,
  // the original context from the file or the training context), each
  // overridable by its key.
  float extFactor = 0, betaFast = 32, betaSlow = 1;
  int64_t originalContext =
      longRope ? getHParam(arch, "rope.scaling.original_context_length", nCtx)
               : 0;
  if (scalingType == "yarn") {
    if (factor <= 0)
      return emitError(fileLoc) << "YaRN scaling needs " << arch
                                << ".rope.scaling.factor";
    if (reader.getFloat(key("yarn_log_multiplier"), 0.0) != 0.0)
      return emitError(fileLoc)
             << "key '" << key("yarn_log_multiplier")
             << "' (DeepSeek's YaRN attention scaling) is not supported yet";
    extFactor = static_cast<float>(reader.getFloat(key("yarn_ext_factor"), 1.0));
    attnFactor *=
        static_cast<float>(reader.getFloat(key("yarn_attn_factor"), 1.0));
    betaFast = static_cast<float>(reader.getFloat(key("yarn_beta_fast"), 32.0));
    betaSlow = static_cast<float>(reader.getFloat(key("yarn_beta_slow"), 1.0));
    originalContext =
        getHParam(arch, "rope.scaling.original_context_length", nCtx);
  }
  // GGUF llama weights are permuted for adjacent-pair rotation, and glm4
  // rotates adjacent pairs too (llama.cpp's LLAMA_ROPE_TYPE_NORM); qwen2,
  // qwen3 and phi3 rotate the two halves (NeoX).
  RopeMode ropeMode =
      arch == "llama" || arch == "glm4" ? RopeMode::normal : RopeMode::neox;
  // gemma2 and gemma3: embeddings times sqrt(width), GeGLU, post-norms,
  // sliding-window layers; gemma2 also soft-caps attention scores and the
  // logits, gemma3 normalises q and k per head.
  const bool gemma = arch == "gemma3" || arch == "gemma2";
  const bool gemma2 = arch == "gemma2";
  // Mixture of experts (llama with experts = Mixtral, qwen2moe, qwen3moe):
  // softmax routing over expert_count experts, expert_used_count chosen;
  // llama and qwen3moe renormalise the chosen weights, qwen2moe does not
  // and adds a shared expert behind a sigmoid gate.
  const int64_t nExperts = getHParam(arch, "expert_count", 0);
  const int64_t nExpertsUsed = getHParam(arch, "expert_used_count", 0);
  if (nExperts > 0 && (nExpertsUsed <= 0 || nExpertsUsed > nExperts))
    return emitError(fileLoc) << arch << ".expert_used_count " << nExpertsUsed
                              << " is not in [1, " << nExperts << "]";
  const bool sharedExpert = arch == "qwen2moe";
  const bool normalizeExperts = arch != "qwen2moe";
  const bool perHeadQKNorm =
      arch == "qwen3" || arch == "qwen3moe" || arch == "gemma3";
  const bool fusedQKV = arch == "phi3",
             fusedGateUp = arch == "phi3" || arch == "glm4";
  // glm4, gemma3: RMSNorm of the attention and FFN outputs before each
  // residual add.
  const bool postNorms = arch == "glm4" || gemma;
  // gemma3: sliding-window attention on five of every six layers (the sixth
  // global), with RoPE base 10000 on the local layers (llama.cpp's
  // n_swa_pattern = 6 and rope_freq_base_train_swa); gemma2: on the even
  // layers, window 4096 unless the file says otherwise, one RoPE base.
  const int64_t window =
      getHParam(arch, "attention.sliding_window", gemma2 ? 4096 : 0);
  const int64_t swaPattern = arch == "gemma3" ? 6 : gemma2 ? 2 : 0;
  const float localTheta = gemma2 ? theta : 10000.0f;
  // gemma2's soft caps (llama.cpp's defaults 50 and 30 when absent).
  const float attnSoftcap =
      gemma2 ? static_cast<float>(reader.getFloat(
                   (arch + ".attn_logit_softcapping").str(), 50.0))
             : 0.0f;
  const float finalSoftcap =
      gemma2 ? static_cast<float>(reader.getFloat(
                   (arch + ".final_logit_softcapping").str(), 30.0))
             : 0.0f;
  // Query scaling: 1/sqrt(head size), except gemma2 27B (46 layers), which
  // llama.cpp scales by 1/sqrt(width / heads).
  const float attnScale =
      gemma2 && nLayer == 46
          ? 1.0f / std::sqrt(static_cast<float>(nEmbd) / nHead)
          : 1.0f / std::sqrt(static_cast<float>(headDim));
  // Elsewhere a window is accepted only where it covers the whole context,
  // so that it cannot change a result.
  if (!swaPattern && window > 0 && window < nCtx)
    return emitError(fileLoc)
           << arch << ".attention.sliding_window = " << window
           << " is shorter than the context (" << nCtx
           << "); sliding-window attention is not supported yet for " << arch;

  Type i32 = builder.getI32Type(), f32 = builder.getF32Type();
  int64_t dyn = ShapedType::kDynamic;
  auto ids = RankedTensorType::get({dyn}, i32);
  auto act = [&](int64_t width) {
    return RankedTensorType::get({dyn, width}, f32);
  };
  auto cacheType = KVCacheType::get(context, nLayer, nCtx, nHeadKV, headDim);

  auto embedIt = weights.find("token_embd.weight");
  if (embedIt == weights.end())
    return emitError(fileLoc) << "missing tensor 'token_embd.weight' for a "
                              << arch << " model";
  int64_t nVocab = embedIt->second.getWeightType().getShape()[0];

  builder.setInsertionPointToEnd(module.getBody());
  auto funcType = builder.getFunctionType({ids, ids, cacheType}, {act(nVocab)});
  auto func = func::FuncOp::create(builder, fileLoc, "forward", funcType);
  Block *body = func.addEntryBlock();
  builder.setInsertionPointToStart(body);
  Value tokens = body->getArgument(0), positions = body->getArgument(1),
        cache = body->getArgument(2);

  // Looks up a weight and checks its shape; returns null after a diagnostic.
  auto weight = [&](const std::string &name, ArrayRef<int64_t> shape,
                    bool optional = false) -> Value {
    auto it = weights.find(name);
    if (it == weights.end()) {
      if (!optional)
        emitError(fileLoc) << "missing tensor '" << name << "' for a " << arch
                           << " model";
      return {};
    }
    QTensorType type = it->second.getWeightType();
    if (type.getShape() != shape) {
      InFlightDiagnostic diag = emitError(tensorLoc(name));
      diag << "tensor '" << name << "' has shape " << type
           << " but the hyperparameters give [";
      llvm::interleaveComma(shape, diag);
      diag << "]";
      return {};
    }
    return WeightOp::create(builder, tensorLoc(name), type,
                            FlatSymbolRefAttr::get(context, name));
  };
  auto epsAttr = builder.getF32FloatAttr(eps);
  // The expert block of layer prefix `p`: router, stacked experts (their
  // FFN width read from the tensors), and qwen2moe's shared expert.
  auto moeFFN = [&](Value input, const std::string &p, Location loc) -> Value {
    Value router = weight(p + "ffn_gate_inp.weight", {nExperts, nEmbd});
    auto gateIt = weights.find(p + "ffn_gate_exps.weight");
    if (!router || gateIt == weights.end()) {
      if (router)
        emitError(fileLoc) << "missing tensor '" << p
                           << "ffn_gate_exps.weight' for a " << arch
                           << " model with experts";
      return {};
    }
    ArrayRef<int64_t> gateShape = gateIt->second.getWeightType().getShape();
    const int64_t expertFF = gateShape.size() == 3 ? gateShape[1] : 0;
    Value gate =
        weight(p + "ffn_gate_exps.weight", {nExperts, expertFF, nEmbd});
    Value up = weight(p + "ffn_up_exps.weight", {nExperts, expertFF, nEmbd});
    Value down =
        weight(p + "ffn_down_exps.weight", {nExperts, nEmbd, expertFF});
    if (!gate || !up || !down)
      return {};
    SmallVector<Value> shared;
    if (sharedExpert) {
      auto sIt = weights.find(p + "ffn_gate_shexp.weight");
      if (sIt == weights.end()) {
        emitError(fileLoc) << "missing tensor '" << p
                           << "ffn_gate_shexp.weight' for a " << arch
                           << " model";
        return {};
      }
      const int64_t sharedFF = sIt->second.getWeightType().getShape()[0];
      shared = {weight(p + "ffn_gate_shexp.weight", {sharedFF, nEmbd}),
                weight(p + "ffn_up_shexp.weight", {sharedFF, nEmbd}),
                weight(p + "ffn_down_shexp.weight", {nEmbd, sharedFF}),
                weight(p + "ffn_gate_inp_shexp.weight", {nEmbd})};
      if (llvm::is_contained(shared, Value()))
        return {};
    }
    return MoEFFNOp::create(builder, loc, act(nEmbd), input, router, gate, up,
                            down, shared,
                            builder.getI64IntegerAttr(nExpertsUsed),
                            builder.getBoolAttr(normalizeExperts));
  };
  auto linear = [&](Value input, const std::string &prefix, int64_t out,
                    int64_t in) -> Value {
    Value w = weight(prefix + ".weight", {out, in});
    if (!w)
      return {};
    Value bias = weight(prefix + ".bias", {out}, /*optional=*/true);
    return MatmulOp::create(builder, tensorLoc(prefix + ".weight"), act(out),
                            input, w, bias);
  };

  Value table = weight("token_embd.weight", {nVocab, nEmbd});
  if (!table)
    return failure();
  Value x = EmbeddingOp::create(builder, tensorLoc("token_embd.weight"),
                                act(nEmbd), table, tokens);
  if (gemma) // embeddings times sqrt(width), computed in float as llama.cpp
    x = ScaleOp::create(
        builder, tensorLoc("token_embd.weight"), x,
        builder.getF32FloatAttr(std::sqrt(static_cast<float>(nEmbd))));
  // The residual stream entering layer `layer` (nLayer: the output head).
  auto boundary = [&](int64_t layer) {
    x = LayerBoundaryOp::create(
        builder, NameLoc::get(builder.getStringAttr("layer." +
                                                    std::to_string(layer)),
                              fileLoc),
        x, builder.getI64IntegerAttr(layer));
  };
  // Llama-3.1-style per-frequency divisors, shared by every layer's q and k;
  // or LongRoPE's short and long ones.
  Value ropeFactors = weight("rope_freqs.weight", {ropeDims / 2},
                             /*optional=*/true);
  if (!ropeFactors && weights.count("rope_freqs.weight"))
    return failure(); // Present but malformed: diagnosed by weight().
  Value longRopeFactors;
  if (longRope) {
    if (ropeFactors)
      return emitError(fileLoc) << "both rope_freqs.weight and LongRoPE "
                                   "factors: llama.cpp would use rope_freqs";
    ropeFactors = weight("rope_factors_short.weight", {ropeDims / 2});
    longRopeFactors = weight("rope_factors_long.weight", {ropeDims / 2});
    if (!ropeFactors || !longRopeFactors)
      return failure();
  }
  boundary(0);
  int64_t nFF = getHParam(arch, "feed_forward_length", 0);
  int64_t kvWidth = nHeadKV * headDim, qWidth = nHead * headDim;
  for (int64_t layer = 0; layer < nLayer; ++layer) {
    std::string p = "blk." + std::to_string(layer) + ".";
    Location loc = NameLoc::get(builder.getStringAttr(p + "attn"), fileLoc);
    Value attnNorm = weight(p + "attn_norm.weight", {nEmbd});
    if (!attnNorm)
      return failure();
    Value h = RMSNormOp::create(builder, loc, act(nEmbd), x, attnNorm, epsAttr,
                                IntegerAttr());
    Value q, k, v;
    if (fusedQKV) {
      // phi3: one matmul, rows q then k then v.
      Value qkv = linear(h, p + "attn_qkv", qWidth + 2 * kvWidth, nEmbd);
      if (!qkv)
        return failure();
      auto split = SplitOp::create(
          builder, loc, TypeRange{act(qWidth), act(kvWidth), act(kvWidth)}, qkv,
          builder.getDenseI64ArrayAttr({qWidth, kvWidth, kvWidth}));
      q = split.getResult(0);
      k = split.getResult(1);
      v = split.getResult(2);
    } else {
      q = linear(h, p + "attn_q", qWidth, nEmbd);
      k = linear(h, p + "attn_k", kvWidth, nEmbd);
      v = linear(h, p + "attn_v", kvWidth, nEmbd);
    }
    if (!q || !k || !v)
      return failure();
    if (perHeadQKNorm) {
      // qwen3: RMSNorm of every head of q and k before RoPE.
      Value qNorm = weight(p + "attn_q_norm.weight", {headDim});
      Value kNorm = weight(p + "attn_k_norm.weight", {headDim});
      if (!qNorm || !kNorm)
        return failure();
      auto group = builder.getI64IntegerAttr(headDim);
      q = RMSNormOp::create(builder, loc, q.getType(), q, qNorm, epsAttr,
                            group);
      k = RMSNormOp::create(builder, loc, k.getType(), k, kNorm, epsAttr,
                            group);
    }
    const bool local =
        swaPattern && window > 0 && layer % swaPattern < swaPattern - 1;
    auto rope = [&](Value input, int64_t heads) {
      return RopeOp::create(builder, loc, input.getType(), input, positions,
                            ropeFactors, longRopeFactors,
                            builder.getI64IntegerAttr(heads),
                            builder.getI64IntegerAttr(headDim),
                            builder.getI64IntegerAttr(ropeDims),
                            builder.getF32FloatAttr(local ? localTheta : theta),
                            RopeModeAttr::get(context, ropeMode),
                            builder.getF32FloatAttr(freqScale),
                            builder.getF32FloatAttr(extFactor),
                            builder.getF32FloatAttr(attnFactor),
                            builder.getI64IntegerAttr(originalContext),
                            builder.getF32FloatAttr(betaFast),
                            builder.getF32FloatAttr(betaSlow));
    };
    q = rope(q, nHead);
    k = rope(k, nHeadKV);
    Value attn = AttentionOp::create(
        builder, loc, act(qWidth), q, k, v, cache, positions,
        builder.getI64IntegerAttr(layer), builder.getI64IntegerAttr(nHead),
        builder.getF32FloatAttr(attnScale),
        local ? builder.getI64IntegerAttr(window) : IntegerAttr(),
        builder.getF32FloatAttr(attnSoftcap));
    Value attnOut = linear(attn, p + "attn_output", nEmbd, qWidth);
    if (!attnOut)
      return failure();
    if (postNorms) {
      Value post = weight(p + "post_attention_norm.weight", {nEmbd});
      if (!post)
        return failure();
      attnOut = RMSNormOp::create(builder, loc, act(nEmbd), attnOut, post,
                                  epsAttr, IntegerAttr());
    }
    x = AddOp::create(builder, loc, x, attnOut);

    Location ffnLoc = NameLoc::get(builder.getStringAttr(p + "ffn"), fileLoc);
    Value ffnNorm = weight(p + "ffn_norm.weight", {nEmbd});
    if (!ffnNorm)
      return failure();
    Value f = RMSNormOp::create(builder, ffnLoc, act(nEmbd), x, ffnNorm,
                                epsAttr, IntegerAttr());
    if (nFF <= 0)
      return emitError(fileLoc) << "invalid " << arch
                                << ".feed_forward_length " << nFF;
    Value down;
    if (nExperts > 0) {
      down = moeFFN(f, p, ffnLoc);
      if (!down)
        return failure();
    } else {
      Value gate, up;
      if (fusedGateUp) {
        // phi3: ffn_up holds the gate rows, then the up rows.
        Value gateUp = linear(f, p + "ffn_up", 2 * nFF, nEmbd);
        if (!gateUp)
          return failure();
        auto split =
            SplitOp::create(builder, ffnLoc, TypeRange{act(nFF), act(nFF)},
                            gateUp, builder.getDenseI64ArrayAttr({nFF, nFF}));
        gate = split.getResult(0);
        up = split.getResult(1);
      } else {
        gate = linear(f, p + "ffn_gate", nFF, nEmbd);
        up = linear(f, p + "ffn_up", nFF, nEmbd);
      }
      if (!gate || !up)
        return failure();
      // gemma: GELU-tanh gate (GeGLU); the others SiLU (SwiGLU).
      Value act0 = gemma ? GELUOp::create(builder, ffnLoc, gate).getResult()
                         : SiLUOp::create(builder, ffnLoc, gate).getResult();
      Value prod = MulOp::create(builder, ffnLoc, act0, up);
      down = linear(prod, p + "ffn_down", nEmbd, nFF);
      if (!down)
        return failure();
    }
    if (postNorms) {
      Value post = weight(p + "post_ffw_norm.weight", {nEmbd});
      if (!post)
        return failure();
      down = RMSNormOp::create(builder, ffnLoc, act(nEmbd), down, post, epsAttr,
                               IntegerAttr());
    }
    x = AddOp::create(builder, ffnLoc, x, down);
    boundary(layer + 1);
  }
  Value outNorm = weight("output_norm.weight", {nEmbd});
  if (!outNorm)
    return failure();
  x = RMSNormOp::create(builder, tensorLoc("output_norm.weight"), act(nEmbd), x,
                        outNorm, epsAttr, IntegerAttr());
  Value output = weight("output.weight", {nVocab, nEmbd}, /*optional=*/true);
  if (!output) {
    if (weights.count("output.weight"))
      return failure(); // Present but malformed: diagnosed by weight().
    output = table;     // Tied embeddings.
  }
  Value logits = MatmulOp::create(builder, tensorLoc("output.weight"),
                                  act(nVocab), x, output, Value());
  if (finalSoftcap > 0)
    logits = SoftCapOp::create(builder, tensorLoc("output.weight"), logits,
                               builder.getF32FloatAttr(finalSoftcap));
  func::ReturnOp::create(builder, fileLoc, logits);
  return success();
}

OwningOpRef<ModuleOp> GGUFImporter::run() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  // Architecture keys move to the typed lowbit.model (a #lowbit.model_key
  // keeps each one's place); everything else rides along as it is.
  std::string arch = reader.getString("general.architecture");
  SmallVector<Attribute> entries;
  SmallVector<NamedAttribute> fields;
  for (const gguf::KeyValue &kv : reader.metadata()) {
    Attribute value = convertValue(kv.value, /*topLevel=*/true);
    StringRef field = modelFieldOfKey(arch, kv.key);
    if (!field.empty() && (isFloatModelField(field) ? isa<FloatAttr>(value)
                                                    : isa<IntegerAttr>(value) &&
                                                          kv.value.type !=
                                                              gguf::ValueType::Bool)) {
      fields.push_back(builder.getNamedAttr(field, value));
      value = ModelKeyAttr::get(context);
    }
    entries.push_back(MetadataEntryAttr::get(context, kv.key, value));
  }
  (*module)->setAttr(kMetadataAttrName, builder.getArrayAttr(entries));
  if (!arch.empty())
    (*module)->setAttr(kModelAttrName,
                       ModelAttr::get(context, arch,
                                      builder.getDictionaryAttr(fields)));
  (*module)->setAttr(kGGUFVersionAttrName,
                     builder.getI32IntegerAttr(reader.version()));
  (*module)->setAttr(kSourceAttrName, builder.getStringAttr(path));

  if (failed(importWeights(*module)))
    return nullptr;
  if (options.buildGraph && !arch.empty()) {
    if (arch == "llama" || arch == "qwen2" || arch == "qwen3" ||
        arch == "phi3" || arch == "glm4" || arch == "gemma3" ||
        arch == "gemma2" ||
        arch == "qwen2moe" || arch == "qwen3moe") {
      if (failed(buildDecoder(*module, arch)))
        return nullptr;
    } else {
      emitWarning(fileLoc) << "architecture '" << arch
                           << "' has no graph builder yet; imported weights "
                              "and metadata only (presets work; "
                              "run/eval/calibration need the graph)";
    }
  }
  return module;
}

OwningOpRef<ModuleOp> mlir::lowbit::importGGUF(MLIRContext *context,
                                               const std::string &path,
                                               const GGUFImportOptions &options) {
  context->loadDialect<LowBitDialect, func::FuncDialect>();
  // Record an absolute path so the IR stays valid wherever it is moved.
  SmallString<256> absolute(path);
  if (llvm::sys::fs::make_absolute(absolute))
    absolute = path;
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  std::string absPath = absolute.str().str();
  gguf::Error err;
  std::unique_ptr<gguf::Reader> reader = gguf::Reader::open(absPath, err);
  if (!reader) {
    err.file = path; // Report the path as the user spelled it.
    emitError(FileLineColLoc::get(context, path, 0, 0)) << err.message();
    return nullptr;
  }
  GGUFImporter importer(context, *reader, absPath, options);
  return importer.run();
}
