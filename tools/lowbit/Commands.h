//===- Commands.h - The lowbit driver's subcommands -------------*- C++ -*-===//
#ifndef LOWBIT_TOOLS_COMMANDS_H
#define LOWBIT_TOOLS_COMMANDS_H

/// Each takes argv with argv[0] = the subcommand name and returns the exit
/// code (0 success, 1 failure).
int importCommand(int argc, char **argv);
int exportCommand(int argc, char **argv);
int compileCommand(int argc, char **argv);
int runCommand(int argc, char **argv);
int evalCommand(int argc, char **argv);
int benchCommand(int argc, char **argv);
int codegenCommand(int argc, char **argv);
int imatrixCommand(int argc, char **argv);
int calibrateCommand(int argc, char **argv);
int tokenizeCommand(int argc, char **argv);

#endif // LOWBIT_TOOLS_COMMANDS_H
