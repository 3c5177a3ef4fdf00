//===- Progress.cpp - Progress on stderr: a bar or log lines --------------===//
#include "Progress.h"
#include "CommandLine.h"

#include <cstdio>
#include <cstdlib>

namespace lowbit::cli {

namespace {

/// LOWBIT_PROGRESS_INTERVAL in seconds (default 5; 0 prints every update,
/// for tests).
std::chrono::milliseconds lineInterval() {
  if (const char *text = std::getenv("LOWBIT_PROGRESS_INTERVAL")) {
    char *end = nullptr;
    double seconds = std::strtod(text, &end);
    if (end != text && *end == '\0' && seconds >= 0 && seconds < 1e6)
      return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  return std::chrono::seconds(5);
}

} // namespace

std::string formatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 359999)
    return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof(text), "%lds", s);
  return text;
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)),
      style_(enabled ? progressStyle() : ProgressStyle::Off),
      started_(Clock::now()), interval_(lineInterval()) {
  if (style_ == ProgressStyle::Lines && interval_.count() > 0)
    heartbeat_ = std::thread([this] { heartbeat(); });
}

ProgressBar::~ProgressBar() {
  if (heartbeat_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    heartbeat_.join();
  }
  finish();
}

void ProgressBar::heartbeat() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_);
    const auto now = Clock::now();
    if (stopping_ || total_ == 0 || done_ >= total_ || now - started_ < interval_ ||
        now - last_ < interval_)
      continue;
    printLine(now);
  }
}

void ProgressBar::printLine(Clock::time_point now) {
  last_ = now;
  const double elapsed =
      std::chrono::duration<double>(now - started_).count();
  // The rest at the average rate so far.
  std::string eta;
  if (done_ > 0 && done_ < total_)
    eta = "ETA " + formatDuration(elapsed / done_ * (total_ - done_)) + ", ";
  std::fprintf(stderr, "%s: %zu/%zu (%.0f%%) %s%s%s%s elapsed\n",
               label_.c_str(), done_, total_, 100.0 * done_ / total_,
               item_.c_str(), item_.empty() ? "" : " ", eta.c_str(),
               formatDuration(elapsed).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::update(size_t done, size_t total, const std::string &item) {
  if (style_ == ProgressStyle::Off || total == 0)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = done;
  total_ = total;
  item_ = item.size() > 40 ? item.substr(0, 37) + "..." : item;
  const auto now = Clock::now();
  if (style_ == ProgressStyle::Lines) {
    if (done < total && now - started_ >= interval_ && now - last_ >= interval_)
      printLine(now);
    return;
  }
  if (done < total && now - last_ < std::chrono::milliseconds(100))
    return;
  last_ = now;
  const double elapsed =
      std::chrono::duration<double>(now - started_).count();
  std::string eta;
  if (done > 0 && done < total)
    eta = "ETA " + formatDuration(elapsed / done * (total - done));
  constexpr int width = 30;
  int filled = static_cast<int>(width * done / total);
  std::string bar(filled, '=');
  if (filled < width)
    bar += '>' + std::string(width - filled - 1, ' ');
  std::fprintf(stderr, "\r%s [%s] %zu/%zu %-40s %-12s", label_.c_str(),
               bar.c_str(), done, total, item_.c_str(), eta.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!drawn_)
    return;
  drawn_ = false;
  if (style_ == ProgressStyle::Bar) {
    std::fprintf(stderr, "\n");
    return;
  }
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - started_).count();
  std::fprintf(stderr, "%s: %zu/%zu done in %s\n", label_.c_str(), done_,
               total_, formatDuration(elapsed).c_str());
  std::fflush(stderr);
}

} // namespace lowbit::cli
