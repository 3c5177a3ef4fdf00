//===- SensitivityState.cpp - Saved sensitivity results -------------------===//
#include "lowbit/Analysis/SensitivityState.h"

#include "lowbit/Support/MappedFile.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace lowbit::analysis {

namespace {
constexpr const char *kFormatName = "lowbit-sensitivity";
constexpr int kVersion = 1;
} // namespace

bool SensitivityState::load(const std::string &path, SensitivityState &out,
                            bool &existed, std::string &err) {
  out = SensitivityState();
  existed = false;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return true;
    err = path + ": " + std::strerror(errno);
    return false;
  }
  existed = true;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto corrupt = [&](const std::string &what) {
    err = path + ": not a valid sensitivity state file (" + what +
          "); remove it to start the analysis afresh";
    return false;
  };
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return corrupt("malformed JSON");
  if (doc.value("format", "") != kFormatName)
    return corrupt("no \"format\": \"lowbit-sensitivity\"");
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<int>() != kVersion)
    return corrupt("unsupported version");
  if (!doc.contains("model") || !doc["model"].is_string() ||
      !doc.contains("statistics") || !doc["statistics"].is_string() ||
      !doc.contains("tensors") || !doc["tensors"].is_object())
    return corrupt("missing model, statistics or tensors");
  out.model = doc["model"].get<std::string>();
  out.statistics = doc["statistics"].get<std::string>();
  for (auto &[tensor, formats] : doc["tensors"].items()) {
    if (!formats.is_object())
      return corrupt("tensor '" + tensor + "' is not an object");
    for (auto &item : formats.items()) {
      const std::string &format = item.key();
      const nlohmann::json &entry = item.value();
      auto number = [&](const char *key, double &dst, bool required) {
        if (!entry.is_object())
          return false;
        auto it = entry.find(key);
        if (it == entry.end())
          return !required;
        if (!it->is_number())
          return false;
        dst = it->get<double>();
        return std::isfinite(dst);
      };
      SensitivityEntry e;
      double kldTokens = 0, kldGPTQTokens = 0;
      if (!number("damage", e.damage, true) ||
          !number("weighted", e.weighted, true) ||
          !number("bias", e.bias, true) || !number("plain", e.plain, true) ||
          !number("norm", e.norm, false) ||
          !number("seconds", e.seconds, false) ||
          !number("kld", e.kld, false) ||
          !number("kld_tokens", kldTokens, false) ||
          !number("kld_seconds", e.kldSeconds, false) ||
          !number("kld_gptq", e.kldGPTQ, false) ||
          !number("kld_gptq_tokens", kldGPTQTokens, false) ||
          !number("kld_gptq_seconds", e.kldGPTQSeconds, false) || e.damage < 0)
        return corrupt("bad entry for " + tensor + " / " + format);
      e.kldTokens = static_cast<int64_t>(kldTokens);
      e.kldGPTQTokens = static_cast<int64_t>(kldGPTQTokens);
      out.tensors[tensor][format] = e;
    }
  }
  return true;
}

bool SensitivityState::save(const std::string &path, std::string &err) const {
  nlohmann::json tensorsJson = nlohmann::json::object();
  for (const auto &[tensor, formats] : tensors) {
    nlohmann::json formatsJson = nlohmann::json::object();
    for (const auto &[format, e] : formats) {
      nlohmann::json entry = {{"damage", e.damage}, {"weighted", e.weighted},
                              {"bias", e.bias},     {"plain", e.plain},
                              {"norm", e.norm},     {"seconds", e.seconds}};
      if (e.kld >= 0) {
        entry["kld"] = e.kld;
        entry["kld_tokens"] = e.kldTokens;
        entry["kld_seconds"] = e.kldSeconds;
      }
      if (e.kldGPTQ >= 0) {
        entry["kld_gptq"] = e.kldGPTQ;
        entry["kld_gptq_tokens"] = e.kldGPTQTokens;
        entry["kld_gptq_seconds"] = e.kldGPTQSeconds;
      }
      formatsJson[format] = std::move(entry);
    }
    tensorsJson[tensor] = std::move(formatsJson);
  }
  nlohmann::json doc = {{"format", kFormatName},
                        {"version", kVersion},
                        {"model", model},
                        {"statistics", statistics},
                        {"tensors", std::move(tensorsJson)}};
  std::string text = doc.dump(1) + "\n";
  AtomicFileWriter writer(path);
  return writer.open(err) && writer.write(text.data(), text.size(), err) &&
         writer.commit(err);
}

const SensitivityEntry *
SensitivityState::find(const std::string &tensor,
                       const std::string &format) const {
  auto t = tensors.find(tensor);
  if (t == tensors.end())
    return nullptr;
  auto f = t->second.find(format);
  return f == t->second.end() ? nullptr : &f->second;
}

} // namespace lowbit::analysis
