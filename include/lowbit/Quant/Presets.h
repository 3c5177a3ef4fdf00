//===- Presets.h - llama.cpp-style quantization presets ---------*- C++ -*-===//
//
// The file types ("presets") llama.cpp users know, and the per-tensor mixing
// rules that go with them: output and embedding types, attn_v / ffn_down
// bumps by layer position, fall-backs when a row length is not a multiple of
// the block size, user overrides (--tensor-type REGEX=FORMAT, first match
// wins), --pure. No MLIR dependency; the lowbit-assign-formats pass and the
// driver call it.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_QUANT_PRESETS_H
#define LOWBIT_QUANT_PRESETS_H

#include "lowbit/Formats/Formats.h"
#include "lowbit/GGUF/TensorNames.h"
#include "lowbit/Quant/DynamicGate.h"

#include <optional>
#include <string>
#include <vector>

namespace lowbit::quant {

struct Preset {
  const char *name;       // lower case, e.g. "q4_k_m"
  uint32_t llamaFileType; // value of general.file_type (LLAMA_FTYPE_*)
  formats::Format defaultFormat;
  const char *description;
};

/// All presets, in a stable order.
const std::vector<Preset> &allPresets();
/// Whether llama.cpp's quantizer refuses `preset` without an importance
/// matrix (Q2_K_S, IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S). lowbit refuses
/// them too: GGML has no plain encoding of IQ1_S, IQ2_XXS or IQ2_XS, and the
/// others are poor without one.
bool presetRequiresImportance(const Preset &preset);
/// Case-insensitive lookup ("Q4_K_M", "q4_k_m"); null when unknown.
const Preset *findPreset(const std::string &name);

/// One weight tensor as the rules see it.
struct TensorDesc {
  std::string name;
  /// Row-major shape; the last dimension is the row length (GGML ne0).
  std::vector<int64_t> shape;
  formats::Format current;
  /// The weight's role kind (attn_q, ffn_down_exps, ...) and layer (-1:
  /// outside the layers), for rule tables (DynamicGate); "" when unknown.
  std::string kind;
  int64_t layer = -1;
};

struct ModelShape {
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t experts = 0;
  std::string architecture;
};

struct TypeOverride {
  std::string pattern; // ECMAScript regex, searched in the tensor name
  formats::Format format;
};

struct PresetOptions {
  const Preset *preset = nullptr;
  std::vector<TypeOverride> overrides; // first match wins
  std::optional<formats::Format> outputType;
  std::optional<formats::Format> tokenEmbeddingType;
  bool pure = false;        // default type everywhere (but fall-backs)
  bool hasImportance = false; // some rules differ with an imatrix
  /// Applied over the preset's choices (not over --tensor-type,
  /// --output-tensor-type or --token-embedding-type pins); null: none.
  const GateTable *gate = nullptr;
};

struct TensorChoice {
  /// The format to store the tensor in (== current when left alone).
  formats::Format format;
  bool quantized = false; // false: the tensor is not quantizable (norms...)
  bool fellBack = false;  // the rule's first choice did not fit the shape
  std::string note;       // why, for reports ("override 'ffn_.*'", ...)
};

/// Chooses a format for every tensor (same order as `tensors`). Returns
/// false with `error` set for a malformed override regex.
bool chooseFormats(const std::vector<TensorDesc> &tensors,
                   const ModelShape &model, const PresetOptions &options,
                   std::vector<TensorChoice> &choices, std::string &error);

/// Why `format` cannot store a weight in a GGUF file llama.cpp runs, or null
/// when it can (Q8_K exists only as the activation blocks of the K-quant
/// kernels; formats without a GGML type cannot go into GGUF).
const char *weightFormatProblem(formats::Format format);

/// Parses "REGEX=FORMAT" for --tensor-type.
bool parseTypeOverride(const std::string &text, TypeOverride &out,
                       std::string &error);

/// GGML's quantization version, written as general.quantization_version.
constexpr uint32_t kGGMLQuantizationVersion = 2;

/// The format llama.cpp falls back to when a row length is not a multiple of
/// `format`'s block (tensor_type_fallback); F16 when there is none. The
/// caller checks that the fall-back itself fits.
formats::Format fallbackFormat(formats::Format format);

/// Whether llama.cpp would quantize a weight of this role and rank at all
/// (a matrix without a role: yes).
bool isQuantizable(const gguf::TensorRole &role, size_t rank);

} // namespace lowbit::quant

#endif // LOWBIT_QUANT_PRESETS_H
