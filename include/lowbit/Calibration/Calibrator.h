//===- Calibrator.h - Activation statistics from the executor ---*- C++ -*-===//
//
// Runs the reference executor over calibration tokens and records, for every
// weight that multiplies activations (every matmul, output.weight included),
// per input channel the sum of squares, the sum and the token count; for
// token_embd.weight, how often each row (token) was looked up; and, when
// asked, the Hessian X^T X of every matmul input (see Hessian.h).
//
// Chunking follows llama.cpp's imatrix tool: the text is tokenized once with
// BOS, cut into floor(tokens / ctx) chunks of ctx tokens, each evaluated from
// an empty KV cache with its first token replaced by BOS; every position's
// activations count. It also reports the perplexity of the second halves of
// the chunks, as that tool does.
//
// Hessians are memory-bounded: each pass over the tokens accumulates the
// Hessians of as many input groups (weights sharing an input: q/k/v,
// gate/up) as fit in the budget, in the order the forward pass meets them;
// finished Hessians wait in a scratch file until the state file is written.
// Groups are found by watching the executor: consecutive matmuls reading the
// same activation buffer (same address, shape and contents) share an input,
// so no architecture's tensor names are assumed.
//
// The data model keeps an expert index per weight (MoE weights would record
// one matrix of statistics per expert); the llama executor has no experts, so
// every weight has one.
//
// No MLIR dependency.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_CALIBRATION_CALIBRATOR_H
#define LOWBIT_CALIBRATION_CALIBRATOR_H

#include "lowbit/Calibration/IMatrix.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lowbit {
class Tokenizer;
namespace exec {
class Executor;
} // namespace exec

namespace calib {

/// Names in a calibration state file (a GGUF imatrix file with more in it).
constexpr const char *kStateVersionKey = "lowbit.calibration.version";
constexpr const char *kStateModelKey = "lowbit.calibration.model";
constexpr const char *kStateTokensTensor = "lowbit.calibration.tokens";
constexpr const char *kStateTokenCountsTensor =
    "lowbit.calibration.token_counts";
constexpr const char *kHessianTokensKey = "lowbit.hessian.tokens";
constexpr const char *kHessianOfKeyPrefix = "lowbit.hessian.of.";
constexpr const char *kHessianSuffix = ".hessian";
constexpr uint32_t kStateVersion = 1;

struct CalibrationOptions {
  int64_t contextSize = 512;
  /// Evaluate at most this many chunks (<= 0: all).
  int64_t maxChunks = 0;
  bool hessians = false;
  /// Most bytes of Hessians held in memory at once.
  uint64_t hessianBudget = uint64_t(1) << 30;
  /// Where finished Hessians wait between passes (needed with `hessians`).
  std::string scratchPath;
  /// Called after each chunk: (pass, passes so far planned, chunk, chunks).
  std::function<void(int64_t pass, int64_t passes, int64_t chunk,
                     int64_t chunks)>
      progress;
};

/// One Hessian: the weights that share the input it was accumulated from.
struct HessianGroup {
  std::vector<std::string> weights; // the first names the stored tensor
  int64_t k = 0;
  uint64_t scratchOffset = 0; // where its K*K floats are in the scratch file
  int64_t pass = 0;           // the pass that accumulated it (1-based)
};

struct CalibrationResult {
  /// Statistics of every matmul weight (sum of squares, sum, token count).
  IMatrix imatrix;
  /// token_embd.weight: per vocabulary row, how often it was looked up.
  std::vector<float> tokenCounts;
  /// The tokens evaluated (chunks * contextSize of them, as in the text:
  /// each chunk's first token is replaced by BOS when evaluated).
  std::vector<int32_t> tokens;
  int64_t chunks = 0;
  int64_t contextSize = 0;
  /// Perplexity of the chunks' second halves (llama.cpp's imatrix report).
  double ppl = 0;
  std::vector<HessianGroup> hessians;
  uint64_t hessianTokens = 0;
  int64_t passes = 0;
  double seconds = 0;
};

/// Runs the protocol above. `bos` replaces each chunk's first token unless it
/// is < 0. Fails when there are fewer tokens than one chunk, a Hessian alone
/// exceeds the budget, or activations are not finite.
bool runCalibration(exec::Executor &executor,
                    const std::vector<int32_t> &tokens, int32_t bos,
                    const CalibrationOptions &options,
                    CalibrationResult &result, std::string &err);

/// Calibration text when the user has none: `count` tokens sampled from the
/// model itself (temperature 1, no truncation), in sequences of `contextSize`
/// tokens that each start with BOS. Deterministic for a given seed.
bool sampleCalibrationTokens(
    exec::Executor &executor, const Tokenizer &tokenizer, int64_t count,
    int64_t contextSize, uint64_t seed,
    const std::function<void(int64_t, int64_t)> &progress,
    std::vector<int32_t> &tokens, std::string &err);

/// Writes the calibration state: a GGUF file that IMatrix::load reads as an
/// importance matrix (with sums), plus the model's fingerprint, the tokens,
/// the embedding's row counts and the Hessians (read from the scratch file;
/// see Hessian.h for their names). Temporary file + rename.
bool writeCalibrationState(const std::string &path,
                           const CalibrationResult &result,
                           const std::string &modelFingerprint,
                           const std::string &scratchPath, std::string &err);

/// What a state file holds besides Hessians (those are read lazily through
/// HessianStore).
struct CalibrationState {
  IMatrix imatrix;
  std::string modelFingerprint;
  std::vector<int32_t> tokens;
  std::vector<float> tokenCounts;
  int64_t contextSize = 0;
  bool hasHessians = false;
};

/// Reads a state file; false with `err` = "<file>: <what>" when it is not
/// one (a plain llama.cpp imatrix is not a state file) or is corrupt.
bool readCalibrationState(const std::string &path, CalibrationState &state,
                          std::string &err);

} // namespace calib
} // namespace lowbit

#endif // LOWBIT_CALIBRATION_CALIBRATOR_H
