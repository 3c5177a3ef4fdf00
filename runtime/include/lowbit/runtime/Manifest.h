//===- Manifest.h - manifest.json of a native artifact ----------*- C++ -*-===//
//
// The one definition of manifest.json, used by the compiler that writes it
// and the runtime that reads it. No LLVM/MLIR dependency. Example:
//
//   { "format": "lowbit-native", "version": 1, "abi_version": 1,
//     "target": "x86-64-v3", "triple": "x86_64-unknown-linux-gnu",
//     "files": { "code": "model.so", "weights": "weights.bin",
//                "weights_size": 4329472, "metadata": "metadata.gguf" },
//     "model": { "architecture": "llama", "name": "...", "vocab_size": 4096,
//                "embedding_length": 256, ... "rope_mode": "normal" },
//     "tensors": [
//       { "name": "blk.0.attn_qkv.weight", "format": "q4_k",
//         "shape": [512, 256], "interleave": 8, "offset": 0,
//         "size": 73728, "kernel": "lb_mm_q4_k_512x256_r8",
//         "quantizer": "lb_quant_q8_k_256", "activation_row_bytes": 292,
//         "parts": [ { "name": "blk.0.attn_q.weight", "rows": 256 }, ... ] },
//       ... ] }
//
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
constexpr int64_t kManifestVersion = 1;
constexpr const char *kManifestFile = "manifest.json";

struct ModelParams {
  std::string architecture = "llama";
  std::string name;
  int64_t vocabSize = 0;
  int64_t embeddingLength = 0;
  int64_t blockCount = 0;
  int64_t feedForwardLength = 0;
  int64_t headCount = 0;
  int64_t headCountKV = 0;
  int64_t headDim = 0;
  int64_t ropeDims = 0;
  int64_t contextLength = 0;
  double ropeFreqBase = 10000.0;
  double ropeFreqScale = 1.0;
  double rmsNormEps = 1e-5;
  std::string ropeMode = "normal"; // "normal" | "neox"
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

  int64_t rows() const { return shape.size() > 1 ? shape[0] : 1; }
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
};

struct Manifest {
  int64_t version = kManifestVersion;
  int64_t abiVersion = 0;
  std::string target, triple;
  std::string codeFile;  // empty when no tensor has a kernel
  std::string weightsFile = "weights.bin";
  uint64_t weightsSize = 0;
  std::string metadataFile; // GGUF with the tokenizer keys; may be empty
  ModelParams model;
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
