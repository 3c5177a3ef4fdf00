//===- MappedFile.cpp - Read-only memory-mapped files ---------------------===//
#include "lowbit/Support/MappedFile.h"

#include "lowbit/Support/TemporaryFiles.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lowbit {

std::shared_ptr<MappedFile> MappedFile::open(const std::string &path,
                                             std::string &err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    err = path + ": not a regular file";
    ::close(fd);
    return nullptr;
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void *p = mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      err = path + ": cannot map: " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
    file->data_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  return file;
}

std::shared_ptr<MappedFile> MappedFile::openCached(const std::string &path,
                                                   std::string &err) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<MappedFile>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto existing = cache[path].lock())
    return existing;
  auto file = open(path, err);
  if (file)
    cache[path] = file;
  return file;
}

bool readWholeFile(const std::string &path, std::string &out, std::string &err,
                   const std::string &what) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = path + ": cannot open" + (what.empty() ? "" : " " + what) + ": " +
          std::strerror(errno);
    return false;
  }
  char buffer[1 << 16];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      err = path + ": read error: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (got == 0)
      break;
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return true;
}

MappedFile::~MappedFile() {
  if (data_)
    munmap(const_cast<uint8_t *>(data_), size_);
}

const uint8_t *MappedFile::range(uint64_t offset, uint64_t length,
                                 std::string &err) const {
  if (offset > size_ || length > size_ - offset) {
    err = path_ + ": bytes [" + std::to_string(offset) + ", " +
          std::to_string(offset) + " + " + std::to_string(length) +
          ") lie outside the file (" + std::to_string(size_) + " bytes)";
    return nullptr;
  }
  return data_ + offset;
}

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), tmp_(temporaryPathFor(path_)) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!committed_ && registered_) {
    ::unlink(tmp_.c_str());
    unregisterTemporary(tmp_);
  }
}

bool AtomicFileWriter::open(std::string &err) {
  // Temporaries of this output left by a killed run go first.
  removeStaleTemporariesOf(path_);
  registerTemporary(tmp_);
  registered_ = true;
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    err = path_ + ": cannot create: " + std::strerror(errno);
    return false;
  }
  return true;
}

bool AtomicFileWriter::write(const void *data, uint64_t size,
                             std::string &err) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      err = path_ + ": write failed: " + std::strerror(errno);
      return false;
    }
    p += n;
    size -= static_cast<uint64_t>(n);
  }
  return true;
}

bool AtomicFileWriter::commit(std::string &err) {
  if (::close(fd_) != 0) {
    fd_ = -1;
    err = path_ + ": write failed: " + std::strerror(errno);
    return false;
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    err = path_ + ": cannot rename the temporary file: " + std::strerror(errno);
    return false;
  }
  committed_ = true;
  unregisterTemporary(tmp_);
  return true;
}

} // namespace lowbit
