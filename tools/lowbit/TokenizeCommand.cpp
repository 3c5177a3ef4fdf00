//===- TokenizeCommand.cpp - lowbit tokenize: text to token ids -----------===//
//
// The model's own tokenizer on a text, as llama.cpp's llama-tokenize: one
// line of ids (or, with --pieces, one "id 'piece'" line per token). Reads
// only the tokenizer metadata, so vocabulary-only GGUF files work too.
//
//===----------------------------------------------------------------------===//

#include "CommandLine.h"
#include "Commands.h"

#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Support/MappedFile.h"
#include "lowbit/Tokenizer/Tokenizer.h"

#include <cstdio>
#include <sys/stat.h>

using namespace lowbit;

int tokenizeCommand(int argc, char **argv) {
  cli::CommandLine cl(
      "tokenize", "MODEL.gguf|ARTIFACT_DIR (-p TEXT | -f FILE) [options]",
      "Tokenize a text with the model's tokenizer (SentencePiece or byte-level "
      "BPE, with\nthe model's pre-tokenizer) and print the token ids on one "
      "line, as llama.cpp's\ntokenizer does. Only the tokenizer metadata is "
      "read: a vocabulary-only GGUF\nfile works.");
  cl.option("prompt", "TEXT", "The text to tokenize.", "p");
  cl.option("file", "FILE", "Read the text from FILE instead.", "f");
  cl.flag("pieces", "Print one line per token: the id and its text.");
  cl.flag("no-bos", "Do not add the BOS/EOS tokens the vocabulary asks for "
                    "(default: add them).");
  cl.flag("parse-special", "Recognise control tokens written in the text "
                           "(e.g. <|endoftext|>).");
  std::string error;
  if (std::optional<int> done = cl.parseCommand(argc, argv, "model"))
    return *done;
  std::string path = cl.positional()[0];
  if (cl.has("prompt") == cl.has("file"))
    return cli::fail("give the text with -p TEXT or -f FILE (one of them)");
  std::string text = cl.get("prompt");
  if (cl.has("file") && !readWholeFile(cl.get("file"), text, error))
    return cli::fail(error);

  // An artifact keeps its tokenizer in metadata.gguf.
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    path += "/metadata.gguf";
  gguf::Error gerr;
  std::unique_ptr<gguf::Reader> reader = gguf::Reader::open(path, gerr);
  if (!reader)
    return cli::fail(gerr.message());
  std::unique_ptr<Tokenizer> tokenizer =
      Tokenizer::create(reader->metadata(), error);
  if (!tokenizer)
    return cli::fail(path + ": " + error);
  const std::vector<TokenId> ids =
      tokenizer->tokenize(text, !cl.has("no-bos"), cl.has("parse-special"));
  if (cl.has("pieces")) {
    for (TokenId id : ids)
      std::printf("%6d '%s'\n", id, tokenizer->tokenToPiece(id).c_str());
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i)
    std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
  return 0;
}
