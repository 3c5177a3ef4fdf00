//===- MappedFile.h - Read-only memory-mapped files -------------*- C++ -*-===//
//
// Weights referenced by #lowbit.external live in files that are mmap'ed once
// and shared by every user in the process (passes, exporter, executor).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_SUPPORT_MAPPEDFILE_H
#define LOWBIT_SUPPORT_MAPPEDFILE_H

#include <cstdint>
#include <memory>
#include <string>

namespace lowbit {

class MappedFile {
public:
  /// Maps `path` read-only; null and `err` filled on failure.
  static std::shared_ptr<MappedFile> open(const std::string &path,
                                          std::string &err);
  /// Process-wide cache: the same path is mapped once.
  static std::shared_ptr<MappedFile> openCached(const std::string &path,
                                                std::string &err);
  ~MappedFile();
  const uint8_t *data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string &path() const { return path_; }
  /// Pointer to [offset, offset + length) or null (with `err`) when the range
  /// is outside the file.
  const uint8_t *range(uint64_t offset, uint64_t length,
                       std::string &err) const;

private:
  MappedFile() = default;
  std::string path_;
  const uint8_t *data_ = nullptr;
  uint64_t size_ = 0;
};

/// Reads the whole file at `path` into `out` (the one reader of text and
/// small files: manifests, calibration and evaluation text). False with
/// `err` = "<path>: cannot open<what>: <reason>" or "<path>: read error".
bool readWholeFile(const std::string &path, std::string &out, std::string &err,
                   const std::string &what = "");

/// Writes `path` atomically: the bytes go to a temporary file in the same
/// folder ("<path>.tmp.<pid>", removed on error, destruction or SIGINT/
/// SIGTERM; see TemporaryFiles.h), which is renamed over `path` only on
/// success.
class AtomicFileWriter {
public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter(); // Removes the temporary unless committed.
  bool open(std::string &err);
  bool write(const void *data, uint64_t size, std::string &err);
  bool commit(std::string &err);
  const std::string &tempPath() const { return tmp_; }

private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false, registered_ = false;
};

} // namespace lowbit

#endif // LOWBIT_SUPPORT_MAPPEDFILE_H
