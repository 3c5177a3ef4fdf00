//===- WeightData.cpp - Reach the bytes behind a global weight ------------===//
#include "LowBit/IR/LowBit.h"
#include "lowbit/Support/MappedFile.h"

#include "mlir/IR/DialectResourceBlobManager.h"

#include <map>
#include <mutex>

using namespace mlir;
using namespace mlir::lowbit;

const uint8_t *mlir::lowbit::getWeightBytes(GlobalWeightOp op,
                                            std::string &error) {
  uint64_t expected = op.getWeightType().getByteSize();
  if (auto external = dyn_cast<ExternalDataAttr>(op.getData())) {
    // Files stay mapped for the process: pointers handed out here are used
    // long after this call (by the exporter, passes and the executor).
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<::lowbit::MappedFile>> files;
    std::shared_ptr<::lowbit::MappedFile> file;
    {
      std::lock_guard<std::mutex> lock(mutex);
      std::string path = external.getPath().str();
      auto &slot = files[path];
      if (!slot)
        slot = ::lowbit::MappedFile::open(path, error);
      file = slot;
      if (!file) {
        files.erase(path);
        return nullptr;
      }
    }
    return file->range(external.getOffset(), expected, error);
  }
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(op.getData())) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob) {
      error = "resource blob of @" + op.getSymName().str() + " has no data";
      return nullptr;
    }
    ArrayRef<char> bytes = blob->getData();
    if (bytes.size() != expected) {
      error = "resource blob of @" + op.getSymName().str() + " holds " +
              std::to_string(bytes.size()) + " bytes, expected " +
              std::to_string(expected);
      return nullptr;
    }
    return reinterpret_cast<const uint8_t *>(bytes.data());
  }
  error = "@" + op.getSymName().str() + " has no data";
  return nullptr;
}
