//===- fuzz_onnx.cpp - libFuzzer target for the ONNX reader ---------------===//
//
// Writes arbitrary bytes to a file and reads it with onnxfile::readModel
// (wire scan, protobuf parse, the binding and size checks, shape inference);
// when it reads, touches every tensor byte range the reader placed in a file
// so that ASan sees any bound it forgot to check.
//
//===----------------------------------------------------------------------===//
#include "lowbit/ONNX/ONNXFile.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path =
      "/tmp/lowbit-fuzz-onnx-" + std::to_string(getpid()) + ".onnx";
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    std::abort();
  if (size && std::fwrite(data, 1, size, f) != size)
    std::abort();
  std::fclose(f);
  std::string error;
  std::unique_ptr<lowbit::onnxfile::Model> model =
      lowbit::onnxfile::readModel(path, error);
  if (!model) {
    // Every refusal says why, naming the file.
    if (error.empty() || error.find(path) == std::string::npos)
      std::abort();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (const auto &[tensor, bytes] : model->fileBytes) {
    std::string rangeError;
    auto file = lowbit::MappedFile::openCached(bytes.path, rangeError);
    if (!file)
      std::abort();
    const uint8_t *p = file->range(bytes.offset, bytes.size, rangeError);
    if (!p)
      std::abort();
    for (uint64_t i = 0; i < bytes.size; i += 61)
      sink += p[i];
  }
  (void)sink;
  return 0;
}
