//===- Sha256Test.cpp - SHA-256 against FIPS 180-4 test vectors -----------===//

#include "lowbit/Support/Sha256.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using lowbit::Sha256;
using lowbit::sha256Hex;

namespace {

struct Vector {
  std::string message;
  const char *digest;
};

// FIPS 180-4 examples (NIST CSRC "SHA256.pdf" and the empty string).
const Vector kVectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {std::string(1000000, 'a'),
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};

class Sha256Paths : public ::testing::TestWithParam<bool> {
protected:
  void SetUp() override { Sha256::setPortableOnly(GetParam()); }
  void TearDown() override { Sha256::setPortableOnly(false); }
};

TEST_P(Sha256Paths, FipsVectors) {
  for (const Vector &v : kVectors)
    EXPECT_EQ(sha256Hex(v.message.data(), v.message.size()), v.digest)
        << v.message.substr(0, 20);
}

TEST_P(Sha256Paths, IncrementalEqualsOneShot) {
  // Every split point of messages around the padding boundaries.
  std::string m;
  for (int i = 0; i < 200; ++i)
    m += static_cast<char>('a' + i % 26);
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200})
    for (size_t split = 0; split <= len; split += 7) {
      Sha256 h;
      h.update(m.data(), split);
      h.update(m.data() + split, len - split);
      EXPECT_EQ(h.finishHex(), sha256Hex(m.data(), len)) << len << " " << split;
    }
}

INSTANTIATE_TEST_SUITE_P(, Sha256Paths, ::testing::Values(false, true),
                         [](const auto &info) {
                           return info.param ? "Portable" : "Fastest";
                         });

TEST(Sha256, PathsAgreeOnRandomData) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(1 << 16);
  for (uint8_t &b : data)
    b = static_cast<uint8_t>(rng());
  for (size_t len : {1, 64, 1000, 4097, 65536}) {
    Sha256::setPortableOnly(true);
    std::string portable = sha256Hex(data.data(), len);
    Sha256::setPortableOnly(false);
    EXPECT_EQ(sha256Hex(data.data(), len), portable) << len;
  }
}

} // namespace
