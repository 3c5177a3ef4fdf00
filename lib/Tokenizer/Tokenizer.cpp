//===- Tokenizer.cpp - llama.cpp-compatible tokenizers --------------------===//
//
// The algorithms follow llama.cpp's src/llama-vocab.cpp so that ids match
// token for token, including its tie-breaking rules: SentencePiece merges pop
// the highest score first and, among equal scores, the leftmost pair; BPE
// merges pop the lowest rank first and then the leftmost pair.
//
//===----------------------------------------------------------------------===//

#include "lowbit/Tokenizer/Tokenizer.h"

#include "lowbit/GGUF/GGUF.h"
#include "lowbit/Tokenizer/Unicode.h"

#include <algorithm>
#include <queue>

namespace lowbit {

namespace {

const char kSpaceMarker[] = "\xe2\x96\x81"; // U+2581, SentencePiece's space

void replaceAll(std::string &s, std::string_view from, std::string_view to) {
  if (from.empty())
    return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos)
      break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

const gguf::KeyValue *findKey(const std::vector<gguf::KeyValue> &kvs,
                              std::string_view key) {
  for (const gguf::KeyValue &kv : kvs)
    if (kv.key == key)
      return &kv;
  return nullptr;
}

bool getBool(const std::vector<gguf::KeyValue> &kvs, std::string_view key,
             bool &out) {
  const gguf::KeyValue *kv = findKey(kvs, key);
  if (!kv || !kv->value.isInteger())
    return false;
  out = kv->value.asInt() != 0;
  return true;
}

bool getInt(const std::vector<gguf::KeyValue> &kvs, std::string_view key,
            int64_t &out) {
  const gguf::KeyValue *kv = findKey(kvs, key);
  if (!kv || !kv->value.isInteger())
    return false;
  out = kv->value.asInt();
  return true;
}

// One symbol of the merge loops: a byte range of the text being tokenized,
// linked to its neighbours; merged-away symbols have n == 0.
struct Symbol {
  int prev, next;
  size_t offset, n;
};

std::vector<Symbol> splitCharacters(const std::string &text) {
  std::vector<Symbol> syms;
  syms.reserve(text.size());
  size_t off = 0;
  int index = 0;
  while (off < text.size()) {
    size_t len =
        std::min(unicode::utf8SequenceLength(text[off]), text.size() - off);
    Symbol s{index - 1, off + len == text.size() ? -1 : index + 1, off, len};
    syms.push_back(s);
    off += len;
    ++index;
  }
  return syms;
}

bool hexByte(const std::string &s, uint8_t &byte) {
  // "<0xXX>"
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>')
    return false;
  auto nibble = [](char c, int &v) {
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else
      return false;
    return true;
  };
  int hi, lo;
  if (!nibble(s[3], hi) || !nibble(s[4], lo))
    return false;
  byte = static_cast<uint8_t>(hi * 16 + lo);
  return true;
}

} // namespace

std::unique_ptr<Tokenizer>
Tokenizer::create(const std::vector<gguf::KeyValue> &kvs, std::string &err) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());

  const gguf::KeyValue *model = findKey(kvs, "tokenizer.ggml.model");
  if (!model || model->value.type != gguf::ValueType::String) {
    err = "no tokenizer.ggml.model in the metadata";
    return nullptr;
  }
  std::string pre;
  if (const gguf::KeyValue *kv = findKey(kvs, "tokenizer.ggml.pre"))
    pre = kv->value.str;

  if (model->value.str == "llama") {
    t->kind_ = Kind::SentencePiece;
    t->bos_ = 1;
    t->eos_ = 2;
    t->unk_ = 0;
    t->addSpacePrefix_ = true;
    t->addBos_ = true;
  } else if (model->value.str == "gpt2") {
    t->kind_ = Kind::BytePairEncoding;
    // llama.cpp's (odd) defaults when the ids are not in the metadata.
    t->bos_ = 11;
    t->eos_ = 11;
    t->cleanSpaces_ = true;
    if (pre.empty() || pre == "default") {
      t->pre_ = PreTokenizer::Default;
    } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
      t->pre_ = PreTokenizer::Llama3;
      t->ignoreMerges_ = true;
      t->addBos_ = true;
    } else if (pre == "gpt-2" || pre == "gpt2") {
      t->pre_ = PreTokenizer::GPT2;
    } else if (pre == "falcon") {
      t->pre_ = PreTokenizer::Falcon;
    } else if (pre == "starcoder" || pre == "refact" || pre == "command-r" ||
               pre == "smollm" || pre == "codeshell" || pre == "exaone" ||
               pre == "minerva-7b") {
      t->pre_ = PreTokenizer::StarCoder;
    } else if (pre == "deepseek-llm") {
      t->pre_ = PreTokenizer::DeepSeekLLM;
      t->cleanSpaces_ = false;
    } else if (pre == "qwen2" || pre == "deepseek-r1-qwen") {
      t->pre_ = PreTokenizer::Qwen2;
      t->cleanSpaces_ = false;
    } else {
      err = "unsupported pre-tokenizer '" + pre + "'";
      return nullptr;
    }
  } else {
    err = "unsupported tokenizer model '" + model->value.str + "'";
    return nullptr;
  }

  const gguf::KeyValue *tokens = findKey(kvs, "tokenizer.ggml.tokens");
  if (!tokens || tokens->value.type != gguf::ValueType::Array ||
      tokens->value.elementType != gguf::ValueType::String) {
    err = "no tokenizer.ggml.tokens string array in the metadata";
    return nullptr;
  }
  const size_t n = tokens->value.elements.size();
  if (n == 0) {
    err = "empty vocabulary";
    return nullptr;
  }

  const std::vector<gguf::Value> *scores = nullptr;
  if (const gguf::KeyValue *kv = findKey(kvs, "tokenizer.ggml.scores")) {
    if (kv->value.type != gguf::ValueType::Array ||
        (kv->value.elementType != gguf::ValueType::F32 &&
         kv->value.elementType != gguf::ValueType::I32) ||
        kv->value.elements.size() < n) {
      err = "invalid tokenizer.ggml.scores";
      return nullptr;
    }
    scores = &kv->value.elements;
  }
  const std::vector<gguf::Value> *types = nullptr;
  if (const gguf::KeyValue *kv = findKey(kvs, "tokenizer.ggml.token_type")) {
    if (kv->value.type != gguf::ValueType::Array ||
        kv->value.elementType != gguf::ValueType::I32 ||
        kv->value.elements.size() < n) {
      err = "invalid tokenizer.ggml.token_type";
      return nullptr;
    }
    types = &kv->value.elements;
  }

  t->text_.resize(n);
  t->score_.assign(n, 0.0f);
  t->attr_.assign(n, Normal);
  t->ids_.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    std::string word = tokens->value.elements[i].str;
    if (word.empty())
      word = "[EMPTY_" + std::to_string(i) + "]";
    t->text_[i] = std::move(word);
    // The keys view text_, which is not resized after this loop.
    if (!t->ids_.emplace(t->text_[i], static_cast<TokenId>(i)).second) {
      err = "duplicate token in vocabulary: '" + t->text_[i] + "' (id " +
            std::to_string(i) + ")";
      return nullptr;
    }
    if (scores) {
      const gguf::Value &s = (*scores)[i];
      t->score_[i] = s.type == gguf::ValueType::F32
                         ? static_cast<float>(s.f)
                         : static_cast<float>(s.asInt());
    }
    if (types) {
      switch ((*types)[i].asInt()) {
      case 1:
        t->attr_[i] = Normal;
        break;
      case 2:
        t->attr_[i] = Unknown;
        break;
      case 3:
        t->attr_[i] = Control;
        break;
      case 4:
        t->attr_[i] = UserDefined;
        break;
      case 5:
        t->attr_[i] = Unused;
        break;
      case 6:
        t->attr_[i] = Byte;
        break;
      default:
        t->attr_[i] = 0;
        break; // undefined
      }
    }
  }

  if (t->kind_ == Kind::BytePairEncoding) {
    const gguf::KeyValue *merges = findKey(kvs, "tokenizer.ggml.merges");
    if (!merges || merges->value.type != gguf::ValueType::Array ||
        merges->value.elementType != gguf::ValueType::String) {
      err = "no tokenizer.ggml.merges string array in the metadata";
      return nullptr;
    }
    const auto &list = merges->value.elements;
    t->ranks_.reserve(list.size() * 2);
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string &m = list[i].str;
      // Split at the first space after the first byte, as llama.cpp.
      size_t sp = m.find(' ', 1);
      std::string key = sp == std::string::npos
                            ? std::string(" ")
                            : m.substr(0, sp) + " " + m.substr(sp + 1);
      t->ranks_.emplace(std::move(key), static_cast<int>(i));
    }
  }

  bool flag;
  if (getBool(kvs, "tokenizer.ggml.add_space_prefix", flag))
    t->addSpacePrefix_ = flag;

  auto readId = [&](std::string_view key, TokenId &id) {
    if (id >= 0 && static_cast<size_t>(id) >= n)
      id = kNoToken; // default outside the vocabulary
    int64_t v;
    if (getInt(kvs, key, v) && v >= 0 && static_cast<uint64_t>(v) < n)
      id = static_cast<TokenId>(v);
  };
  readId("tokenizer.ggml.bos_token_id", t->bos_);
  readId("tokenizer.ggml.eos_token_id", t->eos_);
  readId("tokenizer.ggml.unknown_token_id", t->unk_);
  readId("tokenizer.ggml.eot_token_id", t->eot_);
  if (getBool(kvs, "tokenizer.ggml.add_bos_token", flag))
    t->addBos_ = flag;
  if (getBool(kvs, "tokenizer.ggml.add_eos_token", flag))
    t->addEos_ = flag;
  if (t->addBos_ && t->bos_ == kNoToken) {
    err = "tokenizer.ggml.add_bos_token is set but there is no BOS token";
    return nullptr;
  }
  if (t->addEos_ && t->eos_ == kNoToken) {
    err = "tokenizer.ggml.add_eos_token is set but there is no EOS token";
    return nullptr;
  }

  // End-of-generation tokens found by their text, as llama.cpp does.
  static const char *const kEndTexts[] = {
      "<|eot_id|>",    "<|im_end|>",      "<|end|>", "<end_of_turn>",
      "<|endoftext|>", "<|end_of_text|>", "<EOT>",   "<|eom_id|>"};
  for (const char *txt : kEndTexts) {
    TokenId id = t->find(txt);
    if (id == kNoToken)
      continue;
    if (t->eot_ == kNoToken && std::string_view(txt) != "<|eom_id|>")
      t->eot_ = id;
    t->endOfGeneration_.push_back(id);
  }
  for (TokenId id : {t->eos_, t->eot_})
    if (id != kNoToken)
      t->endOfGeneration_.push_back(id);

  for (size_t i = 0; i < n; ++i)
    if (t->attr_[i] & (Control | UserDefined | Unknown))
      t->specials_.push_back(static_cast<TokenId>(i));
  // Longest first; ties by id so the order is deterministic.
  std::sort(t->specials_.begin(), t->specials_.end(),
            [&](TokenId a, TokenId b) {
              size_t la = t->text_[a].size(), lb = t->text_[b].size();
              return la != lb ? la > lb : a < b;
            });
  return t;
}

TokenId Tokenizer::find(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? kNoToken : it->second;
}

bool Tokenizer::isEndOfGeneration(TokenId id) const {
  return id != kNoToken &&
         std::find(endOfGeneration_.begin(), endOfGeneration_.end(), id) !=
             endOfGeneration_.end();
}

TokenId Tokenizer::byteToken(uint8_t byte) const {
  static const char hex[] = "0123456789ABCDEF";
  const char buf[7] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>', 0};
  TokenId id = find(buf);
  if (id != kNoToken)
    return id;
  id = find(std::string(1, static_cast<char>(byte)));
  // llama.cpp throws here; a vocabulary without byte pieces gets <unk>.
  return id != kNoToken ? id : unk_;
}

int Tokenizer::bpeRank(const std::string &left,
                       const std::string &right) const {
  auto it = ranks_.find(left + " " + right);
  return it == ranks_.end() ? -1 : it->second;
}

//===----------------------------------------------------------------------===//
// SentencePiece
//===----------------------------------------------------------------------===//

void Tokenizer::tokenizeSentencePiece(const std::string &text,
                                      std::vector<TokenId> &out) const {
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  struct Lower {
    bool operator()(const Bigram &l, const Bigram &r) const {
      return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
  };
  std::vector<Symbol> syms = splitCharacters(text);
  std::vector<Bigram> storage;
  storage.reserve(syms.size() * 2);
  std::priority_queue<Bigram, std::vector<Bigram>, Lower> queue(
      Lower(), std::move(storage));
  // Which two symbols formed a merged text; lets a symbol without a piece of
  // its own be re-split (llama.cpp's resegment).
  std::unordered_map<std::string_view, std::pair<int, int>> formedBy;

  auto tryAdd = [&](int left, int right) {
    if (left == -1 || right == -1)
      return;
    std::string_view s(text.data() + syms[left].offset,
                       syms[left].n + syms[right].n);
    TokenId id = find(s);
    if (id == kNoToken)
      return;
    queue.push(Bigram{left, right, score_[id], s.size()});
    formedBy[s] = {left, right};
  };

  for (int i = 1; i < static_cast<int>(syms.size()); ++i)
    tryAdd(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol &l = syms[b.left];
    Symbol &r = syms[b.right];
    // Stale entry: one side was merged into something else meanwhile.
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size)
      continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0)
      syms[r.next].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }

  // Recursive: a symbol with no piece falls back to its parts, then bytes.
  auto emit = [&](auto &self, const Symbol &sym) -> void {
    std::string_view s(text.data() + sym.offset, sym.n);
    TokenId id = find(s);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
    auto it = formedBy.find(s);
    if (it == formedBy.end()) {
      for (char c : s)
        out.push_back(byteToken(static_cast<uint8_t>(c)));
      return;
    }
    self(self, syms[it->second.first]);
    self(self, syms[it->second.second]);
  };
  if (syms.empty())
    return;
  for (int i = 0; i != -1; i = syms[i].next)
    emit(emit, syms[i]);
}

//===----------------------------------------------------------------------===//
// Byte-level BPE
//===----------------------------------------------------------------------===//

void Tokenizer::tokenizeBytePair(const std::string &text,
                                 std::vector<TokenId> &out) const {
  struct Bigram {
    int left, right;
    std::string text;
    int rank;
  };
  struct Lower {
    bool operator()(const Bigram &l, const Bigram &r) const {
      return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
  };

  for (const std::string &raw : preTokenize(text, pre_)) {
    std::string word;
    for (char c : raw)
      word += unicode::byteToUnicode(static_cast<uint8_t>(c));

    std::vector<Symbol> syms;
    if (ignoreMerges_ && find(word) != kNoToken)
      syms.push_back(Symbol{-1, -1, 0, word.size()});
    else
      syms = splitCharacters(word);

    std::priority_queue<Bigram, std::vector<Bigram>, Lower> queue;
    auto piece = [&](int i) { return word.substr(syms[i].offset, syms[i].n); };
    auto tryAdd = [&](int left, int right) {
      if (left == -1 || right == -1)
        return;
      std::string l = piece(left), r = piece(right);
      int rank = bpeRank(l, r);
      if (rank < 0)
        return;
      queue.push(Bigram{left, right, l + r, rank});
    };
    for (int i = 1; i < static_cast<int>(syms.size()); ++i)
      tryAdd(i - 1, i);

    while (!queue.empty()) {
      Bigram b = queue.top();
      queue.pop();
      Symbol &l = syms[b.left];
      Symbol &r = syms[b.right];
      if (l.n == 0 || r.n == 0)
        continue;
      if (piece(b.left) + piece(b.right) != b.text)
        continue; // outdated
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0)
        syms[r.next].prev = b.left;
      tryAdd(l.prev, b.left);
      tryAdd(b.left, l.next);
    }

    for (const Symbol &s : syms) {
      if (s.n == 0)
        continue;
      std::string str = word.substr(s.offset, s.n);
      TokenId id = find(str);
      if (id != kNoToken) {
        out.push_back(id);
        continue;
      }
      // llama.cpp looks each byte of the encoded text up on its own and
      // silently drops those that are not pieces.
      for (char c : str) {
        TokenId b = find(std::string(1, c));
        if (b != kNoToken)
          out.push_back(b);
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Public entry points
//===----------------------------------------------------------------------===//

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool addSpecial,
                                         bool parseSpecial) const {
  // Split special tokens out first; raw pieces keep their byte range.
  struct Fragment {
    TokenId token; // kNoToken for raw text
    size_t offset, length;
  };
  std::vector<Fragment> frags;
  if (!text.empty())
    frags.push_back({kNoToken, 0, text.size()});
  for (TokenId sid : specials_) {
    if (!parseSpecial && (attr_[sid] & (Control | Unknown)))
      continue; // user-defined tokens are always split out
    const std::string &st = text_[sid];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment &f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset, end = f.offset + f.length;
      std::string_view window(text.data(), end);
      while (pos < end) {
        size_t hit = window.find(st, pos);
        if (hit == std::string_view::npos)
          break;
        if (hit > pos)
          next.push_back({kNoToken, pos, hit - pos});
        next.push_back({sid, hit, st.size()});
        pos = hit + st.size();
      }
      if (pos < end)
        next.push_back({kNoToken, pos, end - pos});
    }
    frags.swap(next);
  }

  std::vector<TokenId> out;
  if (kind_ == Kind::SentencePiece) {
    bool prevSpecial = true; // the first text gets the space prefix
    if (addSpecial && addBos_)
      out.push_back(bos_);
    for (const Fragment &f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prevSpecial = true;
        continue;
      }
      std::string s;
      if (addSpacePrefix_ && prevSpecial)
        s = " ";
      s.append(text.substr(f.offset, f.length));
      replaceAll(s, " ", kSpaceMarker);
      tokenizeSentencePiece(s, out);
      prevSpecial = false;
    }
  } else {
    if (addSpecial && addBos_)
      out.push_back(bos_);
    for (const Fragment &f : frags) {
      if (f.token != kNoToken)
        out.push_back(f.token);
      else
        tokenizeBytePair(std::string(text.substr(f.offset, f.length)), out);
    }
  }
  if (addSpecial && addEos_)
    out.push_back(eos_);
  return out;
}

std::string Tokenizer::tokenToPiece(TokenId id, bool special,
                                    int lstrip) const {
  if (id < 0 || id >= vocabSize())
    return std::string();
  const uint8_t attr = attr_[id];
  if (!special && (attr & (Unknown | Control)))
    return std::string();
  const std::string &txt = text_[id];
  std::string piece;
  if (attr & (Unknown | Control | UserDefined)) {
    piece = txt;
  } else if (attr & Normal) {
    if (kind_ == Kind::SentencePiece) {
      piece = txt;
      replaceAll(piece, kSpaceMarker, " ");
    } else {
      for (uint32_t cp : unicode::decodeUtf8(txt)) {
        uint8_t b;
        if (unicode::unicodeToByte(cp, b)) {
          piece.push_back(static_cast<char>(b));
          continue;
        }
        // Same marker llama.cpp writes for a character outside the map.
        std::string utf8;
        unicode::appendUtf8(cp, utf8);
        piece += "[UNK_BYTE_0x";
        static const char hex[] = "0123456789abcdef";
        for (unsigned char c : utf8) {
          piece.push_back(hex[c >> 4]);
          piece.push_back(hex[c & 15]);
        }
        piece += txt + "]";
      }
    }
  } else if (attr & Byte) {
    uint8_t b;
    if (hexByte(txt, b))
      piece.push_back(static_cast<char>(b));
  }
  size_t skip = 0;
  while (static_cast<int>(skip) < lstrip && skip < piece.size() &&
         piece[skip] == ' ')
    ++skip;
  return piece.substr(skip);
}

std::string Tokenizer::detokenize(const std::vector<TokenId> &tokens,
                                  bool removeSpecial,
                                  bool unparseSpecial) const {
  size_t begin = 0, end = tokens.size();
  bool removeSpace = addSpacePrefix_;
  if (removeSpecial && addBos_ && end > begin && tokens[begin] == bos_) {
    removeSpace = false;
    ++begin;
  }
  if (removeSpecial && addEos_ && end > begin && tokens[end - 1] == eos_)
    --end;

  std::string text;
  for (size_t i = begin; i < end; ++i) {
    text += tokenToPiece(tokens[i], unparseSpecial, removeSpace ? 1 : 0);
    removeSpace = false;
  }
  if (!cleanSpaces_ || text.empty())
    return text;

  // llama.cpp's clean_up_tokenization_spaces, three passes.
  std::string a;
  a.push_back(text[0]);
  for (size_t i = 1; i < text.size(); ++i) {
    char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
      a.pop_back();
    a.push_back(x);
  }
  std::string b;
  b.push_back(a[0]);
  for (size_t i = 1; i < a.size(); ++i) {
    char x = a[i];
    if (x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();  // " ' " -> "'"
      a[++i] = '\0'; // llama.cpp blanks the dropped space in place
    }
    b.push_back(x);
  }
  std::string c;
  c.push_back(b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm')
        c.pop_back();
      else if (i + 2 < b.size() && ((x1 == 'r' && b[i + 2] == 'e') ||
                                    (x1 == 'v' && b[i + 2] == 'e')))
        c.pop_back();
    }
    c.push_back(x);
  }
  return c;
}

} // namespace lowbit
