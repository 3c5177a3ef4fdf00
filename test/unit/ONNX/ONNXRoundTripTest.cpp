//===- ONNXRoundTripTest.cpp - ONNX -> IR -> ONNX, byte for byte ----------===//
//
// Every model.onnx of ONNX's backend node tests (libonnx-testdata, ONNX 1.12)
// is imported, printed, parsed back and exported; the exported file must
// equal the original byte for byte. Models the importer refuses as "not
// supported yet" are counted and listed, and their number may not grow.
//
//===----------------------------------------------------------------------===//
#include "LowBit/IR/LowBit.h"
#include "LowBit/Translation/ONNXExport.h"
#include "LowBit/Translation/ONNXImport.h"
#include "lowbit/Support/MappedFile.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <unistd.h>

using namespace mlir;

namespace {

const char *kNodeTests = "/usr/share/libonnx-testdata/data/node";

std::string readBytes(const std::string &path) {
  std::string bytes, error;
  EXPECT_TRUE(::lowbit::readWholeFile(path, bytes, error)) << error;
  return bytes;
}

struct Outcome {
  bool imported = false;
  std::string error;
};

/// Import, print, parse, export; returns the import error if any.
Outcome roundTrip(const std::string &model, const std::string &out,
                  std::string &failure) {
  MLIRContext context;
  context.loadDialect<mlir::lowbit::LowBitDialect, func::FuncDialect>();
  Outcome outcome;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    outcome.error += diag.str();
    return success();
  });
  OwningOpRef<ModuleOp> module = mlir::lowbit::importONNX(&context, model);
  if (!module)
    return outcome;
  outcome.imported = true;
  if (failed(verify(*module))) {
    failure = "the imported module does not verify: " + outcome.error;
    return outcome;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  OwningOpRef<ModuleOp> reparsed = parseSourceString<ModuleOp>(text, &context);
  if (!reparsed) {
    failure = "the printed module does not parse: " + outcome.error;
    return outcome;
  }
  if (failed(mlir::lowbit::exportONNX(*reparsed, out))) {
    failure = "export failed: " + outcome.error;
    return outcome;
  }
  if (readBytes(model) != readBytes(out))
    failure = "the exported model differs from the original";
  return outcome;
}

TEST(ONNXRoundTrip, BackendNodeTests) {
  if (!std::filesystem::is_directory(kNodeTests))
    GTEST_SKIP() << kNodeTests << " not found (Debian package libonnx-testdata)";
  std::vector<std::string> models;
  for (const auto &entry : std::filesystem::directory_iterator(kNodeTests))
    if (std::filesystem::exists(entry.path() / "model.onnx"))
      models.push_back(entry.path().filename().string());
  std::sort(models.begin(), models.end());
  std::string out = ::testing::TempDir() + "onnx-roundtrip-" +
                    std::to_string(getpid()) + ".onnx";
  int roundTripped = 0;
  std::map<std::string, std::vector<std::string>> unsupported;
  for (const std::string &name : models) {
    std::string failure;
    Outcome outcome = roundTrip(std::string(kNodeTests) + "/" + name +
                                    "/model.onnx",
                                out, failure);
    if (!outcome.imported) {
      // Only refusals that say so are allowed; anything else is a bug.
      EXPECT_NE(outcome.error.find("not supported yet"), std::string::npos)
          << name << ": " << outcome.error;
      std::string reason = outcome.error.substr(outcome.error.find(": ") + 2);
      unsupported[reason.find("type STRING") != std::string::npos
                      ? "STRING tensors"
                  : reason.find("sequence, map, optional") != std::string::npos
                      ? "sequence/map/optional values"
                      : reason]
          .push_back(name);
      continue;
    }
    EXPECT_TRUE(failure.empty()) << name << ": " << failure;
    roundTripped += failure.empty();
  }
  std::remove(out.c_str());
  int refused = 0;
  for (const auto &[reason, names] : unsupported) {
    refused += int(names.size());
    std::printf("not supported yet (%zu): %s, e.g. %s\n", names.size(),
                reason.c_str(), names.front().c_str());
  }
  std::printf("%d of %zu node test models round-trip byte for byte; %d "
              "refused as not supported yet\n",
              roundTripped, models.size(), refused);
  // Debian's libonnx-testdata 1.12 has 932 node test models; the 36
  // refusals are the models with string (12) and sequence or optional (24)
  // values.
  EXPECT_GE(models.size(), 900u);
  EXPECT_LE(refused, 36);
}

} // namespace
