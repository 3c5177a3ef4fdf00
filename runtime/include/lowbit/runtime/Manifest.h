//===- Manifest.h - manifest.json of a native artifact ----------*- C++ -*-===//
//
// The one definition of manifest.json, used by the compiler that writes it
// and the runtime that reads it. No LLVM/MLIR dependency. Example:
//
//   { "format": "lowbit-native", "version": 4, "abi_version": 3,
//     "target": "x86-64-v3", "triple": "x86_64-unknown-linux-gnu",
//     "files": { "code": "model.so", "code_size": 52104,
//                "code_sha256": "9f86d0...", "weights": "weights.bin",
//                "weights_size": 4329472, "weights_sha256": "2c26b4...",
//                "metadata": "metadata.gguf" },
//     "model": { "architecture": "llama", "name": "...", "vocab": 512,
//                "context": 512, "embedding": 64, "layers": 5, "heads": 8,
//                "kv_heads": 4, "head_dim": 8, "feed_forward": 172 },
//     "tensors": [
//       { "name": "blk.0.attn_qkv.weight", "format": "q4_k",
//         "shape": [512, 256], "interleave": 8, "offset": 0,
//         "size": 73728, "kernel": "lb_mm_q4_k_512x256_r8",
//         "quantizer": "lb_quant_q8_k_256", "activation_row_bytes": 292,
//         "parts": [ { "name": "blk.0.attn_q.weight", "rows": 256 }, ... ] },
//       ... ] }
//
// The model's program is code: `lb_forward` in the code file, generated from
// @forward after fusion (KernelABI.h); the manifest describes the files and
// the weights the program names, and "model" says what the graph's shapes
// say about the model, for reports only.
// A tensor without "kernel" runs on the runtime's decode-to-f32 fall-back;
// "note" says why when the compiler knows. "parts" lists, in row order, the
// weights a fused tensor concatenates.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_RUNTIME_MANIFEST_H
#define LOWBIT_RUNTIME_MANIFEST_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit::runtime {

constexpr const char *kManifestFormat = "lowbit-native";
/// 2: the model is a graph of ops (version 1 named llama hyperparameters).
/// 3: sizes and SHA-256 content hashes of the code and weights files.
/// 4: no graph: the program is generated code (KernelABI v3); the code file
///    is always there.
constexpr int64_t kManifestVersion = 4;
constexpr const char *kManifestFile = "manifest.json";

/// For reports only: the runtime runs the generated program.
struct ModelInfo {
  std::string architecture;
  std::string name;
  /// What the graph's shapes say (exec::GraphSummary; 0 = not said).
  int64_t vocab = 0, context = 0, embedding = 0, layers = 0, heads = 0,
          kvHeads = 0, headDim = 0, feedForward = 0;
};

struct TensorPart {
  std::string name;
  int64_t rows = 0;
};

struct ManifestTensor {
  std::string name;
  std::string format; // a name of the format table ("q4_k")
  std::vector<int64_t> shape; // [rows, cols] or [n]
  uint32_t interleave = 1;    // rows interleaved by the packed layout
  uint64_t offset = 0;        // in weights.bin
  uint64_t size = 0;
  std::string kernel;    // lb_matmul_kernel_fn symbol; empty: fall-back
  std::string quantizer; // lb_quantize_act_fn symbol; empty: f32 input
  uint64_t activationRowBytes = 0; // bytes of one quantized input row
  std::vector<TensorPart> parts;
  std::string note;

  /// Rows of the row-major matrix the data is: a stack of expert matrices
  /// [E, rows, cols] is E * rows rows.
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i)
      r *= shape[i];
    return r;
  }
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
};

struct Manifest {
  int64_t version = kManifestVersion;
  int64_t abiVersion = 0;
  std::string target, triple;
  std::string codeFile;  // model.so, or model.o for static linking
  uint64_t codeSize = 0;
  std::string codeSha256; // 64 lowercase hex digits, as sha256sum prints
  std::string weightsFile = "weights.bin";
  uint64_t weightsSize = 0;
  std::string weightsSha256;
  std::string metadataFile; // GGUF with the tokenizer keys; may be empty
  ModelInfo model;
  std::vector<ManifestTensor> tensors;

  const ManifestTensor *find(std::string_view name) const;
};

/// Parses and checks manifest.json text: every field's type, the format
/// names, shapes, that every tensor lies inside weights_size and is as big
/// as its format and shape say, that fused parts add up. False with `err`
/// naming the field on any problem; never throws.
bool parseManifest(std::string_view text, Manifest &out, std::string &err);

/// The JSON text of a manifest (keys in a fixed order, 2-space indent).
std::string writeManifest(const Manifest &m);

} // namespace lowbit::runtime

#endif // LOWBIT_RUNTIME_MANIFEST_H
