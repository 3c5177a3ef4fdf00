//===- ModelLoading.h - Models for lowbit run and eval ----------*- C++ -*-===//
//
// The one place where the executing subcommands turn a path into something
// the reference executor can run. Today a GGUF file; lowbit IR can be added
// here by filling the same exec::ModelDesc.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TOOLS_MODELLOADING_H
#define LOWBIT_TOOLS_MODELLOADING_H

#include "lowbit/Exec/Model.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <memory>
#include <string>

namespace lowbit::driver {

struct ExecutableModel {
  exec::ModelDesc desc;
  std::unique_ptr<Tokenizer> tokenizer;
};

/// Loads `path` for execution. On failure returns false with `err` in the
/// driver's form "<file>: <what>".
bool loadModelForExecution(const std::string &path, ExecutableModel &out,
                           std::string &err);

} // namespace lowbit::driver

#endif // LOWBIT_TOOLS_MODELLOADING_H
