#include "llm/tokenizer.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <utility>

#include "llm/byte_level.h"
#include "llm/utf8.h"
#include "nef/error.h"

namespace nef::llm {

namespace {

// Control tokens that end a model's turn in the chat formats in use; a model's EOS and EOT
// ids count as well whatever their text.
const std::vector<std::string_view>& end_of_turn_texts() {
  static const std::vector<std::string_view> texts = {
      "<|im_end|>", "<|endoftext|>", "<|eot_id|>",           "<|eom_id|>",
      "<|end|>",    "<end_of_turn>", "<|end_of_text|>",      "<|return|>",
      "<EOT>",      "</s>",          "<|END_OF_TURN_TOKEN|>"};
  return texts;
}

std::string quoted(std::string_view s) {
  // Vocabulary text may hold anything: quote it and keep control bytes visible.
  std::string out = "'";
  for (char c : s) {
    if (uint8_t(c) < 0x20) {
      out += str("\\x", "0123456789abcdef"[uint8_t(c) >> 4], "0123456789abcdef"[c & 15]);
    } else {
      out += c;
    }
  }
  return out + "'";
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

}  // namespace

Tokenizer::Tokenizer(TokenizerData data)
    : tokens_(std::move(data.tokens)),
      pre_(data.pre),
      bos_id_(data.bos_id),
      eos_id_(data.eos_id),
      unk_id_(data.unk_id),
      pad_id_(data.pad_id),
      eot_id_(data.eot_id),
      add_bos_(data.add_bos),
      add_eos_(data.add_eos) {
  if (data.model != "gpt2")
    throw UnsupportedError(str("[tokenizer] tokenizer model '", data.model,
                               "' is not supported: only byte-level BPE ('gpt2') is"));
  if (tokens_.empty()) throw ValidationError("[tokenizer] the vocabulary is empty");
  if (tokens_.size() > size_t(std::numeric_limits<int32_t>::max()))
    throw ValidationError(str("[tokenizer] ", tokens_.size(), " tokens do not fit int32 ids"));
  const size_t n = tokens_.size();
  if (!data.token_types.empty() && data.token_types.size() != n)
    throw ValidationError(
        str("[tokenizer] ", data.token_types.size(), " token types for ", n, " tokens"));
  types_.assign(n, TokenType::Normal);
  for (size_t i = 0; i < data.token_types.size(); ++i) {
    int32_t t = data.token_types[i];
    if (t < 0 || t > int32_t(TokenType::Byte))
      throw ValidationError(str("[tokenizer] token ", i, " ", quoted(tokens_[i]),
                                " has unknown token type ", t, " (types are 0-6)"));
    types_[i] = TokenType(t);
  }
  for (auto [what, id] : {std::pair<const char*, int32_t>{"bos_id", bos_id_},
                          {"eos_id", eos_id_},
                          {"unk_id", unk_id_},
                          {"pad_id", pad_id_},
                          {"eot_id", eot_id_}}) {
    if (id < -1 || id >= int32_t(n))
      throw ValidationError(str("[tokenizer] ", what, " ", id,
                                " is out of range for a vocabulary of ", n, " tokens"));
  }

  by_text_.reserve(n);
  bytes_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    by_text_.emplace(std::string_view(tokens_[i]), int32_t(i));  // the lowest id wins
    // Special and added tokens are written as plain text, the rest in the byte alphabet.
    TokenType t = types_[i];
    bool plain = t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown;
    bytes_.push_back(plain ? tokens_[i] : byte_level_to_bytes(tokens_[i]));
  }

  merges_.reserve(data.merges.size());
  for (size_t rank = 0; rank < data.merges.size(); ++rank) {
    const std::string& m = data.merges[rank];
    size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw ValidationError(str("[tokenizer] merge ", rank, " ", quoted(m),
                                " is not two tokens separated by a space"));
    std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    std::string joined = std::string(left) + std::string(right);
    int32_t ids[3];
    std::string_view parts[3] = {left, right, joined};
    for (int k = 0; k < 3; ++k) {
      auto it = by_text_.find(parts[k]);
      if (it == by_text_.end())
        throw ValidationError(str("[tokenizer] merge ", rank, " ", quoted(m),
                                  k < 2 ? " names " : " makes ", quoted(parts[k]),
                                  ", which is not in the vocabulary"));
      ids[k] = it->second;
    }
    merges_.emplace(pair_key(ids[0], ids[1]), Merge{int32_t(rank), ids[2]});  // first rank wins
  }

  for (int b = 0; b < 256; ++b) {
    auto it = by_text_.find(bytes_to_byte_level(std::string(1, char(b))));
    byte_token_[b] = it == by_text_.end() ? -1 : it->second;
  }

  // Tokens cut out of the text before pre-tokenizing.
  trie_.emplace_back();
  for (size_t i = 0; i < n; ++i) {
    TokenType t = types_[i];
    bool always = t == TokenType::UserDefined;
    if (tokens_[i].empty() || !(always || t == TokenType::Control || t == TokenType::Unknown))
      continue;
    int32_t node = 0;
    for (char c : tokens_[i]) {
      auto it = trie_[node].next.find(c);
      if (it == trie_[node].next.end()) {
        int32_t child = int32_t(trie_.size());
        trie_[node].next.emplace(c, child);
        trie_.emplace_back();
        node = child;
      } else {
        node = it->second;
      }
    }
    if (trie_[node].token < 0) {
      trie_[node].token = int32_t(i);
      trie_[node].always = always;
      has_user_defined_ = has_user_defined_ || always;
    }
  }

  ignore_merges_ = pre_.ignore_merges();
  is_eog_.assign(n, false);
  for (int32_t id : {eos_id_, eot_id_})
    if (id >= 0) is_eog_[size_t(id)] = true;
  for (size_t i = 0; i < n; ++i) {
    if (types_[i] != TokenType::Control) continue;
    const auto& texts = end_of_turn_texts();
    if (std::find(texts.begin(), texts.end(), tokens_[i]) != texts.end()) is_eog_[i] = true;
  }
  for (size_t i = 0; i < n; ++i)
    if (is_eog_[i]) eog_ids_.push_back(int32_t(i));
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw ValidationError(str("[tokenizer] token id ", id, " is out of range for a vocabulary of ",
                              vocab_size(), " tokens"));
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return tokens_[size_t(id)];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  check_id(id);
  return bytes_[size_t(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return types_[size_t(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  auto it = by_text_.find(text);
  if (it == by_text_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  TokenType t = token_type(id);
  return t == TokenType::Control || t == TokenType::Unknown;
}

bool Tokenizer::is_eog(int32_t id) const {
  check_id(id);
  return is_eog_[size_t(id)];
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special,
                                       bool add_special) const {
  if (text.size() > size_t(std::numeric_limits<int32_t>::max()))
    throw ValidationError(str("[tokenizer] text of ", text.size(),
                              " bytes is longer than encode() takes (2^31 - 1)"));
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
  if (parse_special || has_user_defined_) {
    // Leftmost-longest: at the first position where some token's text starts, the longest.
    size_t start = 0;
    for (size_t pos = 0; pos < text.size();) {
      int32_t node = 0, best = -1;
      size_t best_len = 0;
      for (size_t k = pos; k < text.size(); ++k) {
        auto it = trie_[node].next.find(text[k]);
        if (it == trie_[node].next.end()) break;
        node = it->second;
        const TrieNode& t = trie_[node];
        if (t.token >= 0 && (parse_special || t.always)) {
          best = t.token;
          best_len = k + 1 - pos;
        }
      }
      if (best < 0) {
        ++pos;
        continue;
      }
      encode_text(text.substr(start, pos - start), out);
      out.push_back(best);
      pos += best_len;
      start = pos;
    }
    encode_text(text.substr(start), out);
  } else {
    encode_text(text, out);
  }
  if (add_special && add_eos_ && eos_id_ >= 0) out.push_back(eos_id_);
  return out;
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  for (std::string_view piece : pre_.split(text)) encode_piece(piece, out);
}

void Tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (auto id = token_id(bytes_to_byte_level(piece))) {
      out.push_back(*id);
      return;
    }
  }
  // One symbol per byte, in a doubly linked list so that merging is O(1); a min-heap of
  // candidate pairs by (rank, position) picks the next merge. Entries made stale by an earlier
  // merge are recognized by their ids and skipped. A byte whose symbol is not in the vocabulary
  // (SmolLM2 lacks 21) is dropped and its neighbours become adjacent, as in the `tokenizers`
  // BPE without an unknown token; llama.cpp drops such bytes too.
  thread_local std::vector<int32_t> id, prev, next;  // scratch, reused across pieces
  id.clear();
  for (char c : piece) {
    int32_t t = byte_token_[uint8_t(c)];
    if (t >= 0) id.push_back(t);
  }
  const int32_t n = int32_t(id.size());
  if (n == 0) return;
  if (n == 1) {
    out.push_back(id[0]);
    return;
  }
  prev.resize(size_t(n));
  next.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos, left, right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int32_t pos) {
    int32_t r = next[size_t(pos)];
    if (r < 0) return;
    auto it = merges_.find(pair_key(id[size_t(pos)], id[size_t(r)]));
    if (it != merges_.end()) heap.push({it->second.rank, pos, id[size_t(pos)], id[size_t(r)]});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    int32_t r = next[size_t(c.pos)];
    if (id[size_t(c.pos)] != c.left || r < 0 || id[size_t(r)] != c.right) continue;  // stale
    id[size_t(c.pos)] = merges_.at(pair_key(c.left, c.right)).result;
    int32_t rr = next[size_t(r)];
    next[size_t(c.pos)] = rr;
    if (rr >= 0) prev[size_t(rr)] = c.pos;
    id[size_t(r)] = -1;  // removed
    if (prev[size_t(c.pos)] >= 0) consider(prev[size_t(c.pos)]);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[size_t(i)]) out.push_back(id[size_t(i)]);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    check_id(id);
    if (skip_special && is_special(id)) continue;
    out += bytes_[size_t(id)];
  }
  return out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tok_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const std::string& bytes = tok_->token_bytes(id);  // validates id
  std::string out;
  if (skip_special_ && tok_->is_special(id)) return out;
  pending_ += bytes;
  size_t used = append_valid_utf8(pending_, false, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  append_valid_utf8(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace nef::llm
