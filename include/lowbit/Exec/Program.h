//===- Program.h - A graph as a program of op calls -------------*- C++ -*-===//
//
// One forward pass is a sequence of op calls, one per graph op, each a
// function of lowbit's op library (one per op kind) applied to a constant
// record of the op's operands (lb_op, lowbit/Target/KernelABI.h) and to the
// run-time state (ExecState: threads, activation buffers, KV cache,
// weights). The reference executor interprets a graph by building those
// records and calling the op functions in a loop; the native code generator
// emits the same records and calls as `lb_forward` into the model's code.
// Both plan the activation buffers with planProgram.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_EXEC_PROGRAM_H
#define LOWBIT_EXEC_PROGRAM_H

#include "lowbit/Exec/Executor.h"
#include "lowbit/Exec/Model.h"
#include "lowbit/Exec/Ops.h"
#include "lowbit/Target/KernelABI.h"

#include <array>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace lowbit::exec {

class ThreadPool;

/// How a graph runs: the activation buffers its values share and the output
/// head. Computed once from the graph (at compile time for native code).
struct ProgramPlan {
  /// Per value: the buffer it lives in.
  std::vector<int32_t> bufferOf;
  /// Per buffer: floats per token.
  std::vector<int64_t> bufferWidth;
  /// Per value: the index of the op that computes it.
  std::vector<size_t> definedAt;
  /// Ops from this index on are row-wise and run only on the rows whose
  /// logits are wanted (ops.size() when the graph has no such head).
  size_t headStart = 0;
  /// Per boundary: whether only its state crosses it.
  std::vector<bool> boundaryCut;
  /// The logits are computed in the head (they hold the wanted rows only).
  bool resultInHead = false;
  /// Most query heads of any attention op (sizes the attention scratch).
  int64_t maxAttentionHeads = 0;
};

/// Liveness over the op list: a value's buffer returns to the free list
/// after its last reader; a new value takes the smallest free buffer that
/// fits. Elementwise ops write over an input that dies with them, and a
/// boundary is its input's buffer under another name.
ProgramPlan planProgram(const Graph &graph);

/// The lb_op records of a graph's ops, the weight names they index and the
/// arrays they point into (owned here).
struct OpRecords {
  std::vector<lb_op> ops;
  std::vector<std::string> weightNames;
  /// Per weight: LB_WEIGHT_* flags.
  std::vector<int32_t> weightUse;

  OpRecords() = default;
  OpRecords(const OpRecords &) = delete;
  OpRecords &operator=(const OpRecords &) = delete;

private:
  friend void buildOpRecords(const Graph &, const ProgramPlan &, OpRecords &);
  std::deque<std::vector<int32_t>> ints_;
  std::deque<std::vector<int64_t>> sizes_;
  std::deque<std::string> locations_;
};
void buildOpRecords(const Graph &graph, const ProgramPlan &plan,
                    OpRecords &out);

/// The op library: one function per op kind (lb_runtime_api::ops).
const lb_runtime_api &opLibrary();

/// What the run-time state needs to know of a program.
struct ProgramShape {
  std::vector<int64_t> valueWidth;
  std::vector<int32_t> bufferOf;
  std::vector<int64_t> bufferWidth;
  int32_t result = -1;
  bool resultInHead = false;
  KVCacheShape cache;
  int64_t maxAttentionHeads = 0;
  /// The weights the records index, by name and resolved (null: none of
  /// that name; an op using it fails validation before it runs).
  std::vector<std::string> weightNames;
  std::vector<const WeightRef *> weights;
};

/// The run-time state of one sequence (lb_exec): threads, the activation
/// buffers, the KV cache, the weights and what one pass is asked for. The op
/// functions read and write it; callers run a pass through eval().
class ExecState {
public:
  static std::unique_ptr<ExecState> create(ProgramShape shape,
                                           const ExecOptions &options,
                                           std::string &err);
  ~ExecState();

  /// Evaluates `n` tokens at positions [pos, pos + n) in passes of at most
  /// batch() tokens, each run by `pass` (which calls the op functions), and
  /// copies the logits of rows [firstOutput, n) to `logits`.
  bool eval(const int32_t *tokens, int64_t n, int64_t pos,
            std::vector<float> &logits, int64_t firstOutput, std::string &err,
            const std::function<void()> &pass);
  /// Sets up one pass of `n` tokens at `pos` (the head computes rows
  /// [firstOutput, n)) without running it (layer-range runs).
  void beginPass(const int32_t *tokens, int64_t n, int64_t pos,
                 int64_t firstOutput);

  /// Rethrows what an op function caught during the last pass (op functions
  /// are called from generated code, which exceptions must not unwind
  /// through; a failed op makes the rest of the pass a no-op).
  void rethrowFailure();

  float *value(int32_t v) { return buffers_[shape_.bufferOf[v]].data(); }
  int64_t width(int32_t v) const { return shape_.valueWidth[v]; }
  lb_exec *handle() { return reinterpret_cast<lb_exec *>(this); }
  static ExecState &of(lb_exec *exec) {
    return *reinterpret_cast<ExecState *>(exec);
  }

  int64_t vocabSize() const { return shape_.valueWidth[shape_.result]; }
  int64_t contextSize() const { return ctx_; }
  int64_t batchSize() const { return batch_; }
  int64_t cachedTokens() const { return cached_; }
  void setCached(int64_t n) { cached_ = n; }
  ThreadPool &pool() { return *pool_; }
  const ProgramShape &shape() const { return shape_; }
  void setObserver(MatmulObserver observer) { observer_ = std::move(observer); }

private:
  ExecState() = default;
  friend struct OpLibrary;

  const WeightRef &weight(int32_t index) const;
  /// A small vector weight (norm gain, bias, RoPE factors) decoded to f32,
  /// once.
  const float *vector(int32_t index);
  /// The backend's handle for matmuls on weight `index` (-1: none).
  int handle(int32_t index);
  bool backendRows(int32_t index);

  void matmul(const lb_op &op, int32_t weightIndex, const float *x,
              int64_t rows, float *y);
  void moeFFN(const lb_op &op, const float *x, int64_t rows, float *y);
  void blockIntegerMatmul(const WeightRef &w, const float *x, int64_t rows,
                          float *y);
  const float *roundActivations(formats::Format format, const float *x,
                                int64_t rows, int64_t cols);

  ProgramShape shape_;
  std::unique_ptr<ThreadPool> pool_;
  int64_t ctx_ = 0, batch_ = 0, cached_ = 0;
  MatmulObserver observer_;
  std::function<formats::Format(formats::Format)> activationFormat_;
  std::shared_ptr<MatmulBackend> backend_;

  // The pass being run.
  const int32_t *tokens_ = nullptr;
  int64_t n_ = 0, pos_ = 0, firstOutput_ = 0;
  /// Counts passes: with a value id, it names a value's contents.
  uint64_t passes_ = 0;
  std::exception_ptr failure_;

  std::vector<std::vector<float>> vectors_; // by weight index; empty = not yet
  std::vector<int> handles_;                // by weight index; -2 = not yet
  std::vector<int8_t> backendRows_;         // by weight index; -1 = not yet

  ops::KVCache cache_;
  template <typename T> struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <typename U> CacheLineAllocator(const CacheLineAllocator<U> &) {}
    T *allocate(size_t n) {
      return static_cast<T *>(
          ::operator new(n * sizeof(T), std::align_val_t(64)));
    }
    void deallocate(T *p, size_t) {
      ::operator delete(p, std::align_val_t(64));
    }
    bool operator==(const CacheLineAllocator &) const { return true; }
    bool operator!=(const CacheLineAllocator &) const { return false; }
  };
  /// 64-byte aligned so that tasks writing neighbouring outputs never share
  /// a cache line.
  using Buffer = std::vector<float, CacheLineAllocator<float>>;
  std::vector<Buffer> buffers_;
  Buffer xRounded_;
  std::vector<uint8_t> xQuantized_;
  ops::Scratch scratch_;
};

} // namespace lowbit::exec

#endif // LOWBIT_EXEC_PROGRAM_H
