//===- Presets.cpp - llama.cpp-style quantization presets -----------------===//
//
// The mixing rules follow llama.cpp's llama_tensor_get_type (src/
// llama-quant.cpp) for the presets whose formats lowbit implements, so a
// lowbit file of a preset has the same per-tensor formats (and size) as
// llama.cpp's. One quirk is kept on purpose: llama.cpp counts attn_v and
// ffn_down layers in the order it visits tensors, which is the alphabetical
// order of their names (blk.10 before blk.2), so "layer position" rules use
// that rank.
//
//===----------------------------------------------------------------------===//
#include "lowbit/Quant/Presets.h"
#include "lowbit/GGUF/TensorNames.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <cstdio>
#include <regex>

namespace lowbit::quant {

using formats::Format;

namespace {
// general.file_type values (LLAMA_FTYPE_*).
enum FileType : uint32_t {
  ALL_F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 7,
  Q5_0 = 8,
  Q5_1 = 9,
  Q2_K = 10,
  Q3_K_S = 11,
  Q3_K_M = 12,
  Q3_K_L = 13,
  Q4_K_S = 14,
  Q4_K_M = 15,
  Q5_K_S = 16,
  Q5_K_M = 17,
  Q6_K = 18,
  IQ2_XXS = 19,
  IQ2_XS = 20,
  Q2_K_S = 21,
  IQ3_XS = 22,
  IQ3_XXS = 23,
  IQ1_S = 24,
  IQ4_NL = 25,
  IQ3_S = 26,
  IQ3_M = 27,
  IQ2_S = 28,
  IQ2_M = 29,
  IQ4_XS = 30,
  IQ1_M = 31,
  BF16 = 32,
  TQ1_0 = 36,
  TQ2_0 = 37,
};

enum class Category {
  TokenEmbd,
  AttnQ,
  AttnV, // attn_v, attn_qkv, attn_kv_b: the sensitive value projections
  AttnK,
  AttnQKV,
  AttnOutput,
  FfnUp,
  FfnGate,
  FfnDown,
  Output,
  Other
};

bool startsWith(const std::string &s, const char *prefix) {
  return s.rfind(prefix, 0) == 0;
}

/// The role of a tensor as the rules see it: the one the IR gives, or for a
/// caller without roles the one its llama.cpp name stands for.
gguf::TensorRole roleOf(const TensorDesc &t) {
  if (!t.kind.empty())
    return {t.kind, t.layer, -1};
  if (std::optional<gguf::TensorRole> role = gguf::roleOfTensorName(t.name))
    return *role;
  return {};
}

/// llama.cpp's tensor categories, by role kind (the experts' and shared
/// experts' ffn tensors count with their dense kind, as llama.cpp's name
/// matching makes them).
Category categorize(const TensorDesc &t) {
  const std::string kind = roleOf(t).kind;
  if (kind == "output")
    return Category::Output;
  if (kind == "token_embd" || kind == "per_layer_token_embd")
    return Category::TokenEmbd;
  if (kind == "attn_qkv")
    return Category::AttnQKV;
  if (kind == "attn_kv_b" || kind == "attn_v")
    return Category::AttnV;
  if (kind == "attn_k")
    return Category::AttnK;
  if (kind == "attn_q")
    return Category::AttnQ;
  if (kind == "attn_output")
    return Category::AttnOutput;
  if (startsWith(kind, "ffn_up"))
    return Category::FfnUp;
  if (startsWith(kind, "ffn_gate"))
    return Category::FfnGate;
  if (startsWith(kind, "ffn_down"))
    return Category::FfnDown;
  return Category::Other;
}

/// The presets of llama.cpp's very-low-bit branch: one rule set for all
/// their tensors but output and token_embd (llama_tensor_get_type).
bool isLowBitFamily(uint32_t ftype) {
  return ftype == IQ2_XXS || ftype == IQ2_XS || ftype == IQ1_S ||
         ftype == IQ2_S || ftype == IQ2_M || ftype == IQ1_M;
}

bool isValueLike(Category c) {
  return c == Category::AttnV || c == Category::AttnQKV;
}

/// llama.cpp's "use more bits" layers: the first and last eighth, and every
/// third layer in between.
bool useMoreBits(int64_t layer, int64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 ||
         (layer - layers / 8) % 3 == 2;
}

} // namespace

Format fallbackFormat(Format f) {
  switch (f) {
  case Format::IQ4_XS:
  // llama.cpp (llama-quant.cpp) falls back IQ2_* and IQ3_* to IQ4_NL too.
  case Format::IQ2_XXS:
  case Format::IQ2_XS:
  case Format::IQ2_S:
  case Format::IQ3_XXS:
  case Format::IQ3_S:
  case Format::IQ1_S:
  case Format::IQ1_M:
    return Format::IQ4_NL;
  case Format::Q2_K:
  case Format::Q3_K:
  case Format::TQ1_0:
  case Format::TQ2_0:
    return Format::Q4_0;
  case Format::Q4_K:
    return Format::Q5_0;
  case Format::Q5_K:
    return Format::Q5_1;
  case Format::Q6_K:
    return Format::Q8_0;
  default:
    return Format::F16;
  }
}

namespace {

bool isQuantizedFormat(Format f) {
  return formats::info(f).kind != formats::FormatKind::Float;
}

} // namespace

const std::vector<Preset> &allPresets() {
  static const std::vector<Preset> presets = {
      {"q4_0", Q4_0, Format::Q4_0, "4.5 bpw, 32-weight blocks, one scale"},
      {"q4_1", Q4_1, Format::Q4_1, "5.0 bpw, scale and min per 32 weights"},
      {"q5_0", Q5_0, Format::Q5_0, "5.5 bpw, 32-weight blocks, one scale"},
      {"q5_1", Q5_1, Format::Q5_1, "6.0 bpw, scale and min per 32 weights"},
      {"q8_0", Q8_0, Format::Q8_0, "8.5 bpw, nearly lossless"},
      {"q2_k", Q2_K, Format::Q2_K, "Q2_K mostly, attn_v/ffn_down/attn_output Q3_K/Q4_K"},
      {"q2_k_s", Q2_K_S, Format::Q2_K, "Q2_K nearly everywhere (needs an imatrix)"},
      {"q3_k_s", Q3_K_S, Format::Q3_K, "Q3_K everywhere but the output"},
      {"q3_k_m", Q3_K_M, Format::Q3_K, "Q3_K, attn_v/ffn_down/attn_output Q4_K/Q5_K"},
      {"q3_k_l", Q3_K_L, Format::Q3_K, "Q3_K, attn_v/ffn_down/attn_output Q5_K"},
      {"q4_k_s", Q4_K_S, Format::Q4_K, "Q4_K, first attn_v and ffn_down Q5_K"},
      {"q4_k_m", Q4_K_M, Format::Q4_K, "Q4_K, half of attn_v and ffn_down Q6_K"},
      {"q5_k_s", Q5_K_S, Format::Q5_K, "Q5_K everywhere but the output"},
      {"q5_k_m", Q5_K_M, Format::Q5_K, "Q5_K, half of attn_v and ffn_down Q6_K"},
      {"q6_k", Q6_K, Format::Q6_K, "6.5625 bpw everywhere"},
      {"iq1_s", IQ1_S, Format::IQ1_S, "1.56 bpw lattice (needs an imatrix); attn_v/token_embd Q2_K, output Q5_K"},
      {"iq1_m", IQ1_M, Format::IQ1_M, "1.75 bpw lattice (needs an imatrix); attn_v/token_embd Q2_K, output Q5_K"},
      {"iq2_xxs", IQ2_XXS, Format::IQ2_XXS, "2.06 bpw lattice (needs an imatrix); attn_v/token_embd Q2_K"},
      {"iq2_xs", IQ2_XS, Format::IQ2_XS, "2.31 bpw lattice (needs an imatrix); attn_v/token_embd Q2_K"},
      {"iq2_s", IQ2_S, Format::IQ2_XS, "IQ2_XS mostly (needs an imatrix); attn_v/attn_output IQ3_S"},
      {"iq2_m", IQ2_M, Format::IQ2_S, "IQ2_S mostly; attn_v/attn_output/token_embd IQ3_S"},
      {"iq3_xxs", IQ3_XXS, Format::IQ3_XXS, "3.06 bpw lattice; attn_q/attn_k IQ2_S, attn_output IQ3_S"},
      {"iq3_xs", IQ3_XS, Format::IQ3_S, "IQ3_S, middle ffn_gate/ffn_up and attn_q/attn_k IQ3_XXS"},
      {"iq3_s", IQ3_S, Format::IQ3_S, "3.44 bpw lattice everywhere but the output"},
      {"iq3_m", IQ3_M, Format::IQ3_S, "IQ3_S, attn_v/attn_output Q4_K"},
      {"iq4_nl", IQ4_NL, Format::IQ4_NL, "4.5 bpw non-linear codebook, 32-weight blocks"},
      {"iq4_xs", IQ4_XS, Format::IQ4_XS, "4.25 bpw non-linear codebook, super-blocks"},
      {"tq1_0", TQ1_0, Format::TQ1_0, "ternary 1.69 bpw (for ternary-trained models)"},
      {"tq2_0", TQ2_0, Format::TQ2_0, "ternary 2.06 bpw (for ternary-trained models)"},
      {"f16", F16, Format::F16, "half precision matrices"},
      {"bf16", BF16, Format::BF16, "bfloat16 matrices"},
      {"f32", ALL_F32, Format::F32, "no quantization"},
  };
  return presets;
}

const Preset *findPreset(const std::string &name) {
  std::string lower(name);
  for (char &c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const Preset &p : allPresets())
    if (lower == p.name)
      return &p;
  return nullptr;
}

bool presetRequiresImportance(const Preset &preset) {
  switch (preset.llamaFileType) {
  case Q2_K_S:
  case IQ1_S:
  case IQ1_M:
  case IQ2_XXS:
  case IQ2_XS:
  case IQ2_S:
    return true;
  default:
    return false;
  }
}

bool isQuantizable(const gguf::TensorRole &role, size_t rank) {
  if (rank < 2)
    return false;
  // A matrix no importer gave a role is what quantization is for.
  if (role.kind.empty())
    return true;
  const std::string &kind = role.kind;
  auto endsWith = [&](const char *suffix) {
    size_t n = std::char_traits<char>::length(suffix);
    return kind.size() >= n && kind.compare(kind.size() - n, n, suffix) == 0;
  };
  // llama.cpp keeps these in their file type (llama_tensor_quantize_impl's
  // `quantize` test): biases, norms, the MoE router, positional tables and
  // the small side matrices of some families.
  if (endsWith(".bias") || endsWith("_norm"))
    return false;
  static const char *const keptKinds[] = {
      "ffn_gate_inp", "per_layer_model_proj", "position_embd", "token_types",
      "ssm_conv1d",   "attn_rel_b"};
  for (const char *kept : keptKinds)
    if (kind == kept)
      return false;
  static const char *const keptFamilies[] = {"altup", "laurel", "time_mix_"};
  for (const char *family : keptFamilies)
    if (startsWith(kind, family))
      return false;
  return true;
}

const char *weightFormatProblem(Format format) {
  if (format == Format::Q8_K)
    return "q8_k is the activation format of the K-quant kernels; llama.cpp "
           "has no Q8_K weight kernels (use q8_0)";
  return nullptr;
}

bool parseTypeOverride(const std::string &text, TypeOverride &out,
                       std::string &error) {
  size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    error = "--tensor-type expects REGEX=FORMAT, got '" + text + "'";
    return false;
  }
  const formats::FormatInfo *f = formats::findByName(text.substr(eq + 1));
  if (!f) {
    error = "unknown format '" + text.substr(eq + 1) + "' in --tensor-type '" +
            text + "'";
    return false;
  }
  if (const char *why = weightFormatProblem(f->format)) {
    error = "--tensor-type '" + text + "': " + why;
    return false;
  }
  out.pattern = text.substr(0, eq);
  out.format = f->format;
  return true;
}

bool chooseFormats(const std::vector<TensorDesc> &tensors,
                   const ModelShape &model, const PresetOptions &options,
                   std::vector<TensorChoice> &choices, std::string &error) {
  const Preset *preset = options.preset;
  uint32_t ftype = preset ? preset->llamaFileType : ALL_F32;
  Format defaultFormat = preset ? preset->defaultFormat : Format::F32;
  std::vector<std::regex> patterns;
  for (const TypeOverride &o : options.overrides) {
    try {
      patterns.emplace_back(o.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error &e) {
      error = "invalid --tensor-type regex '" + o.pattern + "': " + e.what();
      return false;
    }
  }

  bool hasOutput = false;
  int64_t valueTensors = 0;
  for (const TensorDesc &t : tensors) {
    Category c = categorize(t);
    hasOutput |= c == Category::Output;
    valueTensors += isValueLike(c);
  }
  // Rank of each tensor among its category in name order (see file comment).
  std::map<std::string, int64_t> rankInCategory;
  {
    std::map<Category, std::vector<std::string>> byCategory;
    for (const TensorDesc &t : tensors)
      byCategory[categorize(t)].push_back(t.name);
    for (auto &[category, names] : byCategory) {
      std::sort(names.begin(), names.end());
      for (size_t i = 0; i < names.size(); ++i)
        rankInCategory[names[i]] = static_cast<int64_t>(i);
    }
  }
  const int64_t gqa = model.kvHeads > 0 ? model.heads / model.kvHeads : 1;
  const int64_t layers = model.layers;
  const bool falcon = model.architecture == "falcon";
  const bool is70B = model.architecture == "llama" && layers == 80;

  // llama.cpp's layer_info: with experts the layer the tensor is in,
  // otherwise its rank among its category (see the file comment).
  auto layerOf = [&](const TensorDesc &t, int64_t rank) {
    if (model.experts > 1 && roleOf(t).layer >= 0)
      return roleOf(t).layer;
    return rank;
  };

  // llama_tensor_get_type_impl for the presets lowbit supports.
  auto mixed = [&](const TensorDesc &t, Category category, Format f) {
    int64_t rank = rankInCategory[t.name];
    int64_t rowLength = t.shape.back();
    if (category == Category::Output ||
        (!hasOutput && category == Category::TokenEmbd)) {
      if (options.outputType)
        return *options.outputType;
      if (falcon || rowLength % formats::info(f).blockSize != 0)
        return Format::Q8_0;
      if (isLowBitFamily(ftype) || ftype == IQ3_XXS)
        return Format::Q5_K;
      return f != Format::Q8_0 ? Format::Q6_K : f;
    }
    if (category == Category::TokenEmbd) {
      if (options.tokenEmbeddingType)
        return *options.tokenEmbeddingType;
      if (ftype == IQ2_XXS || ftype == IQ2_XS || ftype == IQ1_S ||
          ftype == IQ1_M)
        return Format::Q2_K;
      if (ftype == IQ2_S || ftype == IQ2_M || ftype == IQ3_XXS)
        return Format::IQ3_S;
      if (ftype == TQ1_0 || ftype == TQ2_0)
        return Format::Q4_K;
      return f;
    }
    if (isLowBitFamily(ftype)) {
      // llama.cpp's very-low-bit branch: nothing after it applies. Its
      // ffn_down test reads the raw counter, not the layer.
      const bool iq2sm = ftype == IQ2_S || ftype == IQ2_M;
      if (category == Category::AttnV && roleOf(t).kind == "attn_v")
        return gqa >= 4 || model.experts >= 4 ? Format::Q4_K
               : iq2sm                        ? Format::IQ3_S
                                              : Format::Q2_K;
      if (category == Category::AttnK && model.experts == 8)
        return Format::Q4_K;
      if (category == Category::FfnDown)
        return rank < layers / 8 ? (iq2sm ? Format::IQ3_S : Format::Q2_K) : f;
      if (category == Category::AttnOutput) {
        if (model.experts == 8)
          return Format::Q5_K;
        if (ftype == IQ1_S || ftype == IQ1_M)
          return Format::IQ2_XXS;
        if (iq2sm)
          return Format::IQ3_S;
      }
      return f;
    }
    // attn_qkv counts among the value tensors (valueTensors) but has its own
    // rule below, as in llama_tensor_get_type.
    if (category == Category::AttnV) {
      int64_t i = rank;
      if (ftype == Q2_K)
        f = gqa >= 4 ? Format::Q4_K : Format::Q3_K;
      else if (ftype == Q2_K_S && gqa >= 4)
        f = Format::Q4_K;
      else if (ftype == IQ3_XXS)
        f = gqa >= 4                 ? Format::Q4_K
            : !options.hasImportance ? Format::IQ3_S
                                     : Format::IQ3_XXS;
      else if ((ftype == IQ3_XS || ftype == IQ3_S) && gqa >= 4)
        f = Format::Q4_K;
      else if (ftype == IQ3_M)
        f = Format::Q4_K;
      else if (ftype == Q3_K_M)
        f = i < 2 ? Format::Q5_K : Format::Q4_K;
      else if (ftype == Q3_K_L)
        f = Format::Q5_K;
      else if ((ftype == IQ4_NL || ftype == IQ4_XS) && gqa >= 4)
        f = Format::Q5_K;
      else if ((ftype == Q4_K_M || ftype == Q5_K_M) &&
               useMoreBits(i, valueTensors))
        f = Format::Q6_K;
      else if (ftype == Q4_K_S && i < 4)
        f = Format::Q5_K;
      if (is70B && (f == Format::Q3_K || f == Format::Q4_K))
        f = Format::Q5_K;
      if (model.experts == 8)
        f = Format::Q8_0;
      return f;
    }
    if (category == Category::AttnK) {
      if (model.experts == 8)
        f = Format::Q8_0;
      else if (ftype == IQ3_XS)
        f = Format::IQ3_XXS;
      else if (ftype == IQ3_XXS)
        f = Format::IQ2_S;
      return f;
    }
    if (category == Category::AttnQ) {
      if (ftype == IQ3_XS)
        f = Format::IQ3_XXS;
      else if (ftype == IQ3_XXS)
        f = Format::IQ2_S;
      return f;
    }
    if (category == Category::FfnDown) {
      int64_t i = layerOf(t, rank), n = layers;
      if (ftype == Q2_K)
        f = Format::Q3_K;
      else if (ftype == Q2_K_S) {
        if (i < n / 8)
          f = Format::Q4_K;
      } else if (ftype == IQ3_XXS && !options.hasImportance)
        f = i < n / 8 ? Format::Q4_K : Format::Q3_K;
      else if (ftype == Q3_K_M)
        f = i < n / 16                        ? Format::Q5_K
            : !falcon || useMoreBits(i, n) ? Format::Q4_K
                                           : Format::Q3_K;
      else if (ftype == IQ3_M &&
               (i < n / 8 || (model.experts == 8 && useMoreBits(i, n))))
        f = Format::Q4_K;
      else if (ftype == Q3_K_L)
        f = falcon ? Format::Q4_K : Format::Q5_K;
      else if (ftype == Q4_K_M) {
        if (falcon)
          f = i < n / 16           ? Format::Q6_K
              : useMoreBits(i, n) ? Format::Q5_K
                                  : Format::Q4_K;
        else if (useMoreBits(i, n))
          f = Format::Q6_K;
      } else if (i < n / 8 && (ftype == IQ4_NL || ftype == IQ4_XS) &&
                 !options.hasImportance)
        f = Format::Q5_K;
      else if (ftype == Q5_K_M && useMoreBits(i, n))
        f = Format::Q6_K;
      else if (ftype == Q4_K_S && !falcon && i < n / 8)
        f = Format::Q5_K;
      else if ((ftype == Q4_0 || ftype == Q5_0) && options.hasImportance &&
               i < n / 8)
        f = ftype == Q4_0 ? Format::Q4_1 : Format::Q5_1;
      return f;
    }
    if (category == Category::AttnOutput) {
      if (!falcon) {
        if (model.experts == 8) {
          if (ftype == Q2_K || ftype == IQ3_XS || ftype == IQ3_XXS ||
              ftype == Q3_K_S || ftype == Q3_K_M || ftype == IQ4_NL ||
              ftype == Q4_K_S || ftype == Q4_K_M || ftype == IQ3_S ||
              ftype == IQ3_M || ftype == IQ4_XS)
            f = Format::Q5_K;
        } else if (ftype == Q2_K)
          f = Format::Q3_K;
        else if (ftype == IQ3_XXS)
          f = Format::IQ3_S;
        else if (ftype == Q3_K_M)
          f = Format::Q4_K;
        else if (ftype == Q3_K_L)
          f = Format::Q5_K;
        else if (ftype == IQ3_M)
          f = Format::Q4_K;
      } else if (ftype == Q3_K_L)
        f = Format::Q4_K;
      return f;
    }
    if (category == Category::AttnQKV) {
      if (ftype == Q3_K_M || ftype == Q3_K_L || ftype == IQ3_M)
        f = Format::Q4_K;
      else if (ftype == Q4_K_M)
        f = Format::Q5_K;
      else if (ftype == Q5_K_M)
        f = Format::Q6_K;
    }
    if (category == Category::FfnGate || category == Category::FfnUp) {
      int64_t i = layerOf(t, rank), n = layers;
      if (ftype == IQ3_XS && i >= n / 8 && i < 7 * n / 8)
        f = Format::IQ3_XXS;
    }
    return f;
  };

  choices.clear();
  for (const TensorDesc &t : tensors) {
    TensorChoice choice;
    choice.format = t.current;
    Category category = categorize(t);
    if (!isQuantizable(roleOf(t), t.shape.size())) {
      choices.push_back(choice);
      continue;
    }
    choice.quantized = true;
    if (options.tokenEmbeddingType && category == Category::TokenEmbd) {
      choice.format = *options.tokenEmbeddingType;
      choice.note = "--token-embedding-type";
    } else if (options.outputType && category == Category::Output) {
      choice.format = *options.outputType;
      choice.note = "--output-tensor-type";
    } else {
      Format f = defaultFormat;
      if (isQuantizedFormat(defaultFormat)) {
        bool manual = false;
        for (size_t i = 0; i < patterns.size(); ++i) {
          if (std::regex_search(t.name, patterns[i])) {
            f = options.overrides[i].format;
            choice.note = "--tensor-type '" + options.overrides[i].pattern + "'";
            manual = true;
            break;
          }
        }
        if (!manual && !options.pure) {
          f = mixed(t, category, f);
          if (f != defaultFormat)
            choice.note = "preset rule";
        }
        if (!manual && options.gate) {
          const GateRule *rule = nullptr;
          Format gated =
              options.gate->apply(t.kind, t.layer, layers, f, &rule);
          if (gated != f)
            choice.note = "dynamic-gate rule at line " +
                          std::to_string(rule ? rule->line : 0);
          f = gated;
        }
        int64_t rowLength = t.shape.back();
        if (rowLength % formats::info(f).blockSize != 0) {
          Format fb = fallbackFormat(f);
          if (rowLength % formats::info(fb).blockSize != 0)
            fb = Format::F16;
          choice.note = std::string("row length ") + std::to_string(rowLength) +
                        " is not a multiple of " + formats::ggmlName(f) +
                        "'s block; fell back";
          choice.fellBack = true;
          f = fb;
        }
      }
      choice.format = f;
    }
    choices.push_back(choice);
  }
  return true;
}

} // namespace lowbit::quant
