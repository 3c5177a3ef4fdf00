//===- fuzz_state.cpp - libFuzzer target for saved analysis states --------===//
//
// The files lowbit writes and reads back: the calibration state (a GGUF file
// with the imatrix, tokens and Hessians) and the sensitivity state (JSON).
// Both are read from a path, as lowbit does, so the input goes through a
// file in memory-backed /dev/shm (or TMPDIR).
//
//===----------------------------------------------------------------------===//
#include "lowbit/Analysis/SensitivityState.h"
#include "lowbit/Calibration/Calibrator.h"
#include "lowbit/Calibration/Hessian.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace lowbit;

namespace {
std::string scratchPath() {
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/lowbit-fuzz-state-" + std::to_string(getpid());
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = scratchPath();
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    std::abort();
  if (size && std::fwrite(data, 1, size, f) != size)
    std::abort();
  std::fclose(f);

  std::string err;
  calib::CalibrationState state;
  if (calib::readCalibrationState(path, state, err)) {
    volatile float sink = 0;
    for (int32_t t : state.tokens)
      sink = sink + static_cast<float>(t);
    for (float c : state.tokenCounts)
      sink = sink + c;
    if (std::unique_ptr<calib::HessianStore> h =
            calib::HessianStore::open(path, err)) {
      for (const auto &[name, entry] : state.imatrix.entries) {
        if (!h->has(name))
          continue;
        std::vector<float> hessian;
        int64_t k = 0;
        if (h->get(name, hessian, k, err) &&
            hessian.size() != static_cast<size_t>(k) * static_cast<size_t>(k))
          std::abort();
      }
    }
  } else if (err.empty()) {
    std::abort();
  }

  analysis::SensitivityState sensitivity;
  bool existed = false;
  err.clear();
  if (!analysis::SensitivityState::load(path, sensitivity, existed, err) &&
      err.empty())
    std::abort();
  std::remove(path.c_str());
  return 0;
}
