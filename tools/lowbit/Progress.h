//===- Progress.h - Progress on stderr: a bar or log lines ------*- C++ -*-===//
#ifndef LOWBIT_TOOLS_PROGRESS_H
#define LOWBIT_TOOLS_PROGRESS_H

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace lowbit::cli {

/// How progress reaches the user (progressStyle() decides).
enum class ProgressStyle {
  Off,   ///< LOWBIT_NO_PROGRESS set, or the command's output is JSON.
  Bar,   ///< stderr is a terminal: one line redrawn at most every 100 ms.
  Lines, ///< anything else (a log file, a pipe, a scheduler's output): a
         ///< line every LOWBIT_PROGRESS_INTERVAL seconds (default 5) once a
         ///< step has run that long, also while one item takes longer than
         ///< that (a heartbeat thread), and one when it ends.
};

/// Reports "label [=====>    ] 12/48 name  ETA 1m05s" on stderr, in the
/// style given. A step that ends before the first interval prints nothing in
/// the Lines style, so short runs keep their logs unchanged.
class ProgressBar {
public:
  ProgressBar(std::string label, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar &) = delete;
  ProgressBar &operator=(const ProgressBar &) = delete;

  void update(size_t done, size_t total, const std::string &item = "");
  /// Ends the bar's line (Bar) or prints the closing line (Lines, when any
  /// line was printed).
  void finish();

private:
  using Clock = std::chrono::steady_clock;
  /// Prints the Lines style's line for the current state (mutex_ held).
  void printLine(Clock::time_point now);
  void heartbeat();

  std::string label_;
  ProgressStyle style_;
  Clock::time_point started_, last_{};
  std::chrono::milliseconds interval_;
  bool drawn_ = false, stopping_ = false;
  size_t done_ = 0, total_ = 0;
  std::string item_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread heartbeat_;
};

/// "1m05s" / "42s" / "2h03m".
std::string formatDuration(double seconds);

} // namespace lowbit::cli

#endif // LOWBIT_TOOLS_PROGRESS_H
