// The byte-level BPE tokenizer (src/llm) on small hand-made vocabularies: merge order against a
// naive reference BPE on random merges and words, bytes without merges, text that is not UTF-8,
// special and added tokens, the streaming decoder on characters split over tokens, the chat
// template and stop strings, and every malformed input. The SmolLM2 vocabulary against the
// `tokenizers` package is tests/python/test_tokenizer.py.
#include "llm/tokenizer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "llm/byte_level.h"
#include "llm/chat_template.h"
#include "llm/pretokenize.h"
#include "llm/stop_strings.h"
#include "llm/utf8.h"
#include "nef/error.h"

namespace nef::llm {
namespace {

// A vocabulary of the 256 byte symbols (id = byte order of the alphabet's symbols, not the byte
// value) grown by merges; added tokens go after them.
struct Vocab {
  TokenizerData d;
  Vocab() {
    d.pre = "gpt2";
    for (int b = 0; b < 256; ++b) add(bytes_to_byte_level(std::string(1, char(b))));
  }
  int32_t add(const std::string& text, TokenType t = TokenType::Normal) {
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == text) return int32_t(i);
    d.tokens.push_back(text);
    d.token_types.push_back(int32_t(t));
    return int32_t(d.tokens.size() - 1);
  }
  // Texts in the byte alphabet (ASCII letters and digits stand for themselves).
  int32_t merge(const std::string& a, const std::string& b) {
    d.merges.push_back(a + " " + b);
    return add(a + b);
  }
  int32_t id(const std::string& text) const {
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == text) return int32_t(i);
    ADD_FAILURE() << "no token " << text;
    return -1;
  }
  Tokenizer make() const { return Tokenizer(d); }
};

std::vector<std::string> texts(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.token_text(id));
  return out;
}

template <typename E, typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}

TEST(ByteLevel, EveryByteHasOneSymbolAndBack) {
  std::map<uint32_t, int> seen;
  for (int b = 0; b < 256; ++b) {
    uint32_t cp = byte_to_code_point(uint8_t(b));
    EXPECT_TRUE(seen.emplace(cp, b).second) << "two bytes share U+" << cp;
    EXPECT_EQ(code_point_to_byte(cp), b);
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable) {
      EXPECT_EQ(cp, uint32_t(b));
    } else {
      EXPECT_GE(cp, 256u);
    }
  }
  EXPECT_EQ(byte_to_code_point(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(byte_to_code_point('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(code_point_to_byte(0x41F), -1);
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
}

TEST(Utf8, ReplacementFollowsMaximalSubparts) {
  auto lossy = [](std::string_view s) {
    std::string out;
    EXPECT_EQ(append_valid_utf8(s, true, out), s.size());
    return out;
  };
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("a\xC3\xA9z"), "a\xC3\xA9z");
  EXPECT_EQ(lossy("\xC0\x80"), R + R);                  // overlong: two invalid bytes
  EXPECT_EQ(lossy("\xE0\x80\x80"), R + R + R);          // E0 needs A0..BF next
  EXPECT_EQ(lossy("\xED\xA0\x80"), R + R + R);          // a surrogate
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), R + R + R + R);  // past U+10FFFF
  EXPECT_EQ(lossy("\xE2\x82z"), R + "z");               // a cut sequence is one replacement
  EXPECT_EQ(lossy("\xF0\x9F\x98"), R);
  EXPECT_EQ(lossy("\xFF\xFE"), R + R);
  std::string out;
  EXPECT_EQ(append_valid_utf8("ok\xF0\x9F\x98", false, out), 2u);  // the tail may still complete
  EXPECT_EQ(out, "ok");
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\x98"));
}

TEST(Tokenizer, MergesApplyByRankNotByPosition) {
  Vocab v;
  v.merge("a", "b");
  v.merge("b", "c");
  Tokenizer t = v.make();
  EXPECT_EQ(texts(t, t.encode("abc")), (std::vector<std::string>{"ab", "c"}));
  Vocab w;
  w.merge("b", "c");
  w.merge("a", "b");
  Tokenizer u = w.make();
  EXPECT_EQ(texts(u, u.encode("abc")), (std::vector<std::string>{"a", "bc"}));
}

TEST(Tokenizer, EqualRanksMergeLeftmostFirst) {
  Vocab v;
  v.merge("a", "a");
  Tokenizer t = v.make();
  EXPECT_EQ(texts(t, t.encode("aaa")), (std::vector<std::string>{"aa", "a"}));
  EXPECT_EQ(texts(t, t.encode("aaaaa")), (std::vector<std::string>{"aa", "aa", "a"}));
  v.merge("aa", "aa");
  Tokenizer u = v.make();
  EXPECT_EQ(texts(u, u.encode("aaaaa")), (std::vector<std::string>{"aaaa", "a"}));
}

// The textbook algorithm, O(n^2) per word: merge the lowest-ranked adjacent pair (the leftmost
// among equals) until none has a rank.
std::vector<std::string> naive_bpe(const std::string& word,
                                   const std::map<std::pair<std::string, std::string>, int>& rank) {
  std::vector<std::string> s;
  for (char c : word) s.push_back(bytes_to_byte_level(std::string(1, c)));
  for (;;) {
    int best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      auto it = rank.find({s[i], s[i + 1]});
      if (it != rank.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) return s;
    s[at] += s[at + 1];
    s.erase(s.begin() + long(at) + 1);
  }
}

TEST(Tokenizer, MatchesNaiveBpeOnRandomMerges) {
  std::random_device rd;
  const unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int round = 0; round < 20; ++round) {
    Vocab v;
    std::vector<std::string> pool = {"a", "b", "c", "d"};
    std::map<std::pair<std::string, std::string>, int> rank;
    int n_merges = 5 + int(rng() % 60);
    for (int m = 0; m < n_merges; ++m) {
      const std::string& a = pool[rng() % pool.size()];
      const std::string& b = pool[rng() % pool.size()];
      if (rank.count({a, b}) || a.size() + b.size() > 12) continue;
      rank[{a, b}] = int(v.d.merges.size());
      v.merge(a, b);
      pool.push_back(a + b);
    }
    Tokenizer t = v.make();
    for (int w = 0; w < 50; ++w) {
      std::string word;
      size_t len = 1 + rng() % 40;
      for (size_t i = 0; i < len; ++i) word += char('a' + rng() % 4);
      EXPECT_EQ(texts(t, t.encode(word)), naive_bpe(word, rank)) << word;
    }
  }
}

TEST(Tokenizer, BytesWithoutMergesAreByteTokens) {
  Vocab v;
  v.merge("Ġ", "h");
  Tokenizer t = v.make();
  // "é" is two bytes and no merge joins them: two byte tokens, decoded back to the character.
  std::vector<int32_t> ids = t.encode("\xC3\xA9");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(t.token_bytes(ids[0]), "\xC3");
  EXPECT_EQ(t.token_bytes(ids[1]), "\xA9");
  EXPECT_EQ(t.decode(ids), "\xC3\xA9");
  EXPECT_EQ(t.decode(t.encode(" h")), " h");
  EXPECT_EQ(t.encode(" h").size(), 1u);
  EXPECT_TRUE(t.encode("").empty());
}

TEST(Tokenizer, TextThatIsNotUtf8StillRoundTrips) {
  Vocab v;
  v.merge("Ġ", "h");
  v.merge("Ġh", "i");
  Tokenizer t = v.make();
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s;
    size_t len = rng() % 64;
    for (size_t k = 0; k < len; ++k) s += char(rng() % 256);
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
  std::string bad = "x \xFF\xFE hi\xC3";
  EXPECT_EQ(t.decode(t.encode(bad)), bad);
}

TEST(Tokenizer, BytesWithoutSymbolsAreDroppedAndTheirNeighboursMerge) {
  // Like the `tokenizers` BPE without an unknown token: in the piece "acb", with no symbol for
  // 'c', "a" and "b" become neighbours and merge.
  TokenizerData d;
  d.pre = "gpt2";
  d.tokens = {"<unk>", "a", "b", "ab"};
  d.merges = {"a b"};
  d.token_types = {int32_t(TokenType::Unknown), 1, 1, 1};
  d.unk_id = 0;  // byte-level BPE never emits it
  Tokenizer t(d);
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{3}));
  EXPECT_EQ(t.encode("acb"), (std::vector<int32_t>{3}));
  EXPECT_EQ(t.encode("zz"), (std::vector<int32_t>{}));
  EXPECT_EQ(t.encode("b a"), (std::vector<int32_t>{2, 1}));  // the space has no symbol either
}

TEST(Tokenizer, SpecialTokensOnlyWhenAsked) {
  Vocab v;
  v.merge("u", "s");
  int32_t start = v.add("<|im_start|>", TokenType::Control);
  int32_t end = v.add("<|im_end|>", TokenType::Control);
  int32_t think = v.add("<think>", TokenType::UserDefined);
  v.d.eos_id = end;
  Tokenizer t = v.make();
  std::string text = "<|im_start|>us<|im_end|>";
  std::vector<int32_t> parsed = t.encode(text, true);
  EXPECT_EQ(parsed, (std::vector<int32_t>{start, v.id("us"), end}));
  std::vector<int32_t> plain = t.encode(text, false);
  EXPECT_GT(plain.size(), 5u);
  for (int32_t id : plain) EXPECT_FALSE(t.is_special(id));
  EXPECT_EQ(t.decode(plain), text);
  EXPECT_EQ(t.decode(parsed), text);
  EXPECT_EQ(t.decode(parsed, true), "us");
  // Added plain-text tokens are always recognized, inside words too.
  std::vector<int32_t> th = t.encode("a<think>b", false);
  EXPECT_EQ(th, (std::vector<int32_t>{v.id("a"), think, v.id("b")}));
  EXPECT_TRUE(t.is_special(start));
  EXPECT_FALSE(t.is_special(think));
  EXPECT_TRUE(t.is_eog(end));
  EXPECT_FALSE(t.is_eog(start));
  EXPECT_EQ(t.eog_ids(), (std::vector<int32_t>{end}));
}

TEST(Tokenizer, SpecialTokensMatchLeftmostLongest) {
  Vocab v;
  int32_t ab = v.add("<ab>", TokenType::Control);
  int32_t abc = v.add("<ab>c", TokenType::Control);
  int32_t cd = v.add("c<d>", TokenType::Control);
  Tokenizer t = v.make();
  EXPECT_EQ(t.encode("<ab>c<d>", true),
            (std::vector<int32_t>{abc, v.id("<"), v.id("d"), v.id(">")}));
  EXPECT_EQ(t.encode("x<ab>", true), (std::vector<int32_t>{v.id("x"), ab}));
  EXPECT_EQ(t.encode("c<d>", true), (std::vector<int32_t>{cd}));
}

TEST(Tokenizer, EndOfGenerationByNameAndId) {
  Vocab v;
  int32_t eot = v.add("<|endoftext|>", TokenType::Control);
  int32_t other = v.add("<|im_end|>", TokenType::Normal);  // not Control: not a marker
  int32_t mine = v.add("<stop>", TokenType::Control);
  v.d.eot_id = mine;
  Tokenizer t = v.make();
  EXPECT_TRUE(t.is_eog(eot));
  EXPECT_FALSE(t.is_eog(other));
  EXPECT_TRUE(t.is_eog(mine));
}

TEST(Tokenizer, AddBosAndEos) {
  Vocab v;
  int32_t bos = v.add("<s>", TokenType::Control);
  int32_t eos = v.add("</s>", TokenType::Control);
  v.d.bos_id = bos;
  v.d.eos_id = eos;
  v.d.add_bos = true;
  v.d.add_eos = true;
  Tokenizer t = v.make();
  EXPECT_EQ(t.encode("a"), (std::vector<int32_t>{bos, v.id("a"), eos}));
  EXPECT_EQ(t.encode("a", false, false), (std::vector<int32_t>{v.id("a")}));
  EXPECT_EQ(t.encode("", false, true), (std::vector<int32_t>{bos, eos}));
}

TEST(Tokenizer, MovedTokenizerStillFindsItsTokens) {
  Vocab v;
  v.merge("a", "b");
  int32_t start = v.add("<|im_start|>", TokenType::Control);
  std::vector<Tokenizer> many;
  for (int i = 0; i < 40; ++i) many.push_back(v.make());  // reallocations move them
  Tokenizer moved = std::move(many[7]);
  many.clear();
  EXPECT_EQ(moved.encode("ab<|im_start|>", true), (std::vector<int32_t>{v.id("ab"), start}));
  EXPECT_EQ(moved.token_id("ab"), v.id("ab"));
}

TEST(Tokenizer, BadIdsNameTheIdAndTheVocabulary) {
  Vocab v;
  Tokenizer t = v.make();
  for (int32_t bad : {-1, 256, 1 << 30}) {
    std::vector<std::string> needles = {"token id " + std::to_string(bad), "256 tokens"};
    expect_error<ValidationError>([&] { t.decode({1, bad}); }, needles);
    expect_error<ValidationError>([&] { t.token_text(bad); }, needles);
    expect_error<ValidationError>([&] { t.is_eog(bad); }, needles);
    expect_error<ValidationError>([&] { t.is_special(bad); }, needles);
    StreamDecoder s(t);
    expect_error<ValidationError>([&] { s.push(bad); }, needles);
  }
}

TEST(Tokenizer, MalformedDataIsRejected) {
  auto base = [] {
    Vocab v;
    v.merge("a", "b");
    return v.d;
  };
  TokenizerData d = base();
  d.merges.push_back("ab");
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"merge 1", "'ab'", "two tokens"});
  d = base();
  d.merges.push_back("a zz");
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"merge 1", "'zz'", "not in the vocab"});
  d = base();
  d.merges.push_back("b a");  // "ba" was never added
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"merge 1", "makes 'ba'"});
  d = base();
  d.token_types.pop_back();
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"256 token types for 257 tokens"});
  d = base();
  d.token_types[3] = 9;
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"token 3", "unknown token type 9"});
  d = base();
  d.bos_id = 257;
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"bos_id 257", "257 tokens"});
  d = base();
  d.tokens.clear();
  d.token_types.clear();
  d.merges.clear();
  expect_error<ValidationError>([&] { Tokenizer{d}; }, {"vocabulary is empty"});
  d = base();
  d.model = "llama";
  expect_error<UnsupportedError>([&] { Tokenizer{d}; }, {"'llama'", "gpt2"});
  d = base();
  d.pre = "klingon";
  expect_error<UnsupportedError>([&] { Tokenizer{d}; }, {"'klingon'", "smollm"});
}

TEST(StreamDecoder, HoldsCharactersSplitOverTokens) {
  Vocab v;
  int32_t ctl = v.add("<|im_end|>", TokenType::Control);
  Tokenizer t = v.make();
  auto byte = [&](uint8_t b) { return t.encode(std::string(1, char(b)))[0]; };
  StreamDecoder s(t);
  // U+1F600 (F0 9F 98 80) one byte at a time.
  EXPECT_EQ(s.push(byte('h')), "h");
  EXPECT_EQ(s.push(byte(0xF0)), "");
  EXPECT_EQ(s.push(byte(0x9F)), "");
  EXPECT_EQ(s.push(byte(0x98)), "");
  EXPECT_TRUE(s.has_pending());
  EXPECT_EQ(s.push(byte(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_FALSE(s.has_pending());
  // A byte that starts nothing, and a sequence broken off by another character.
  EXPECT_EQ(s.push(byte(0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(s.push(byte(0xC3)), "");
  EXPECT_EQ(s.push(byte('x')), "\xEF\xBF\xBDx");
  // A sequence left unfinished when the stream ends.
  EXPECT_EQ(s.push(byte(0xE2)), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(s.flush(), "");
  EXPECT_EQ(s.push(ctl), "<|im_end|>");
  StreamDecoder skip(t, true);
  EXPECT_EQ(skip.push(ctl), "");
}

TEST(StreamDecoder, EqualsLossyFullDecodeOnRandomStreams) {
  Vocab v;
  v.merge("Ã", "©");  // é
  v.merge("ð", "Ł");  // F0 9F: the first half of an emoji
  v.merge("ĺ", "Ģ");  // 98 80: its second half
  Tokenizer t = v.make();
  std::random_device rd;
  const unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int i = 0; i < 300; ++i) {
    std::vector<int32_t> ids;
    size_t len = rng() % 30;
    for (size_t k = 0; k < len; ++k) ids.push_back(int32_t(rng() % uint32_t(t.vocab_size())));
    StreamDecoder s(t);
    std::string streamed;
    for (int32_t id : ids) {
      std::string piece = s.push(id);
      EXPECT_TRUE(is_valid_utf8(piece));
      streamed += piece;
    }
    streamed += s.flush();
    std::string full;
    append_valid_utf8(t.decode(ids), true, full);
    EXPECT_EQ(streamed, full);
  }
}

TEST(PreTokenizer, SplitsAsTheNamedTypeDoes) {
  PreTokenizer smollm("smollm"), gpt2("gpt2"), llama("llama3");
  using V = std::vector<std::string_view>;
  EXPECT_EQ(smollm.split("Hello world 123 it's"),
            (V{"Hello", " world", " ", "1", "2", "3", " it", "'s"}));
  EXPECT_EQ(gpt2.split("Hello world 123 it's"), (V{"Hello", " world", " 123", " it", "'s"}));
  // A whitespace run leaves its last character to what follows, which here is not a space.
  EXPECT_EQ(gpt2.split("a  b\n\nc   "), (V{"a", " ", " b", "\n", "\n", "c", "   "}));
  EXPECT_EQ(llama.split("12345 IT'S"), (V{"123", "45", " IT", "'S"}));
  EXPECT_EQ(smollm.name(), "smollm");
  EXPECT_EQ(PreTokenizer("starcoder").name(), "smollm");
  EXPECT_EQ(PreTokenizer("").name(), "default");
  EXPECT_TRUE(llama.ignore_merges());
  EXPECT_FALSE(smollm.ignore_merges());
  // Letters of other scripts are letters (\p{L}), other digits are digits (\p{N}).
  EXPECT_EQ(gpt2.split("\xCE\xB1\xCE\xB2 \xD9\xA3x"),  // "αβ ٣x"
            (V{"\xCE\xB1\xCE\xB2", " \xD9\xA3", "x"}));
  expect_error<UnsupportedError>([] { PreTokenizer("nope"); }, {"'nope'", "gpt2", "qwen2"});
}

TEST(PreTokenizer, PiecesCoverEveryByte) {
  std::mt19937 rng(11);
  for (const std::string& name : PreTokenizer::supported_names()) {
    PreTokenizer p(name);
    for (int i = 0; i < 100; ++i) {
      std::string s;
      size_t len = rng() % 80;
      for (size_t k = 0; k < len; ++k) {
        // Mostly text-like bytes, some of any value.
        static const char kText[] = "ab Z9 '\n\t.,!";
        s += rng() % 4 ? kText[rng() % (sizeof(kText) - 1)] : char(rng() % 256);
      }
      std::string joined;
      for (std::string_view piece : p.split(s)) {
        EXPECT_FALSE(piece.empty());
        joined += piece;
      }
      EXPECT_EQ(joined, s) << name;
    }
  }
}

TEST(PreTokenizer, LongRunsDoNotExhaustTheMatcher) {
  PreTokenizer p("smollm");
  std::string spaces(1 << 20, ' ');
  spaces += "x";
  std::vector<std::string_view> pieces = p.split(spaces);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].size(), size_t(1 << 20) - 1);
  EXPECT_EQ(pieces[1], " x");
  std::string letters(1 << 20, 'q');
  EXPECT_EQ(p.split(letters).size(), 1u);
}

// SmolLM2-Instruct's template, as its GGUF file carries it.
const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

TEST(ChatTemplate, ChatMLWithDefaultSystemPrompt) {
  ChatTemplate t(kSmolTemplate);
  EXPECT_EQ(t.family(), "chatml");
  EXPECT_EQ(t.default_system_prompt(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(t.end_of_turn(), "<|im_end|>");
  const std::string sys =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
      "Face<|im_end|>\n";
  EXPECT_EQ(t.apply({{"user", "Hi"}}, true),
            sys + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.apply({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}}, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello<|im_end|>\n");
  EXPECT_EQ(t.apply({}, true), "<|im_start|>assistant\n");
  EXPECT_EQ(t.apply({}, false), "");
  expect_error<ValidationError>(
      [&] {
        t.apply({{"user", "a"}, {"", "b"}}, true);
      },
      {"message 1", "empty role"});
}

TEST(ChatTemplate, PlainChatMLAndUnsupportedTemplates) {
  ChatTemplate plain(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}");
  EXPECT_EQ(plain.default_system_prompt(), "");
  EXPECT_EQ(plain.apply({{"user", "x"}}, true),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
  expect_error<UnsupportedError>([] { ChatTemplate(""); }, {"no chat template"});
  expect_error<UnsupportedError>(
      [] { ChatTemplate("{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }}"); },
      {"unsupported chat template", "[INST]", "Jinja"});
}

TEST(StopStrings, HoldsBackWhatMayStartAStop) {
  StopStrings s({"<|im_end|>", "\nUser:"});
  auto r = s.push("Hello <|im");
  EXPECT_EQ(r.text, "Hello ");
  EXPECT_FALSE(r.stopped);
  r = s.push("_e");
  EXPECT_EQ(r.text, "");
  r = s.push("x and\n");
  EXPECT_EQ(r.text, "<|im_ex and");
  r = s.push("Use");
  EXPECT_EQ(r.text, "");
  r = s.push("r: more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(s.matched(), "\nUser:");
  EXPECT_EQ(s.push("later").text, "");
  StopStrings t({"ab"});
  EXPECT_EQ(t.push("xa").text, "x");
  EXPECT_EQ(t.flush(), "a");
  StopStrings none({});
  EXPECT_EQ(none.push("anything").text, "anything");
  expect_error<ValidationError>([] { StopStrings({"a", ""}); }, {"stop string 1 is empty"});
}

}  // namespace
}  // namespace nef::llm
