//===- IMatrixCommand.cpp - lowbit imatrix convert / show -----------------===//
//
// Importance matrices in llama.cpp's two formats (GGUF and legacy .dat); see
// lowbit/Calibration/IMatrix.h.
//
//===----------------------------------------------------------------------===//

#include "CommandLine.h"
#include "Commands.h"

#include "lowbit/Calibration/IMatrix.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>

using namespace lowbit;

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Whether `path` starts with the GGUF magic (the loader has already
/// accepted the file, so a read failure cannot happen in practice).
bool fileIsGGUF(const std::string &path) {
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(magic, sizeof(magic));
  return in && calib::IMatrix::isGGUF(magic, sizeof(magic));
}

int convertCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "imatrix convert", "IN -o OUT [--format gguf|dat]",
      "Convert an importance matrix between llama.cpp's GGUF format and its "
      "legacy\nbinary .dat format; IN may be either (detected from its "
      "content). OUT is\nwritten under a temporary name and renamed when "
      "complete.");
  cl.option("output", "FILE", "The file to write.", "o");
  cl.option("format", "gguf|dat",
            "Output format (default: 'dat' when OUT ends in .dat,\nelse "
            "'gguf').");
  cl.option("chunk-size", "N",
            "Tokens per chunk of a legacy IN, which the .dat format does "
            "not\nrecord (llama.cpp assumes its context size): counts become "
            "tokens.\nWithout it, counts stay in chunks (importance is the "
            "same).");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input imatrix"))
    return *done;
  if (!cl.has("output"))
    return cli::fail("missing -o OUT");
  std::string out = cl.get("output");
  std::string format = cl.get("format", endsWith(out, ".dat") ? "dat" : "gguf");
  if (format != "gguf" && format != "dat")
    return cli::fail("--format must be 'gguf' or 'dat', not '" + format + "'");
  long long chunkSize = 0;
  if (!cl.getInt("chunk-size", chunkSize, error))
    return cli::fail(error);
  if (cl.has("chunk-size") && (chunkSize < 1 || chunkSize > INT32_MAX))
    return cli::fail("--chunk-size must be a positive 32-bit integer");

  calib::IMatrix imatrix;
  if (!calib::IMatrix::load(cl.positional()[0], imatrix, error, chunkSize))
    return cli::fail(error);
  bool ok = format == "dat" ? imatrix.saveLegacy(out, error)
                            : imatrix.saveGGUF(out, error);
  if (!ok)
    return cli::fail(error);
  return 0;
}

int showCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "imatrix show", "IN",
      "Print an importance matrix (GGUF or legacy .dat): its datasets, chunk "
      "count and,\nper weight, the input width, the number of matrices "
      "(experts), the token count\n(the largest over the matrices) and the "
      "mean and largest per-column importance\n(mean of squared "
      "activations).");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "input imatrix"))
    return *done;
  const std::string &path = cl.positional()[0];
  calib::IMatrix imatrix;
  if (!calib::IMatrix::load(path, imatrix, error))
    return cli::fail(error);

  std::printf("file: %s\n", path.c_str());
  std::printf("format: %s\n", fileIsGGUF(path) ? "gguf" : "legacy (.dat)");
  std::string datasets;
  for (const std::string &d : imatrix.datasets)
    datasets += (datasets.empty() ? "" : ", ") + d;
  std::printf("datasets: %s\n", datasets.empty() ? "(none)" : datasets.c_str());
  std::printf("chunks: %lld\n", static_cast<long long>(imatrix.chunkCount));
  if (imatrix.chunkSize > 0)
    std::printf("chunk size: %lld\n",
                static_cast<long long>(imatrix.chunkSize));
  else
    std::printf("chunk size: unknown (counts are in chunks)\n");
  std::printf("entries: %zu\n\n", imatrix.entries.size());

  size_t width = 6;
  for (const auto &kv : imatrix.entries)
    width = std::max(width, kv.first.size());
  std::printf("%-*s %6s %5s %12s %16s %16s\n", static_cast<int>(width),
              "tensor", "n_in", "n_mat", "count", "mean importance",
              "max importance");
  for (const auto &[name, e] : imatrix.entries) {
    double sum = 0, maxValue = 0;
    size_t n = 0;
    for (size_t m = 0; m < e.counts.size(); ++m)
      for (float v : imatrix.importance(name, static_cast<int64_t>(m))) {
        sum += v;
        maxValue = n == 0 ? v : std::max(maxValue, static_cast<double>(v));
        ++n;
      }
    float maxCount = *std::max_element(e.counts.begin(), e.counts.end());
    std::printf("%-*s %6lld %5zu %12.0f %16.6g %16.6g\n",
                static_cast<int>(width), name.c_str(),
                static_cast<long long>(e.inputs()), e.counts.size(),
                static_cast<double>(maxCount), n ? sum / n : 0.0, maxValue);
    // Routing balance of an expert weight: the tokens each expert saw.
    if (e.counts.size() > 1) {
      std::printf("%-*s tokens per expert:", static_cast<int>(width), "");
      for (float c : e.counts)
        std::printf(" %.0f", static_cast<double>(c));
      std::printf("\n");
    }
  }
  return 0;
}

const char kUsage[] =
    "USAGE: lowbit imatrix <command> [options]\n\n"
    "Importance matrices in llama.cpp's formats (GGUF and legacy .dat).\n\n"
    "COMMANDS:\n"
    "  convert    Convert between the GGUF and .dat formats\n"
    "  show       Print the datasets, chunk count and per-tensor statistics\n\n"
    "Run 'lowbit imatrix <command> --help' for the options of a command.\n";

} // namespace

int imatrixCommand(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "%s", kUsage);
    return 1;
  }
  std::string sub = argv[1];
  if (sub == "--help" || sub == "-h") {
    std::printf("%s", kUsage);
    return 0;
  }
  if (sub == "convert")
    return convertCommand(argc - 1, argv + 1);
  if (sub == "show")
    return showCommand(argc - 1, argv + 1);
  return cli::fail("unknown imatrix command '" + sub +
                   "' (expected 'convert' or 'show'; see 'lowbit imatrix "
                   "--help')");
}
