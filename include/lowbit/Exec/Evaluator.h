//===- Evaluator.h - What generation and evaluation run on ------*- C++ -*-===//
//
// The interface lib/Eval (generation, perplexity, KL divergence) and the
// driver's run/eval/bench commands use, so that they run the reference
// executor and the native runtime (runtime/, wrapped by the driver) alike.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_EVALUATOR_H
#define LOWBIT_EXEC_EVALUATOR_H

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lowbit::exec {

/// One sequence's model state (its KV cache). Methods must not be called
/// concurrently.
class Evaluator {
public:
  virtual ~Evaluator() = default;

  /// Evaluates `n` tokens at positions [pos, pos + n); the cache must hold
  /// positions [0, pos) of the same sequence. Writes the logits of batch
  /// rows [firstOutput, n) to `logits` ((n - firstOutput) x vocabSize()).
  virtual bool eval(const int32_t *tokens, int64_t n, int64_t pos,
                    std::vector<float> &logits, int64_t firstOutput,
                    std::string &err) = 0;
  /// Logits of the last token only.
  bool evalLast(const std::vector<int32_t> &tokens, int64_t pos,
                std::vector<float> &logits, std::string &err) {
    int64_t n = static_cast<int64_t>(tokens.size());
    return eval(tokens.data(), n, pos, logits, n > 0 ? n - 1 : 0, err);
  }
  /// Forgets the sequence (the next eval must start at position 0).
  virtual void reset() = 0;

  virtual int64_t vocabSize() const = 0;
  virtual int64_t contextSize() const = 0;
  virtual int threads() const = 0;
  /// Runs fn(task, thread) for tasks [0, count), thread < threads(), for
  /// callers' own per-row work such as log-softmax over logits.
  virtual void parallelFor(int64_t count,
                           const std::function<void(int64_t, int)> &fn) = 0;
};

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_EVALUATOR_H
