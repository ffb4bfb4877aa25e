// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model "gpt2": GPT-2, SmolLM2, Llama 3, Qwen2,
// StarCoder and their kin), built from plain vocabulary data so that it does not depend on
// where the data came from (a GGUF file, a tokenizer.json, a test).
//
// Encoding: special tokens are cut out first (leftmost, longest match), the text between them
// is split by the pre-tokenizer (llm/pretokenize.h), each piece's bytes become the GPT-2
// alphabet's symbols (llm/byte_level.h) and adjacent symbols merge by merge rank, lowest first
// (leftmost first among equal ranks), as long as a merge applies. Decoding maps tokens back to
// bytes. A Tokenizer is immutable after construction; every const method is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llm/pretokenize.h"

namespace nef::llm {

// GGUF token types (tokenizer.ggml.token_type), llama.cpp's numbering.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,      // special tokens: <|im_start|>, <|endoftext|>; matched only on request
  UserDefined = 4,  // added tokens that are plain text: always matched, decoded as written
  Unused = 5,
  Byte = 6,  // SentencePiece's <0xAB> tokens (not used by byte-level BPE)
};

// Everything a tokenizer is made of, as GGUF metadata stores it.
struct TokenizerData {
  std::string model = "gpt2";   // tokenizer.ggml.model; only byte-level BPE ("gpt2") is supported
  std::string pre = "default";  // tokenizer.ggml.pre (llm/pretokenize.h lists the types)
  std::vector<std::string> tokens;   // id -> text in the byte-level alphabet
  std::vector<std::string> merges;   // "left right", rank = position
  std::vector<int32_t> token_types;  // id -> TokenType; empty: every token Normal
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1: none
  int32_t eot_id = -1;   // end of turn when it differs from eos (-1: none)
  bool add_bos = false;  // encode() with add_special prepends BOS
  bool add_eos = false;  // ... and appends EOS
};

class Tokenizer {
 public:
  // Validates and indexes `data`. ValidationError when: there are no tokens; token_types has
  // another length or an unknown type; a special id is out of range; a merge is not "a b" or
  // names a token (or a merged result) missing from the vocabulary (the message gives the
  // merge's rank and text). UnsupportedError for another model or an unknown pre-tokenizer.
  // Duplicate token texts: the lowest id wins when text maps to an id.
  explicit Tokenizer(TokenizerData data);
  // Movable, not copyable (its indexes point into its own vocabulary): share one through a
  // pointer. Moving it leaves StreamDecoders made from it dangling.
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. `text` is bytes: UTF-8 is expected, but anything encodes (a byte that is not
  // UTF-8 is matched by no pre-tokenizer class, ends the piece it is in, and becomes its
  // byte's token, merged with its neighbours where merges say so), so decode(encode(t)) == t
  // for every byte string whose bytes all have symbols. With `parse_special`, the text of Control
  // (and Unknown) tokens is recognized as those tokens; UserDefined tokens are always recognized.
  // `add_special` applies add_bos/add_eos. A byte whose symbol is missing from the vocabulary is
  // dropped (as the `tokenizers` package and llama.cpp do; byte-level BPE has no unknown token), so
  // the round trip holds for text without such bytes.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = false,
                              bool add_special = true) const;

  // Ids -> bytes, concatenated. Invalid UTF-8 is possible where a character's bytes are split
  // over tokens and the sequence is cut. `skip_special` leaves Control and Unknown tokens out.
  // ValidationError for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t vocab_size() const { return int32_t(tokens_.size()); }
  const std::string& token_text(int32_t id) const;   // as the vocabulary spells it ("Ġthe")
  const std::string& token_bytes(int32_t id) const;  // what it decodes to (" the")
  TokenType token_type(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view text) const;  // by vocabulary text

  // Control or Unknown type: the tokens parse_special matches and skip_special drops.
  bool is_special(int32_t id) const;
  // End of generation: EOS, EOT, and Control tokens whose text is a known end-of-turn marker
  // (<|im_end|>, <|endoftext|>, <|eot_id|>, <end_of_turn>, ...).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t eot_id() const { return eot_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  const std::string& pre() const { return pre_.name(); }

 private:
  void check_id(int32_t id) const;
  // Appends the BPE tokens of one pre-tokenized piece.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;

  struct Merge {
    int32_t rank;
    int32_t result;
  };
  // A node of the trie of token texts that encode() cuts out before pre-tokenizing.
  struct TrieNode {
    std::unordered_map<char, int32_t> next;  // byte -> node index
    int32_t token = -1;
    bool always = false;  // UserDefined: matched even without parse_special
  };

  std::vector<std::string> tokens_;
  std::vector<std::string> bytes_;  // decoded form of each token
  std::vector<TokenType> types_;
  std::unordered_map<std::string_view, int32_t> by_text_;  // views into tokens_
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, result
  int32_t byte_token_[256];                     // byte -> its symbol's id, or -1
  std::vector<TrieNode> trie_;
  bool has_user_defined_ = false;
  bool ignore_merges_ = false;
  PreTokenizer pre_;
  std::vector<int32_t> eog_ids_;
  std::vector<bool> is_eog_;
  int32_t bos_id_, eos_id_, unk_id_, pad_id_, eot_id_;
  bool add_bos_, add_eos_;
};

// Decodes a token stream piece by piece into valid UTF-8: bytes of a character split over
// tokens are held until the character is complete; bytes that can never form one become
// U+FFFD, as Python's bytes.decode("utf-8", "replace") does. The concatenation of every push()
// and a final flush() equals that lossy decoding of decode(ids). Holds a reference to the
// tokenizer, which must outlive it. Not thread-safe (one stream, one decoder).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  // The text that `id` completes (often empty while a character is unfinished).
  // ValidationError for an invalid id (the decoder is unchanged).
  std::string push(int32_t id);
  // The held bytes of an unfinished character, as U+FFFD; the decoder starts afresh.
  std::string flush();
  bool has_pending() const { return !pending_.empty(); }
  const Tokenizer& tokenizer() const { return *tok_; }

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace nef::llm
