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

bool mlir::lowbit::checkResourceBlobAlignments(llvm::StringRef source,
                                               llvm::StringRef name,
                                               std::string &error) {
  // File metadata ({-# ... #-}) holds the resources; blobs are "0x<hex>".
  size_t pos = source.find("{-#");
  while (pos != llvm::StringRef::npos) {
    pos = source.find("\"0x", pos);
    if (pos == llvm::StringRef::npos)
      break;
    const size_t hexStart = pos + 3;
    uint32_t align = 0;
    bool complete = hexStart + 8 <= source.size();
    for (size_t i = 0; complete && i < 4; ++i) {
      unsigned byte = 0;
      if (source.substr(hexStart + 2 * i, 2).getAsInteger(16, byte))
        complete = false;
      align |= byte << (8 * i); // little-endian u32
    }
    // A blob too short to hold an alignment is MLIR's to diagnose.
    if (complete && (!llvm::isPowerOf2_32(align) || align > 4096)) {
      size_t line = 1 + source.take_front(pos).count('\n');
      size_t lineStart = source.take_front(pos).rfind('\n');
      size_t column =
          pos - (lineStart == llvm::StringRef::npos ? 0 : lineStart + 1) + 1;
      error = (name + ":" + llvm::Twine(line) + ":" + llvm::Twine(column) +
               ": resource blob alignment " + llvm::Twine(align) +
               " (its first 4 bytes) is not a power of two in [1, 4096]")
                  .str();
      return false;
    }
    pos = hexStart;
  }
  return true;
}

std::unique_ptr<llvm::MemoryBuffer>
mlir::lowbit::makeParserBuffer(llvm::StringRef source, llvm::StringRef name,
                               std::string &error) {
  if (!checkResourceBlobAlignments(source, name, error))
    return nullptr;
  if (source.ends_with("\n"))
    return llvm::MemoryBuffer::getMemBufferCopy(source, name);
  std::unique_ptr<llvm::WritableMemoryBuffer> buffer =
      llvm::WritableMemoryBuffer::getNewUninitMemBuffer(source.size() + 1,
                                                        name);
  if (!buffer) {
    error = (name + ": cannot allocate " + llvm::Twine(source.size() + 1) +
             " bytes to parse it")
                .str();
    return nullptr;
  }
  llvm::copy(source, buffer->getBufferStart());
  buffer->getBufferStart()[source.size()] = '\n';
  return buffer;
}
