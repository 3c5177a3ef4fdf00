//===- CommandLine.cpp - Options of the lowbit subcommands ----------------===//
#include "CommandLine.h"
#include "Progress.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace lowbit::cli {

CommandLine::CommandLine(std::string command, std::string usage,
                         std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)),
      summary_(std::move(summary)) {}

void CommandLine::flag(const std::string &name, const std::string &help,
                       const std::string &alias) {
  Spec spec;
  spec.name = name;
  spec.alias = alias;
  spec.help = help;
  specs_.push_back(std::move(spec));
}

void CommandLine::option(const std::string &name, const std::string &metavar,
                         const std::string &help, const std::string &alias,
                         bool repeatable) {
  flag(name, help, alias);
  specs_.back().metavar = metavar;
  specs_.back().takesValue = true;
  specs_.back().repeatable = repeatable;
}

void CommandLine::optionalValue(
    const std::string &name, const std::string &metavar,
    const std::string &help, const std::string &implicitValue,
    std::function<bool(const std::string &)> takesNext) {
  option(name, metavar, help);
  Spec &spec = specs_.back();
  spec.valueOptional = true;
  spec.implicitValue = implicitValue;
  spec.takesNext = std::move(takesNext);
}

const CommandLine::Spec *CommandLine::find(const std::string &arg) const {
  for (const Spec &spec : specs_)
    if (arg == "--" + spec.name || (!spec.alias.empty() && arg == "-" + spec.alias))
      return &spec;
  return nullptr;
}

bool CommandLine::parse(int argc, char **argv, std::string &error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      return true;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    std::string inlineValue;
    bool hasInline = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inlineValue = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      hasInline = true;
    }
    const Spec *spec = find(arg);
    if (!spec) {
      error = "unknown option '" + arg + "' for 'lowbit " + command_ +
              "' (see 'lowbit " + command_ + " --help')";
      return false;
    }
    if (!spec->takesValue) {
      if (hasInline) {
        error = "option '--" + spec->name + "' takes no value";
        return false;
      }
      values_[spec->name].push_back("1");
      continue;
    }
    std::string value;
    if (hasInline) {
      value = inlineValue;
    } else if (spec->valueOptional) {
      if (i + 1 < argc && argv[i + 1][0] != '-' && spec->takesNext &&
          spec->takesNext(argv[i + 1]))
        value = argv[++i];
      else
        value = spec->implicitValue;
    } else {
      if (i + 1 >= argc) {
        error = "option '" + arg + "' needs a value (" + spec->metavar + ")";
        return false;
      }
      value = argv[++i];
    }
    auto &slot = values_[spec->name];
    if (!spec->repeatable && !slot.empty()) {
      error = "option '--" + spec->name + "' given twice";
      return false;
    }
    slot.push_back(value);
  }
  return true;
}

std::optional<int> CommandLine::parseCommand(int argc, char **argv,
                                             const std::string &what) {
  std::string error;
  if (!parse(argc, argv, error))
    return fail(error);
  if (help_) {
    std::printf("%s", helpText().c_str());
    return 0;
  }
  if (positional_.size() != 1)
    return fail("expected one " + what + " (see 'lowbit " + command_ +
                " --help')");
  return std::nullopt;
}

std::string CommandLine::helpText() const {
  std::string text = "USAGE: lowbit " + command_ + " " + usage_ + "\n\n" +
                     summary_ + "\n\nOPTIONS:\n";
  for (const Spec &spec : specs_) {
    std::string left = "  ";
    if (!spec.alias.empty())
      left += "-" + spec.alias + ", ";
    left += "--" + spec.name;
    if (spec.valueOptional)
      left += " [" + spec.metavar + "]";
    else if (spec.takesValue)
      left += " " + spec.metavar;
    if (left.size() < 30)
      left.resize(30, ' ');
    else
      left += "\n" + std::string(30, ' ');
    // Indent continuation lines of the help under the first.
    std::string help;
    for (char c : spec.help) {
      help += c;
      if (c == '\n')
        help += std::string(30, ' ');
    }
    text += left + help + (spec.repeatable ? " (repeatable)" : "") + "\n";
  }
  text += "  -h, --help                  Show this help.\n";
  if (!epilog_.empty())
    text += "\n" + epilog_ + "\n";
  return text;
}

bool CommandLine::has(const std::string &name) const {
  return values_.count(name) != 0;
}

std::string CommandLine::get(const std::string &name,
                             const std::string &dflt) const {
  auto it = values_.find(name);
  return it == values_.end() ? dflt : it->second.back();
}

const std::vector<std::string> &
CommandLine::getAll(const std::string &name) const {
  static const std::vector<std::string> empty;
  auto it = values_.find(name);
  return it == values_.end() ? empty : it->second;
}

bool CommandLine::getInt(const std::string &name, long long &value,
                         std::string &error) const {
  if (!has(name))
    return true;
  std::string text = get(name);
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE) {
    error = "option '--" + name + "' expects an integer, got '" + text + "'";
    return false;
  }
  value = v;
  return true;
}

bool CommandLine::getDouble(const std::string &name, double &value,
                            std::string &error) const {
  if (!has(name))
    return true;
  std::string text = get(name);
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') {
    error = "option '--" + name + "' expects a number, got '" + text + "'";
    return false;
  }
  value = v;
  return true;
}

int fail(const std::string &message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

bool progressEnabled() { return progressStyle() != ProgressStyle::Off; }

ProgressStyle progressStyle() {
  if (std::getenv("LOWBIT_NO_PROGRESS"))
    return ProgressStyle::Off;
  return isatty(fileno(stderr)) ? ProgressStyle::Bar : ProgressStyle::Lines;
}

} // namespace lowbit::cli
