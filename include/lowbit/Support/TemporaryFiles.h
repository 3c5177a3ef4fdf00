//===- TemporaryFiles.h - Temporaries that interruptions remove -*- C++ -*-===//
//
// Every file lowbit writes goes to a temporary name first and is renamed
// into place when complete (AtomicFileWriter, the native artifact's files).
// This keeps an interruption from leaving a partial output:
//  - SIGINT, SIGTERM and SIGHUP remove every registered temporary (and the
//    output directories the run created, when empty), then the signal takes
//    its course (the previous handler, or the default: exit by the signal);
//  - after kill -9 nothing can run, so temporaries carry the writer's pid
//    ("<name>.tmp.<pid>") and the next run that writes next to them removes
//    those whose process is gone.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_SUPPORT_TEMPORARYFILES_H
#define LOWBIT_SUPPORT_TEMPORARYFILES_H

#include <string>

namespace lowbit {

/// Called first by the interruption handler (it must be async-signal-safe):
/// a program linking LLVM passes llvm::sys::RunInterruptHandlers, so that
/// LLVM's own temporaries (lld's output, ...) are gone before the folders
/// they were in are removed.
void setInterruptHook(void (*hook)());

/// "<path>.tmp.<pid>": the temporary name of `path` for this process.
std::string temporaryPathFor(const std::string &path);

/// Removes `path` if the process is interrupted before unregistering it.
/// `directory`: removed only when empty (rmdir), after the files.
void registerTemporary(const std::string &path, bool directory = false);
void unregisterTemporary(const std::string &path);

/// While one exists, SIGINT/SIGTERM/SIGHUP wait: the handler records the
/// signal and returns, and the last one to end delivers it. Wraps the renames
/// that put an output in place (and the unregistering of what they made
/// final), so an interruption sees either no output or a complete one.
class DeferInterrupts {
public:
  DeferInterrupts();
  ~DeferInterrupts();
  DeferInterrupts(const DeferInterrupts &) = delete;
  DeferInterrupts &operator=(const DeferInterrupts &) = delete;
};

/// Removes the entries of `dir` whose name starts with `prefix` and ends in
/// ".tmp.<pid>" of a process that no longer runs (left by kill -9).
void removeStaleTemporaries(const std::string &dir, const std::string &prefix);
/// The same for the temporaries of the output `path` ("<path>*.tmp.<pid>").
void removeStaleTemporariesOf(const std::string &path);

/// A file removed when this goes out of scope, or when the process is
/// interrupted, unless released.
class ScopedTemporaryFile {
public:
  ScopedTemporaryFile() = default;
  explicit ScopedTemporaryFile(std::string path) { reset(std::move(path)); }
  ~ScopedTemporaryFile();
  ScopedTemporaryFile(const ScopedTemporaryFile &) = delete;
  ScopedTemporaryFile &operator=(const ScopedTemporaryFile &) = delete;
  /// Removes the current file (if any) and takes `path`.
  void reset(std::string path);
  /// Keeps the file: it is the caller's now.
  void release();
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

} // namespace lowbit

#endif // LOWBIT_SUPPORT_TEMPORARYFILES_H
