//===- CommandLine.h - Options of the lowbit subcommands --------*- C++ -*-===//
//
// Each subcommand declares its options once; parsing, the --help text and
// the "unknown option" errors all come from that declaration.
//
//===----------------------------------------------------------------------===//
#ifndef LOWBIT_TOOLS_COMMANDLINE_H
#define LOWBIT_TOOLS_COMMANDLINE_H

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::cli {

class CommandLine {
public:
  CommandLine(std::string command, std::string usage, std::string summary);

  /// A boolean switch: --name (or -alias).
  void flag(const std::string &name, const std::string &help,
            const std::string &alias = "");
  /// An option with a value: --name VALUE, --name=VALUE or -alias VALUE.
  void option(const std::string &name, const std::string &metavar,
              const std::string &help, const std::string &alias = "",
              bool repeatable = false);
  /// An option whose value may be left out: `--name` alone means
  /// `implicitValue`; `--name=VALUE` sets it; `--name VALUE` only when
  /// `takesNext(VALUE)` accepts the next argument (so that a positional
  /// argument after the option is not swallowed).
  void optionalValue(const std::string &name, const std::string &metavar,
                     const std::string &help, const std::string &implicitValue,
                     std::function<bool(const std::string &)> takesNext);
  /// Extra paragraph printed after the options in --help.
  void epilog(const std::string &text) { epilog_ = text; }

  /// Parses argv[1..]; argv[0] is the subcommand. Returns false with `error`
  /// set on bad input. `--help` sets helpRequested() and returns true.
  bool parse(int argc, char **argv, std::string &error);
  bool helpRequested() const { return help_; }
  /// What every subcommand does first: parses argv, prints --help, and checks
  /// that there is exactly one positional argument (`what`, e.g. "model").
  /// Returns the exit code when the command is already done (help: 0, an
  /// error: 1, after printing it), nullopt when it should go on.
  std::optional<int> parseCommand(int argc, char **argv,
                                  const std::string &what);
  std::string helpText() const;

  bool has(const std::string &name) const;
  std::string get(const std::string &name, const std::string &dflt = "") const;
  const std::vector<std::string> &getAll(const std::string &name) const;
  /// Parses a number; false with `error` set when malformed.
  bool getInt(const std::string &name, long long &value,
              std::string &error) const;
  bool getDouble(const std::string &name, double &value,
                 std::string &error) const;
  const std::vector<std::string> &positional() const { return positional_; }

private:
  struct Spec {
    std::string name, alias, metavar, help;
    bool takesValue = false, repeatable = false;
    /// Options whose value may be left out (optionalValue).
    bool valueOptional = false;
    std::string implicitValue;
    std::function<bool(const std::string &)> takesNext;
  };
  const Spec *find(const std::string &arg) const;

  std::string command_, usage_, summary_, epilog_;
  std::vector<Spec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

/// Prints "error: <message>" to stderr and returns 1, the exit code of every
/// failed command.
int fail(const std::string &message);

/// How long steps report progress: a bar on a terminal, a line every few
/// seconds elsewhere, nothing with LOWBIT_NO_PROGRESS.
enum class ProgressStyle;
ProgressStyle progressStyle();
/// Whether long steps report progress at all (LOWBIT_NO_PROGRESS unset).
bool progressEnabled();

} // namespace lowbit::cli

#endif // LOWBIT_TOOLS_COMMANDLINE_H
