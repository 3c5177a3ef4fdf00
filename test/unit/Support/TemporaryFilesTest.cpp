//===- TemporaryFilesTest.cpp - Temporaries and their cleanup -------------===//

#include "lowbit/Support/TemporaryFiles.h"
#include "lowbit/Support/MappedFile.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace lowbit;

namespace {

std::string scratchDir() {
  std::string dir =
      ::testing::TempDir() + "lowbit-tmpfiles-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void touch(const std::string &path) { std::ofstream(path) << "x"; }

/// A pid that no longer runs: a child that exited and was reaped.
pid_t deadPid() {
  pid_t child = ::fork();
  if (child == 0)
    ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(TemporaryFiles, StaleTemporariesOfDeadProcessesAreRemoved) {
  const std::string dir = scratchDir();
  const std::string out = dir + "/model.gguf";
  const std::string stale = out + ".tmp." + std::to_string(deadPid());
  const std::string live = out + ".tmp." + std::to_string(::getppid());
  const std::string other =
      dir + "/other.gguf.tmp." + std::to_string(deadPid());
  const std::string notOurs = out + ".tmp.notapid";
  for (const std::string &p : {stale, live, other, notOurs})
    touch(p);
  removeStaleTemporariesOf(out);
  EXPECT_FALSE(exists(stale));  // its writer is gone
  EXPECT_TRUE(exists(live));    // its writer (our parent) still runs
  EXPECT_TRUE(exists(other));   // another output's temporary
  EXPECT_TRUE(exists(notOurs)); // not a pid suffix
  for (const std::string &p : {live, other, notOurs})
    std::remove(p.c_str());
  ::rmdir(dir.c_str());
}

TEST(TemporaryFiles, AtomicWriterLeavesNothingOnFailureOrScopeExit) {
  const std::string dir = scratchDir();
  const std::string out = dir + "/a.bin";
  {
    AtomicFileWriter w(out);
    std::string err;
    ASSERT_TRUE(w.open(err)) << err;
    ASSERT_TRUE(w.write("abc", 3, err)) << err;
    EXPECT_TRUE(exists(w.tempPath()));
  } // not committed
  EXPECT_FALSE(exists(out));
  EXPECT_FALSE(exists(temporaryPathFor(out)));
  {
    AtomicFileWriter w(out);
    std::string err;
    ASSERT_TRUE(w.open(err) && w.write("abc", 3, err) && w.commit(err)) << err;
  }
  EXPECT_TRUE(exists(out));
  EXPECT_FALSE(exists(temporaryPathFor(out)));
  std::remove(out.c_str());
  ::rmdir(dir.c_str());
}

TEST(TemporaryFiles, ScopedTemporaryIsRemovedUnlessReleased) {
  const std::string dir = scratchDir();
  const std::string a = dir + "/a", b = dir + "/b";
  {
    ScopedTemporaryFile t(a);
    touch(a);
  }
  EXPECT_FALSE(exists(a));
  {
    ScopedTemporaryFile t(b);
    touch(b);
    t.release();
  }
  EXPECT_TRUE(exists(b));
  std::remove(b.c_str());
  ::rmdir(dir.c_str());
}

} // namespace

TEST(TemporaryFiles, InterruptsWaitForDeferredSections) {
  const std::string dir = scratchDir();
  const std::string temporary = dir + "/out.tmp";
  const std::string marker = dir + "/reached-end-of-section";
  touch(temporary);
  pid_t child = ::fork();
  if (child == 0) {
    registerTemporary(temporary);
    {
      DeferInterrupts defer;
      ::raise(SIGTERM);
      // Still running, and the temporary is still there: the signal waits.
      if (exists(temporary))
        touch(marker);
    } // delivered here: the temporary goes, then the default action
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_TRUE(exists(marker));
  EXPECT_FALSE(exists(temporary));
  std::remove(marker.c_str());
  std::remove(temporary.c_str());
  ::rmdir(dir.c_str());
}
