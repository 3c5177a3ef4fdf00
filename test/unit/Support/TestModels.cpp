//===- TestModels.cpp - Small decoders for the unit tests -----------------===//

#include "TestModels.h"

#include "LowBit/Exec/IRModel.h"
#include "lowbit/GGUF/GGUF.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

namespace lowbit::testing {

bool makeDecoder(const DecoderShape &shape,
                 const std::map<std::string, exec::WeightRef> &weights,
                 std::shared_ptr<const void> storage, exec::ModelDesc &out,
                 std::string &err) {
  const std::string arch =
      shape.ropeMode == exec::RopeMode::NeoX ? "qwen2" : "llama";
  gguf::Writer writer;
  auto u32 = [](int64_t v) {
    return gguf::Value::makeU32(static_cast<uint32_t>(v));
  };
  writer.set("general.architecture", gguf::Value::makeString(arch));
  writer.set(arch + ".context_length", u32(shape.context));
  writer.set(arch + ".embedding_length", u32(shape.embedding));
  writer.set(arch + ".block_count", u32(shape.layers));
  writer.set(arch + ".feed_forward_length", u32(shape.feedForward));
  writer.set(arch + ".attention.head_count", u32(shape.heads));
  writer.set(arch + ".attention.head_count_kv", u32(shape.kvHeads));
  writer.set(arch + ".attention.layer_norm_rms_epsilon",
             gguf::Value::makeF32(shape.rmsEpsilon));
  writer.set(arch + ".rope.freq_base", gguf::Value::makeF32(shape.ropeBase));
  if (shape.ropeDims > 0)
    writer.set(arch + ".rope.dimension_count", u32(shape.ropeDims));
  for (const auto &[name, w] : weights) {
    std::vector<uint64_t> dims = {static_cast<uint64_t>(w.cols)};
    const bool vector = name.find("norm") != std::string::npos ||
                        name.find(".bias") != std::string::npos;
    if (!vector || w.rows != 1)
      dims.push_back(static_cast<uint64_t>(w.rows));
    writer.addTensor(name, dims, formats::info(w.format).ggmlType, w.data,
                     w.rowBytes * w.rows);
  }
  static std::atomic<int> counter{0};
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("lowbit-test-model-" + std::to_string(getpid()) + "-" +
        std::to_string(counter++) + ".gguf"))
          .string();
  gguf::Error gerr;
  if (!writer.write(path, gerr)) {
    err = gerr.message();
    return false;
  }
  // The mapping stays valid after the name is gone.
  const bool ok = mlir::lowbit::loadGGUFModel(path, out, err);
  std::remove(path.c_str());
  if (!ok)
    return false;
  for (auto &[name, w] : out.weights)
    if (auto it = weights.find(name); it != weights.end())
      w = it->second;
  out.storage = std::make_shared<
      std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(
      std::move(storage), out.storage);
  return true;
}

bool loadModel(const std::string &path, exec::ModelDesc &out,
               std::string &err) {
  return mlir::lowbit::loadGGUFModel(path, out, err);
}

} // namespace lowbit::testing
