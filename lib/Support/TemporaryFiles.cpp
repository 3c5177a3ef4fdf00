//===- TemporaryFiles.cpp - Temporaries that interruptions remove ---------===//
//
// The signal handler may only call async-signal-safe functions: it walks a
// fixed table of C strings (slots taken and cleared with atomics, never
// resized) and calls unlink/rmdir, then re-raises the signal.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Support/TemporaryFiles.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <mutex>
#include <unistd.h>

namespace lowbit {

namespace {

constexpr int kSlots = 1024;
// Files first, then directories (so that a directory is empty by then).
std::atomic<char *> fileSlots[kSlots];
std::atomic<char *> directorySlots[kSlots];

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction previousActions[3];
std::once_flag installOnce;
std::atomic<void (*)()> interruptHook{nullptr};
// DeferInterrupts sections open, and a signal that arrived during one.
std::atomic<int> deferDepth{0};
std::atomic<int> deferredSignal{0};

void removeAll() {
  for (std::atomic<char *> &slot : fileSlots)
    if (char *p = slot.load())
      ::unlink(p);
  for (int i = kSlots - 1; i >= 0; --i)
    if (char *p = directorySlots[i].load())
      ::rmdir(p);
}

void onSignal(int sig) {
  if (deferDepth.load() > 0) {
    deferredSignal.store(sig);
    return;
  }
  if (void (*hook)() = interruptHook.load())
    hook();
  removeAll();
  // Then what would have happened without us: the previous handler (e.g.
  // LLVM's, which removes its own temporaries) or the default action.
  for (int i = 0; i < 3; ++i)
    if (kSignals[i] == sig)
      ::sigaction(sig, &previousActions[i], nullptr);
  ::raise(sig);
}

void installHandlers() {
  std::call_once(installOnce, [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < 3; ++i) {
      ::sigaction(kSignals[i], nullptr, &previousActions[i]);
      // A signal the process ignores (nohup) stays ignored.
      if (previousActions[i].sa_handler == SIG_IGN)
        continue;
      ::sigaction(kSignals[i], &action, nullptr);
    }
  });
}

bool endsWithDeadPid(const std::string &name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos)
    return false;
  const std::string digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const pid_t pid = static_cast<pid_t>(std::atol(digits.c_str()));
  if (pid <= 0 || pid == ::getpid())
    return false;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

} // namespace

void setInterruptHook(void (*hook)()) { interruptHook = hook; }

DeferInterrupts::DeferInterrupts() { ++deferDepth; }

DeferInterrupts::~DeferInterrupts() {
  if (--deferDepth == 0)
    if (int sig = deferredSignal.exchange(0))
      onSignal(sig);
}

std::string temporaryPathFor(const std::string &path) {
  return path + ".tmp." + std::to_string(::getpid());
}

void registerTemporary(const std::string &path, bool directory) {
  installHandlers();
  char *copy = ::strdup(path.c_str());
  if (!copy)
    return;
  std::atomic<char *> *slots = directory ? directorySlots : fileSlots;
  for (int i = 0; i < kSlots; ++i) {
    char *expected = nullptr;
    if (slots[i].compare_exchange_strong(expected, copy))
      return;
  }
  std::free(copy); // Table full: this one is only removed on normal exit.
}

void unregisterTemporary(const std::string &path) {
  for (std::atomic<char *> *slots : {fileSlots, directorySlots})
    for (int i = 0; i < kSlots; ++i) {
      char *p = slots[i].load();
      if (p && path == p && slots[i].compare_exchange_strong(p, nullptr)) {
        std::free(p);
        return;
      }
    }
}

void removeStaleTemporaries(const std::string &dir, const std::string &prefix) {
  DIR *d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d)
    return;
  while (struct dirent *e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0 && endsWithDeadPid(name))
      ::unlink(((dir.empty() ? "." : dir) + "/" + name).c_str());
  }
  ::closedir(d);
}

void removeStaleTemporariesOf(const std::string &path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  if (!base.empty())
    removeStaleTemporaries(dir.empty() ? "/" : dir, base + ".");
}

ScopedTemporaryFile::~ScopedTemporaryFile() { reset(""); }

void ScopedTemporaryFile::reset(std::string path) {
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    unregisterTemporary(path_);
  }
  path_ = std::move(path);
  if (!path_.empty())
    registerTemporary(path_);
}

void ScopedTemporaryFile::release() {
  if (!path_.empty())
    unregisterTemporary(path_);
  path_.clear();
}

} // namespace lowbit
