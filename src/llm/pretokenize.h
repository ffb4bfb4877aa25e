// Pre-tokenization: the regex splits a byte-level BPE tokenizer applies before merging, chosen
// by the GGUF `tokenizer.ggml.pre` name. Each type is a list of patterns applied in order: a
// pattern splits every piece the previous one produced into its matches and the text between
// them (both kept), so no byte is ever dropped. Unicode classes (\p{L}, \p{N}, \s) come from
// PCRE2 with Unicode properties (its Unicode version is the one the installed PCRE2 carries).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nef::llm {

class PreTokenizer {
 public:
  // Throws UnsupportedError naming `name` and the supported names when it is not known.
  // "" and "default" are llama.cpp's fallback for BPE files without a known type.
  explicit PreTokenizer(std::string_view name);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // The pieces of `text`, in order, as views into `text`; their concatenation is `text`.
  // Bytes that are not UTF-8 are never matched by a pattern: they end up in the pieces between
  // matches, so they still encode (as their bytes). Thread-safe.
  std::vector<std::string_view> split(std::string_view text) const;

  // The canonical name of the type ("gpt2", "smollm", "default", ...) and its patterns.
  const std::string& name() const { return name_; }
  const std::vector<std::string>& patterns() const { return patterns_; }
  // Whether BPE takes a piece that is a whole vocabulary entry as it is, before any merge
  // (Llama 3's tokenizer: the `tokenizers` BPE option ignore_merges).
  bool ignore_merges() const { return ignore_merges_; }

  // Names split() accepts, for error messages and docs.
  static std::vector<std::string> supported_names();

 private:
  struct Compiled;
  std::string name_;
  std::vector<std::string> patterns_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace nef::llm
