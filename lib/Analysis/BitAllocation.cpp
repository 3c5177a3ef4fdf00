//===- BitAllocation.cpp - One format per tensor under a budget -----------===//
#include "lowbit/Analysis/BitAllocation.h"

#include "lowbit/Quant/Presets.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <regex>

namespace lowbit::analysis {

namespace {

/// Most cells (tensors x budget units) the exact method fills; one byte of
/// back-pointer each.
constexpr uint64_t kMaxExactCells = uint64_t(50) << 20;

size_t smallestOption(const AllocationTensor &t) {
  size_t best = 0;
  for (size_t o = 1; o < t.options.size(); ++o) {
    const AllocationOption &a = t.options[o], &b = t.options[best];
    if (a.bytes < b.bytes || (a.bytes == b.bytes && a.damage < b.damage))
      best = o;
  }
  return best;
}

void finish(const std::vector<AllocationTensor> &tensors,
            AllocationResult &result) {
  result.bytes = 0;
  result.damage = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const AllocationOption &o = tensors[t].options[result.choice[t]];
    result.bytes += o.bytes;
    result.damage += o.damage;
  }
}

bool solveExact(const std::vector<AllocationTensor> &tensors, uint64_t budget,
                uint64_t base, AllocationResult &result, std::string &err) {
  const size_t count = tensors.size();
  // Costs above each tensor's smallest option, in units of their gcd.
  uint64_t unit = 0;
  std::vector<uint64_t> minBytes(count);
  for (size_t t = 0; t < count; ++t) {
    minBytes[t] = tensors[t].options[smallestOption(tensors[t])].bytes;
    for (const AllocationOption &o : tensors[t].options)
      unit = std::gcd(unit, o.bytes - minBytes[t]);
  }
  result.choice.assign(count, 0);
  if (unit == 0) {
    // Every option of every tensor has the same size: least damage wins.
    for (size_t t = 0; t < count; ++t)
      for (size_t o = 1; o < tensors[t].options.size(); ++o)
        if (tensors[t].options[o].damage <
            tensors[t].options[result.choice[t]].damage)
          result.choice[t] = o;
    result.method = "exact";
    finish(tensors, result);
    return true;
  }
  const uint64_t units = (budget - base) / unit;
  if ((units + 1) * count > kMaxExactCells) {
    err = "the exact allocation needs " + std::to_string((units + 1) * count) +
          " cells, more than " + std::to_string(kMaxExactCells);
    return false;
  }
  const size_t width = static_cast<size_t>(units + 1);
  const double inf = std::numeric_limits<double>::infinity();
  // best[b]: least damage of the tensors so far within b units.
  std::vector<double> best(width, 0.0), next(width);
  std::vector<uint8_t> back(width * count);
  for (size_t t = 0; t < count; ++t) {
    const std::vector<AllocationOption> &options = tensors[t].options;
    std::fill(next.begin(), next.end(), inf);
    uint8_t *row = back.data() + t * width;
    for (size_t o = 0; o < options.size(); ++o) {
      const uint64_t cost = (options[o].bytes - minBytes[t]) / unit;
      if (cost > units)
        continue;
      const double damage = options[o].damage;
      for (size_t b = cost; b < width; ++b) {
        double candidate = best[b - cost] + damage;
        if (candidate < next[b]) {
          next[b] = candidate;
          row[b] = static_cast<uint8_t>(o);
        }
      }
    }
    best.swap(next);
  }
  size_t b = width - 1;
  for (size_t t = count; t-- > 0;) {
    size_t o = back[t * width + b];
    result.choice[t] = o;
    b -=
        static_cast<size_t>((tensors[t].options[o].bytes - minBytes[t]) / unit);
  }
  result.method = "exact";
  finish(tensors, result);
  return true;
}

/// Each tensor's choice at price `lambda`; ties go to the smaller option.
uint64_t chooseAtPrice(const std::vector<AllocationTensor> &tensors,
                       double lambda, std::vector<size_t> &choice) {
  uint64_t total = 0;
  choice.resize(tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    const std::vector<AllocationOption> &options = tensors[t].options;
    size_t best = 0;
    double bestCost = options[0].damage + lambda * double(options[0].bytes);
    for (size_t o = 1; o < options.size(); ++o) {
      double cost = options[o].damage + lambda * double(options[o].bytes);
      if (cost < bestCost ||
          (cost == bestCost && options[o].bytes < options[best].bytes)) {
        best = o;
        bestCost = cost;
      }
    }
    choice[t] = best;
    total += options[best].bytes;
  }
  return total;
}

void solveLagrangian(const std::vector<AllocationTensor> &tensors,
                     uint64_t budget, AllocationResult &result) {
  std::vector<size_t> choice;
  double lo = 0, hi = 0;
  if (chooseAtPrice(tensors, 0, choice) > budget) {
    // Raise the price until the choice fits (the smallest options do).
    hi = 1e-12;
    while (chooseAtPrice(tensors, hi, choice) > budget && hi < 1e300)
      hi *= 4;
    for (int i = 0; i < 200 && hi - lo > hi * 1e-12; ++i) {
      double mid = lo + (hi - lo) / 2;
      if (chooseAtPrice(tensors, mid, choice) > budget)
        lo = mid;
      else
        hi = mid;
    }
    chooseAtPrice(tensors, hi, choice);
  }
  result.lambda = hi;
  result.choice = choice;
  finish(tensors, result);

  // Greedy fill of what the relaxation left: best damage saved per byte.
  uint64_t left = budget - result.bytes;
  while (true) {
    size_t bestTensor = SIZE_MAX, bestOption = 0;
    double bestRate = 0;
    for (size_t t = 0; t < tensors.size(); ++t) {
      const AllocationOption &now = tensors[t].options[result.choice[t]];
      for (size_t o = 0; o < tensors[t].options.size(); ++o) {
        const AllocationOption &to = tensors[t].options[o];
        double saved = now.damage - to.damage;
        if (saved <= 0 || (to.bytes > now.bytes && to.bytes - now.bytes > left))
          continue;
        double rate = to.bytes <= now.bytes
                          ? std::numeric_limits<double>::infinity()
                          : saved / double(to.bytes - now.bytes);
        if (rate > bestRate) {
          bestRate = rate;
          bestTensor = t;
          bestOption = o;
        }
      }
    }
    if (bestTensor == SIZE_MAX)
      break;
    const AllocationOption &now =
        tensors[bestTensor].options[result.choice[bestTensor]];
    const AllocationOption &to = tensors[bestTensor].options[bestOption];
    left = left + now.bytes - to.bytes;
    result.choice[bestTensor] = bestOption;
  }
  result.method = "lagrangian";
  finish(tensors, result);
}

} // namespace

bool allocateBits(const std::vector<AllocationTensor> &tensors, uint64_t budget,
                  AllocationResult &result, std::string &err,
                  AllocationMethod method) {
  result = AllocationResult();
  uint64_t base = 0;
  for (const AllocationTensor &t : tensors) {
    if (t.options.empty()) {
      err = "tensor '" + t.name + "' has no candidate format";
      return false;
    }
    if (t.options.size() > 255) {
      err = "tensor '" + t.name + "' has more than 255 candidates";
      return false;
    }
    for (const AllocationOption &o : t.options)
      if (!(o.damage >= 0) || !std::isfinite(o.damage)) {
        err = "tensor '" + t.name + "' has a negative or non-finite damage";
        return false;
      }
    base += t.options[smallestOption(t)].bytes;
  }
  if (base > budget) {
    err = "the budget of " + std::to_string(budget) +
          " bytes is below the smallest possible size of " +
          std::to_string(base) + " bytes";
    return false;
  }
  if (method != AllocationMethod::Lagrangian) {
    std::string why;
    if (solveExact(tensors, budget, base, result, why))
      return true;
    if (method == AllocationMethod::Exact) {
      err = why;
      return false;
    }
  }
  solveLagrangian(tensors, budget, result);
  return true;
}

struct TensorPins::Rules {
  std::vector<std::regex> patterns;
  std::vector<int> formats;
  std::vector<std::string> texts;
};

TensorPins::TensorPins() : rules_(std::make_unique<Rules>()) {}
TensorPins::~TensorPins() = default;

bool TensorPins::parse(const std::vector<std::string> &rules,
                       std::string &err) {
  auto parsed = std::make_unique<Rules>();
  for (const std::string &text : rules) {
    quant::TypeOverride pin;
    if (!quant::parseTypeOverride(text, pin, err))
      return false;
    try {
      parsed->patterns.emplace_back(pin.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error &e) {
      err = "invalid --tensor-type regex '" + pin.pattern + "': " + e.what();
      return false;
    }
    parsed->formats.push_back(static_cast<int>(pin.format));
    parsed->texts.push_back(text);
  }
  rules_ = std::move(parsed);
  return true;
}

int TensorPins::match(const std::string &name, std::string *rule) const {
  for (size_t i = 0; i < rules_->patterns.size(); ++i)
    if (std::regex_search(name, rules_->patterns[i])) {
      if (rule)
        *rule = rules_->texts[i];
      return rules_->formats[i];
    }
  return -1;
}

bool TensorPins::empty() const { return rules_->patterns.empty(); }

bool parseByteSize(const std::string &text, uint64_t &bytes, std::string &err) {
  const char *begin = text.c_str();
  char *end = nullptr;
  double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value < 0) {
    err = "bad size '" + text + "' (examples: 3.2GiB, 3200MB, 123456)";
    return false;
  }
  std::string unit(end);
  for (char &c : unit)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char *, double> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kib", 1024.0},
      {"mib", 1024.0 * 1024},
      {"gib", 1024.0 * 1024 * 1024},
      {"tib", 1024.0 * 1024 * 1024 * 1024},
      {"kb", 1e3},
      {"mb", 1e6},
      {"gb", 1e9},
      {"tb", 1e12},
  };
  for (const auto &[name, scale] : kUnits) {
    if (unit != name)
      continue;
    double total = std::floor(value * scale);
    if (total >= 1.8e19) {
      err = "size '" + text + "' is too large";
      return false;
    }
    bytes = static_cast<uint64_t>(total);
    return true;
  }
  err = "unknown unit '" + std::string(end) + "' in size '" + text +
        "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)";
  return false;
}

} // namespace lowbit::analysis
