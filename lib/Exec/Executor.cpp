//===- Executor.cpp - CPU reference executor: an interpreter of the graph -===//
//
// The graph's ops become lb_op records (Program.h) once; a pass calls the op
// library's function for each record in order, exactly what a native
// artifact's generated `lb_forward` does.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Exec/Executor.h"

#include "lowbit/Exec/Program.h"
#include "lowbit/Exec/ThreadPool.h"

#include <algorithm>
#include <cstring>

namespace lowbit::exec {

Executor::Executor() = default;
Executor::~Executor() = default;

int Executor::threads() const { return state_->pool().size(); }
int64_t Executor::contextSize() const { return state_->contextSize(); }
int64_t Executor::batchSize() const { return state_->batchSize(); }
void Executor::reset() { state_->setCached(0); }
void Executor::forgetFrom(int64_t pos) {
  state_->setCached(std::min(state_->cachedTokens(), pos));
}
int64_t Executor::cachedTokens() const { return state_->cachedTokens(); }
void Executor::setObserver(MatmulObserver observer) {
  state_->setObserver(std::move(observer));
}

int64_t Executor::boundaryWidth(int64_t b) const {
  const Graph &g = model_.graph;
  return g.valueWidth[g.ops[g.boundaries[b]].outputs[0]];
}

std::unique_ptr<Executor> Executor::create(const ModelDesc &model,
                                           const ExecOptions &options,
                                           std::string &err) {
  if (!model.validate(err))
    return nullptr;
  std::unique_ptr<Executor> e(new Executor());
  e->model_ = model;
  const Graph &g = e->model_.graph;
  e->plan_ = std::make_unique<ProgramPlan>(planProgram(g));
  e->records_ = std::make_unique<OpRecords>();
  buildOpRecords(g, *e->plan_, *e->records_);

  ProgramShape shape;
  shape.valueWidth = g.valueWidth;
  shape.bufferOf = e->plan_->bufferOf;
  shape.bufferWidth = e->plan_->bufferWidth;
  shape.result = g.result;
  shape.resultInHead = e->plan_->resultInHead;
  shape.cache = g.cache;
  shape.maxAttentionHeads = e->plan_->maxAttentionHeads;
  shape.weightNames = e->records_->weightNames;
  for (const std::string &name : shape.weightNames)
    shape.weights.push_back(e->model_.find(name)); // validate() checked them
  e->state_ = ExecState::create(std::move(shape), options, err);
  if (!e->state_)
    return nullptr;
  return e;
}

void Executor::parallelFor(int64_t count,
                           const std::function<void(int64_t, int)> &fn) {
  state_->pool().run(count, fn);
}

void Executor::runOps(size_t begin, size_t end) {
  const lb_runtime_api &api = opLibrary();
  lb_exec *exec = state_->handle();
  const std::vector<lb_op> &ops = records_->ops;
  for (size_t i = begin; i < end; ++i)
    api.ops[ops[i].kind](exec, &ops[i]);
}

bool Executor::evalRange(const int32_t *tokens, int64_t n, int64_t pos,
                         int64_t from, int64_t to, std::vector<float> &state,
                         std::string &err) {
  const Graph &g = model_.graph;
  const int64_t nb = boundaryCount();
  if (from < -1 || from >= nb || to <= from || to > nb) {
    err = "invalid layer range " + std::to_string(from) + ".." +
          std::to_string(to) + " (the graph has " + std::to_string(nb) +
          " boundaries)";
    return false;
  }
  for (int64_t b : {from, to})
    if (b >= 0 && b < nb && !plan_->boundaryCut[b]) {
      err = "values other than the residual stream cross layer boundary " +
            std::to_string(b) + "; the graph cannot be run in parts there";
      return false;
    }
  const int64_t batch = state_->batchSize(), ctx = state_->contextSize();
  if (n <= 0 || n > batch || pos < 0 || pos + n > ctx) {
    err = "invalid token range for a partial run: " + std::to_string(n) +
          " tokens at " + std::to_string(pos) + " (batch " +
          std::to_string(batch) + ", context " + std::to_string(ctx) + ")";
    return false;
  }
  if (from < 0) {
    for (int64_t i = 0; i < n; ++i)
      if (tokens[i] < 0 || tokens[i] >= model_.vocabSize) {
        err = "token id " + std::to_string(tokens[i]) + " outside the " +
              std::to_string(model_.vocabSize) + "-token vocabulary";
        return false;
      }
  } else {
    const int32_t v = g.ops[g.boundaries[from]].outputs[0];
    if (static_cast<int64_t>(state.size()) != n * g.valueWidth[v]) {
      err = "the state of boundary " + std::to_string(from) + " must hold " +
            std::to_string(n * g.valueWidth[v]) + " floats";
      return false;
    }
    std::memcpy(state_->value(v), state.data(), state.size() * sizeof(float));
  }
  const size_t begin = from < 0 ? 0 : g.boundaries[from] + 1;
  const size_t end = to < nb ? g.boundaries[to] + 1 : g.ops.size();
  state_->beginPass(tokens, n, pos, 0);
  runOps(begin, end);
  state_->rethrowFailure();
  const int32_t v = to < nb ? g.ops[g.boundaries[to]].outputs[0] : g.result;
  state.assign(state_->value(v), state_->value(v) + n * g.valueWidth[v]);
  return true;
}

bool Executor::eval(const int32_t *tokens, int64_t n, int64_t pos,
                    std::vector<float> &logits, int64_t firstOutput,
                    std::string &err) {
  return state_->eval(tokens, n, pos, logits, firstOutput, err,
                      [&] { runOps(0, records_->ops.size()); });
}

} // namespace lowbit::exec
