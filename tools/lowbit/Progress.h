//===- Progress.h - A progress bar on stderr --------------------*- C++ -*-===//
#ifndef LOWBIT_TOOLS_PROGRESS_H
#define LOWBIT_TOOLS_PROGRESS_H

#include <chrono>
#include <cstdio>
#include <string>

namespace lowbit::cli {

/// Draws "label [=====>    ] 12/48 name" on one stderr line, redrawn at
/// most every 100 ms; silent when progress is disabled (not a terminal,
/// LOWBIT_NO_PROGRESS set).
class ProgressBar {
public:
  ProgressBar(std::string label, bool enabled)
      : label_(std::move(label)), enabled_(enabled) {}
  ~ProgressBar() { finish(); }

  void update(size_t done, size_t total, const std::string &item = "") {
    if (!enabled_ || total == 0)
      return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    constexpr int width = 30;
    int filled = static_cast<int>(width * done / total);
    std::string bar(filled, '=');
    if (filled < width)
      bar += '>' + std::string(width - filled - 1, ' ');
    std::string shown = item.size() > 40 ? item.substr(0, 37) + "..." : item;
    std::fprintf(stderr, "\r%s [%s] %zu/%zu %-40s", label_.c_str(), bar.c_str(),
                 done, total, shown.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_)
      std::fprintf(stderr, "\n");
    drawn_ = false;
  }

private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

} // namespace lowbit::cli

#endif // LOWBIT_TOOLS_PROGRESS_H
