//===- Sha256.h - SHA-256 content hashes ------------------------*- C++ -*-===//
//
// SHA-256 (FIPS 180-4) for the content hashes a native artifact's manifest
// records (model.so, weights.bin) and `--verify` checks. SHA-256 rather than
// a faster non-cryptographic hash so that `sha256sum` can check an artifact
// too. Uses the x86 SHA extensions when the CPU has them (several times
// faster than the portable code).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_SUPPORT_SHA256_H
#define LOWBIT_SUPPORT_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowbit {

class Sha256 {
public:
  Sha256();
  void update(const void *data, size_t size);
  /// The digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();
  /// finish() as 64 lowercase hex digits, like sha256sum.
  std::string finishHex();

  /// Forces the portable code (tests compare both paths).
  static void setPortableOnly(bool portable);

private:
  void blocks(const uint8_t *data, size_t count);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

/// SHA-256 of `size` bytes as hex.
std::string sha256Hex(const void *data, size_t size);

/// SHA-256 of a whole file (mmap'ed) as hex; false with `err`
/// ("<path>: <why>") when it cannot be read.
bool sha256File(const std::string &path, std::string &hex, std::string &err);

} // namespace lowbit

#endif // LOWBIT_SUPPORT_SHA256_H
