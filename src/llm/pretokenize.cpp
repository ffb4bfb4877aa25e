#include "llm/pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "nef/error.h"

namespace nef::llm {

namespace {

// GPT-2's split (as the `tokenizers` ByteLevel pre-tokenizer spells it): English contractions,
// letters, numbers and other symbols each with at most one leading space, and whitespace runs
// that leave their last space to the word after them.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3's split: case-insensitive contractions, a letter run with one leading non-letter,
// numbers in groups of up to three digits, and newlines kept apart from other whitespace.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2's: Llama 3's with every digit on its own.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct PreType {
  const char* name;
  std::vector<const char*> aliases;
  std::vector<const char*> patterns;
  bool ignore_merges = false;
};

// The types as llama.cpp's GGUF converter names them (tokenizer.ggml.pre).
const std::vector<PreType>& pre_types() {
  static const std::vector<PreType> types = {
      {"gpt2", {"mpt", "olmo", "jais", "trillion"}, {kGpt2}},
      // Every digit on its own first (the `tokenizers` Digits(individual_digits) step), then
      // GPT-2's split: StarCoder's tokenizer and the models trained with it.
      {"smollm",
       {"starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"},
       {R"(\p{N})", kGpt2}},
      {"llama-bpe", {"llama3", "llama-v3"}, {kLlama3}, true},
      {"qwen2", {}, {kQwen2}},
      // llama.cpp's fallback for a BPE file that names no known type: punctuation runs apart,
      // then GPT-2's split, then digit runs, then three-digit groups.
      {"default", {""}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", R"([0-9][0-9][0-9])"}},
  };
  return types;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? str("PCRE2 error ", code) : std::string(reinterpret_cast<char*>(buf), size_t(n));
}

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(std::string_view name) {
  const PreType* found = nullptr;
  for (const PreType& t : pre_types()) {
    if (name == t.name) found = &t;
    for (const char* a : t.aliases)
      if (name == a) found = &t;
    if (found) break;
  }
  if (!found) {
    std::string known;
    for (const std::string& n : supported_names()) known += (known.empty() ? "" : ", ") + n;
    throw UnsupportedError(str("[tokenizer] pre-tokenizer type '", name,
                               "' is not supported (supported: ", known, ")"));
  }
  name_ = found->name;
  ignore_merges_ = found->ignore_merges;
  for (const char* p : found->patterns) {
    auto c = std::make_unique<Compiled>();
    int err = 0;
    PCRE2_SIZE offset = 0;
    // UCP: \s, \w and friends follow Unicode properties; MATCH_INVALID_UTF: text that is not
    // UTF-8 is matched (invalid bytes never match anything) instead of rejected.
    c->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p), PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    NEF_CHECK(c->code, "pre-tokenizer pattern ", p, ": ", pcre2_message(err), " at ", offset);
    c->jit = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE) == 0;  // no JIT: interpreter
    patterns_.push_back(p);
    compiled_.push_back(std::move(c));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string> PreTokenizer::supported_names() {
  std::vector<std::string> names;
  for (const PreType& t : pre_types()) {
    names.push_back(t.name);
    for (const char* a : t.aliases)
      if (*a) names.push_back(a);
  }
  return names;
}

namespace {

// Splits `piece` into matches and the text between them, appending both to `out`.
void split_one(const std::string& pattern, pcre2_code* code, pcre2_match_data* md,
               std::string_view piece, std::vector<std::string_view>& out) {
  auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t pos = 0, emitted = 0;
  while (pos < piece.size()) {
    int rc = pcre2_match(code, subject, piece.size(), pos, 0, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // the interpreter keeps its backtracking on the heap
      rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_JIT, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      throw Error(ErrorCode::Generic, str("[tokenizer] pre-tokenizer pattern ", pattern,
                                          " failed at byte ", pos, ": ", pcre2_message(rc)));
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0], end = ov[1];
    if (end == start) {  // an empty match: step over one byte (or a whole UTF-8 sequence)
      pos = start + 1;
      while (pos < piece.size() && (uint8_t(piece[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (start > emitted) out.push_back(piece.substr(emitted, start - emitted));
    out.push_back(piece.substr(start, end - start));
    emitted = pos = end;
  }
  if (emitted < piece.size()) out.push_back(piece.substr(emitted));
}

}  // namespace

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  std::vector<std::string_view> next;
  for (size_t i = 0; i < compiled_.size(); ++i) {
    pcre2_code* code = compiled_[i]->code;
    // Match data per call keeps split() thread-safe; it is one small allocation.
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
    if (!md) throw OutOfMemoryError("[tokenizer] cannot allocate PCRE2 match data");
    next.clear();
    for (std::string_view p : pieces) split_one(patterns_[i], code, md.get(), p, next);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace nef::llm
