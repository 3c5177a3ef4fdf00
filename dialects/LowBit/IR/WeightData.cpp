//===- WeightData.cpp - Reach the bytes behind a global weight ------------===//
#include "LowBit/IR/LowBit.h"
#include "lowbit/Support/MappedFile.h"

#include "mlir/IR/DialectResourceBlobManager.h"

#include <map>
#include <mutex>

using namespace mlir;
using namespace mlir::lowbit;

/// The `expected` bytes behind `data` (#lowbit.external, a dense_resource
/// blob or, with `allowDense`, non-splat dense elements) of the symbol `name`.
static const uint8_t *dataBytes(Attribute data, uint64_t expected,
                                StringRef name, std::string &error) {
  if (auto external = dyn_cast<ExternalDataAttr>(data)) {
    // Files stay mapped for the process: pointers handed out here are used
    // long after this call (by the exporters, passes and the executor).
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
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(data)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob) {
      error = "resource blob of @" + name.str() + " has no data";
      return nullptr;
    }
    ArrayRef<char> bytes = blob->getData();
    if (bytes.size() != expected) {
      error = "resource blob of @" + name.str() + " holds " +
              std::to_string(bytes.size()) + " bytes, expected " +
              std::to_string(expected);
      return nullptr;
    }
    return reinterpret_cast<const uint8_t *>(bytes.data());
  }
  if (auto dense = dyn_cast<DenseElementsAttr>(data);
      dense && !dense.isSplat() && !dense.getElementType().isInteger(1) &&
      dense.getRawData().size() == expected)
    return reinterpret_cast<const uint8_t *>(dense.getRawData().data());
  error = "@" + name.str() + " has no data in a form lowbit reads as bytes";
  return nullptr;
}

const uint8_t *mlir::lowbit::getWeightBytes(GlobalWeightOp op,
                                            std::string &error) {
  if (isa<DenseElementsAttr>(op.getData())) {
    error = "@" + op.getSymName().str() + " has no data";
    return nullptr;
  }
  return dataBytes(op.getData(), op.getWeightType().getByteSize(),
                   op.getSymName(), error);
}

const uint8_t *mlir::lowbit::getONNXTensorBytes(ONNXInitializerOp op,
                                                std::string &error) {
  int64_t expected = getONNXStorageBytes(op.getTensorType());
  if (expected < 0) {
    error = "@" + op.getSymName().str() + " has no fixed size";
    return nullptr;
  }
  return dataBytes(op.getData(), uint64_t(expected), op.getSymName(), error);
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
