//===- Executor.h - CPU reference executor: an interpreter of the graph -*-C++-*-===//
//
// Runs a model's graph (ModelDesc::graph, the `@forward` function of a lowbit
// module) op by op in f32 on the CPU, each op backed by lib/Exec's blocked,
// threaded kernels. Weights stay in their stored format and are decoded on
// the fly, a small tile of rows at a time, into per-thread buffers: the model
// is never expanded to f32 in memory. Activation buffers are planned once
// (values whose lives do not overlap share memory).
//
// Results do not depend on the thread count: every output element is
// computed by exactly one task with a fixed order of arithmetic (a matmul
// output is the plain sum over k in order, whatever the blocking or vector
// width).
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_EXECUTOR_H
#define LOWBIT_EXEC_EXECUTOR_H

#include "lowbit/Exec/Evaluator.h"
#include "lowbit/Exec/Model.h"
#include "lowbit/Exec/Ops.h"

#include "lowbit/Formats/Formats.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::exec {

class ThreadPool;
class ExecState;
struct OpRecords;
struct ProgramPlan;

/// Where the native runtime plugs in: matmuls on weights it has generated
/// kernels for (in target-packed layouts), and rows of weights the executor
/// cannot read row-major. Everything else the executor runs itself.
class MatmulBackend {
public:
  virtual ~MatmulBackend() = default;
  /// A handle for matmuls on `weight`, or -1 for the executor's own
  /// decode-to-f32 matmul over the weight's row-major bytes.
  virtual int bind(const std::string &weight) = 0;
  /// y[rows, N] = x[rows, K] * W^T (y's row stride N) for a bound weight, on
  /// `pool`. Equal `inputKey`s mean equal contents of x, so an input
  /// quantized for one matmul may be reused by the next.
  virtual void matmul(int handle, const float *x, int64_t rows, float *y,
                      uint64_t inputKey, ThreadPool &pool) = 0;
  /// The same with weight rows [firstRow, firstRow + count) only (one expert
  /// of a stacked 3-D weight): y[rows, count], row stride count.
  virtual void matmulRows(int handle, int64_t firstRow, int64_t count,
                          const float *x, int64_t rows, float *y,
                          uint64_t inputKey, ThreadPool &pool) = 0;
  /// Whether embedding rows of `weight` come from decodeRow (packed tables).
  virtual bool decodesRows(const std::string &weight) { return false; }
  virtual void decodeRow(const std::string &weight, int64_t row, float *dst) {}
};

struct ExecOptions {
  /// Worker threads including the caller; <= 0 = all hardware threads.
  int threads = 0;
  /// KV cache length in tokens; <= 0 = the graph's KV cache length.
  int64_t contextSize = 0;
  /// Most tokens evaluated in one pass; longer inputs are split.
  int64_t batchSize = 512;
  /// When set, the input of every matmul whose weight has format W is
  /// quantized to activationFormat(W) and decoded back before the multiply
  /// (F32 = leave it alone). The native kernels and llama.cpp's CPU backend
  /// multiply 8-bit activation blocks; this reproduces their rounding, so the
  /// executor's greedy text can be compared with theirs token for token.
  std::function<formats::Format(formats::Format weight)> activationFormat;
  /// Generated kernels for some weights (the native runtime); null: none.
  std::shared_ptr<MatmulBackend> backend;
};

/// Called before every weight matmul with the weight's name, the matrix of
/// it that multiplies (`expert` of `experts`: an expert of a stacked 3-D
/// weight, or 0 of 1) and that matrix's input activations x[tokens, k]
/// (row-major; for an expert, the rows routed to it), e.g. to collect
/// calibration statistics. Runs on the calling thread.
using MatmulObserver = std::function<void(
    const std::string &weight, int64_t expert, int64_t experts, const float *x,
    int64_t tokens, int64_t k)>;

/// One executor holds one sequence's KV cache; its methods must not be
/// called concurrently (they use every thread of its pool themselves).
class Executor : public Evaluator {
public:
  /// Validates `model` and allocates the KV cache and buffers. The memory the
  /// model's weights point into must outlive the executor (ModelDesc::storage
  /// is copied, so a model keeps its own storage alive).
  static std::unique_ptr<Executor>
  create(const ModelDesc &model, const ExecOptions &options, std::string &err);
  ~Executor();

  /// Evaluates `n` tokens at positions [pos, pos + n); the KV cache must hold
  /// positions [0, pos) of the same sequence (entries at >= pos are
  /// overwritten). Writes the logits of batch rows [firstOutput, n) to
  /// `logits` ((n - firstOutput) x vocabSize(), row-major). firstOutput = n
  /// computes none, n - 1 only the last.
  bool eval(const int32_t *tokens, int64_t n, int64_t pos,
            std::vector<float> &logits, int64_t firstOutput,
            std::string &err) override;
  using Evaluator::evalLast;

  /// Layer boundaries the graph marks (residual-stream states between
  /// layers; the last one enters the output head).
  int64_t boundaryCount() const {
    return static_cast<int64_t>(model_.graph.boundaries.size());
  }
  /// Columns per token of boundary `b`'s state.
  int64_t boundaryWidth(int64_t b) const;
  /// Runs part of the graph for `n` <= batchSize() tokens at positions
  /// [pos, pos + n): from boundary `from` (-1: from the token ids, which are
  /// read only then) through boundary `to` (boundaryCount(): to the logits of
  /// every token). `state` holds boundary `from`'s state (n x width) on entry
  /// and boundary `to`'s state, or the logits, on return. The KV cache must
  /// hold positions [0, pos) of the layers in the range. Running 0..i and
  /// then i..end gives exactly what eval() gives.
  bool evalRange(const int32_t *tokens, int64_t n, int64_t pos, int64_t from,
                 int64_t to, std::vector<float> &state, std::string &err);

  /// Forgets the sequence (the next eval must start at position 0).
  void reset() override;
  /// Forgets positions >= pos (after a failed eval).
  void forgetFrom(int64_t pos);
  /// Positions currently held in the KV cache.
  int64_t cachedTokens() const;

  void setObserver(MatmulObserver observer);

  /// Runs fn(task, thread) for tasks [0, count) on the executor's threads
  /// (thread < threads()), for callers' own per-row work such as
  /// log-softmax over logits.
  void parallelFor(int64_t count,
                   const std::function<void(int64_t, int)> &fn) override;

  const ModelDesc &model() const { return model_; }
  int64_t vocabSize() const override { return model_.vocabSize; }
  int64_t contextSize() const override;
  int64_t batchSize() const;
  int threads() const override;

private:
  Executor();
  /// Runs ops [begin, end) of the pass the state was set up for.
  void runOps(size_t begin, size_t end);

  ModelDesc model_;
  /// The graph as op records (lb_op) and its buffer plan; the interpreter
  /// calls the op library on them in order, as generated code does.
  std::unique_ptr<OpRecords> records_;
  std::unique_ptr<ProgramPlan> plan_;
  std::unique_ptr<ExecState> state_;
};

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_EXECUTOR_H
