// GGUF reader: hand-built files (a small valid one, then every kind of damage) read through
// format::GgufFile. Every malformed file must be a FormatError naming what is wrong; the
// comparisons with the gguf Python package are in tests/python/test_gguf.py.
#include "format/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/float16.h"
#include "nef/error.h"

namespace nef {
namespace {

using format::GgufFile;
using format::GgufType;
using Bytes = std::vector<uint8_t>;

// --- a small GGUF writer for tests: encodes exactly what it is told, valid or not

template <typename T>
void put(Bytes& b, T v) {
  uint8_t tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  b.insert(b.end(), tmp, tmp + sizeof(T));
}
void put_str(Bytes& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

struct Kv {
  std::string key;
  uint32_t type;
  Bytes payload;  // the encoded value after the type
};
struct Ti {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;
  uint64_t offset;
};
struct Spec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the true counts
  std::vector<Kv> kvs;
  std::vector<Ti> tis;
  uint64_t alignment = 32;  // padding before the data (set general.alignment to match)
  Bytes data;
};

template <typename T>
Bytes enc(T v) {
  Bytes b;
  put(b, v);
  return b;
}
Bytes enc_str(std::string_view s) {
  Bytes b;
  put_str(b, s);
  return b;
}
Bytes enc_arr(GgufType elem, uint64_t count, const Bytes& items) {
  Bytes b;
  put<uint32_t>(b, uint32_t(elem));
  put<uint64_t>(b, count);
  b.insert(b.end(), items.begin(), items.end());
  return b;
}

Bytes build(const Spec& s) {
  Bytes b(s.magic.begin(), s.magic.end());
  put(b, s.version);
  put<uint64_t>(b, s.n_tensors.value_or(s.tis.size()));
  put<uint64_t>(b, s.n_kv.value_or(s.kvs.size()));
  for (const Kv& kv : s.kvs) {
    put_str(b, kv.key);
    put(b, kv.type);
    b.insert(b.end(), kv.payload.begin(), kv.payload.end());
  }
  for (const Ti& t : s.tis) {
    put_str(b, t.name);
    put<uint32_t>(b, uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) put(b, d);
    put(b, t.type);
    put(b, t.offset);
  }
  while (b.size() % s.alignment) b.push_back(0);
  b.insert(b.end(), s.data.begin(), s.data.end());
  return b;
}

constexpr uint32_t kF32 = 0, kQ8_0 = 8, kQ5_0 = 6;
constexpr uint32_t kString = 8, kArray = 9, kU32 = 4, kF32v = 6;

// Two tensors: w (f32, numpy shape [2, 3], values 1..6) and q (q8_0, [2, 32]: d = 0.5, codes
// j - 16 in row 0 and 15 - j in row 1), plus a string, an int, a float and a string array.
Spec small_spec() {
  Spec s;
  s.kvs.push_back({"general.architecture", kString, enc_str("llama")});
  s.kvs.push_back({"test.count", kU32, enc<uint32_t>(7)});
  s.kvs.push_back({"test.scale", kF32v, enc<float>(0.5f)});
  Bytes toks;
  for (const char* t : {"a", "bc", "\xc3\xbc"}) put_str(toks, t);
  s.kvs.push_back({"test.tokens", kArray, enc_arr(GgufType::String, 3, toks)});
  s.tis.push_back({"w", {3, 2}, kF32, 0});
  s.tis.push_back({"q", {32, 2}, kQ8_0, 32});
  for (int i = 1; i <= 6; ++i) put<float>(s.data, float(i));
  s.data.resize(32, 0);
  for (int r = 0; r < 2; ++r) {
    put<uint16_t>(s.data, to_float16(0.5f).bits);
    for (int j = 0; j < 32; ++j) s.data.push_back(uint8_t(int8_t(r == 0 ? j - 16 : 15 - j)));
  }
  return s;
}

GgufFile parse(const Bytes& b) { return GgufFile::parse(b.data(), b.size()); }

// Parsing must fail with a FormatError whose message contains `needle`.
void expect_format_error(const Bytes& b, const std::string& needle) {
  try {
    parse(b);
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[gguf]"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}
void expect_format_error(const Spec& s, const std::string& needle) {
  expect_format_error(build(s), needle);
}

TEST(Gguf, SmallFileReadsBack) {
  GgufFile f = parse(build(small_spec()));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  EXPECT_EQ(f.keys(), (std::vector<std::string>{"general.architecture", "test.count", "test.scale",
                                                "test.tokens"}));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("test.count"), 7u);
  EXPECT_EQ(f.get_i64("test.count"), 7);
  EXPECT_EQ(f.get_f32("test.scale"), 0.5f);
  EXPECT_EQ(f.get_f32("test.count"), 7.0f);  // integers convert to floats
  EXPECT_EQ(f.get_string_array("test.tokens"), (std::vector<std::string>{"a", "bc", "\xc3\xbc"}));
  EXPECT_TRUE(f.has("test.scale"));
  EXPECT_FALSE(f.has("test.nope"));
  EXPECT_EQ(f.find("test.nope"), nullptr);

  ASSERT_EQ(f.tensors().size(), 2u);
  const auto& w = f.tensor_info("w");
  EXPECT_EQ(w.shape, (Shape{2, 3}));
  EXPECT_EQ(w.ne, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(w.type_name, "f32");
  EXPECT_EQ(w.nbytes, 24u);
  EXPECT_TRUE(w.dtype.has_value() && *w.dtype == DType::Float32);
  Array a = f.tensor("w");
  EXPECT_EQ(a.shape, (Shape{2, 3}));
  EXPECT_EQ(a.dtype, DType::Float32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a.data_as<float>()[i], float(i + 1));

  const auto& q = f.tensor_info("q");
  EXPECT_EQ(q.shape, (Shape{2, 32}));
  EXPECT_EQ(q.type_name, "q8_0");
  ASSERT_TRUE(q.quant.has_value());
  EXPECT_EQ(*q.quant, quant::Format::Q8_0);
  EXPECT_EQ(q.nbytes, 68u);
  Array qa = f.tensor("q");
  EXPECT_EQ(qa.shape, (Shape{2, 34}));  // [rows, row_bytes]
  EXPECT_EQ(qa.dtype, DType::UInt8);
  Array dq = f.dequantize("q");
  EXPECT_EQ(dq.shape, (Shape{2, 32}));
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(dq.data_as<float>()[j], 0.5f * float(j - 16));
    EXPECT_EQ(dq.data_as<float>()[32 + j], 0.5f * float(15 - j));
  }
  Array raw = f.raw("w");
  EXPECT_EQ(raw.shape, (Shape{2, 12}));
  EXPECT_EQ(raw.dtype, DType::UInt8);
}

TEST(Gguf, TensorsAreViewsOfTheMapping) {
  std::string path = ::testing::TempDir() + "gguf_view_test.gguf";
  Bytes b = build(small_spec());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
  Array a, q;
  {
    GgufFile f = GgufFile::open(path);
    a = f.tensor("w");
    q = f.tensor("q");
    EXPECT_EQ(f.tensor("w").data(), a.data());  // the same bytes each time
    EXPECT_FALSE(a.storage->owns_host_memory());
    EXPECT_EQ(static_cast<uint8_t*>(q.data()) - static_cast<uint8_t*>(a.data()), 32);
  }
  std::filesystem::remove(path);
  // The mapping outlives the GgufFile and the file's name.
  EXPECT_EQ(a.data_as<float>()[5], 6.0f);
  EXPECT_EQ(q.data_as<int8_t>()[2], -16);
}

TEST(Gguf, EveryTruncationIsAFormatError) {
  Bytes full = build(small_spec());
  for (size_t cut = 0; cut < full.size(); ++cut) {
    Bytes b(full.begin(), full.begin() + cut);
    SCOPED_TRACE(cut);
    try {
      parse(b);
      ADD_FAILURE() << "prefix of " << cut << " bytes parsed";
    } catch (const FormatError&) {
    }
  }
  EXPECT_NO_THROW(parse(full));
}

TEST(Gguf, MagicAndVersion) {
  Spec s = small_spec();
  s.magic = "GGUX";
  expect_format_error(s, "magic");
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    s = small_spec();
    s.version = v;
    expect_format_error(s, "version");
  }
  s = small_spec();
  s.version = 0x03000000u;
  expect_format_error(s, "big-endian");
  s = small_spec();
  s.version = 2;
  EXPECT_EQ(parse(build(s)).version(), 2u);
  expect_format_error(Bytes{'G', 'G'}, "magic");
}

TEST(Gguf, ImpossibleCountsAndLengths) {
  Spec s = small_spec();
  s.n_tensors = uint64_t{1} << 62;
  expect_format_error(s, "tensor count");
  s = small_spec();
  s.n_kv = ~uint64_t{0};
  expect_format_error(s, "metadata count");
  s = small_spec();
  s.n_kv = 5;  // one more than present: the reader runs into the tensor infos
  EXPECT_THROW(parse(build(s)), FormatError);
  s = small_spec();
  s.n_tensors = 3;
  EXPECT_THROW(parse(build(s)), FormatError);

  // A string length far beyond the file, and one beyond the key limit.
  Bytes b = build(small_spec());
  Bytes huge = b;
  uint64_t len = ~uint64_t{0} >> 1;
  std::memcpy(huge.data() + 24, &len, 8);  // the first key's length
  expect_format_error(huge, "length");
  s = small_spec();
  s.kvs[0].key = std::string(70000, 'k');
  expect_format_error(s, "limit");
  s = small_spec();
  s.kvs[1] = {"test.s", kString, enc<uint64_t>(1000)};  // 1000 bytes promised, ~200 present
  expect_format_error(s, "test.s");
  // Arrays whose count cannot fit in what remains.
  s = small_spec();
  s.kvs[1] = {"test.a", kArray, enc_arr(GgufType::UInt64, uint64_t{1} << 40, {})};
  expect_format_error(s, "cannot fit");
  s = small_spec();
  s.kvs[1] = {"test.a", kArray, enc_arr(GgufType::String, ~uint64_t{0}, {})};
  expect_format_error(s, "cannot fit");
  s = small_spec();
  s.kvs[1] = {"test.a", kArray, enc_arr(GgufType::Array, uint64_t{1} << 60, {})};
  expect_format_error(s, "cannot fit");
}

TEST(Gguf, BadValueTypes) {
  Spec s = small_spec();
  s.kvs[1].type = 13;
  expect_format_error(s, "invalid value type 13");
  s = small_spec();
  s.kvs[1] = {"test.a", kArray, enc_arr(GgufType(99), 1, {0})};
  expect_format_error(s, "invalid array element type 99");
  s = small_spec();
  s.kvs[1] = {"test.b", 7, enc<uint8_t>(2)};
  expect_format_error(s, "neither 0 nor 1");
  s = small_spec();
  s.kvs[1] = {"test.b", kArray, enc_arr(GgufType::Bool, 3, {1, 0, 5})};
  expect_format_error(s, "neither 0 nor 1");
}

// `depth` arrays nested in one another, the innermost holding one uint8.
Bytes nested(int depth) {
  Bytes inner = enc_arr(GgufType::UInt8, 1, {42});
  for (int d = 1; d < depth; ++d) inner = enc_arr(GgufType::Array, 1, inner);
  return inner;
}

TEST(Gguf, ArrayNestingIsBounded) {
  Spec s = small_spec();
  s.kvs[1] = {"test.n", kArray, nested(8)};
  GgufFile f = parse(build(s));
  const format::GgufValue& v = f.value("test.n");
  const format::GgufArray* a = &v.array;
  for (int d = 1; d < 8; ++d) {
    ASSERT_EQ(a->elem_type, GgufType::Array);
    a = &a->arrays.at(0);
  }
  EXPECT_EQ(a->u, (std::vector<uint64_t>{42}));
  s.kvs[1] = {"test.n", kArray, nested(9)};
  expect_format_error(s, "nested more than 8");
}

TEST(Gguf, EveryValueTypeDecodes) {
  Spec s;
  s.kvs = {
      {"u8", 0, enc<uint8_t>(200)},
      {"i8", 1, enc<int8_t>(-100)},
      {"u16", 2, enc<uint16_t>(60000)},
      {"i16", 3, enc<int16_t>(-30000)},
      {"u32", 4, enc<uint32_t>(4000000000u)},
      {"i32", 5, enc<int32_t>(-2000000000)},
      {"f32", 6, enc<float>(-1.25f)},
      {"bool", 7, enc<uint8_t>(1)},
      {"str", 8, enc_str("")},
      {"u64", 10, enc<uint64_t>(~uint64_t{0})},
      {"i64", 11, enc<int64_t>(INT64_MIN)},
      {"f64", 12, enc<double>(1e300)},
      {"empty", kArray, enc_arr(GgufType::Int32, 0, {})},
      {"ints", kArray, enc_arr(GgufType::Int16, 2, {0xff, 0xff, 2, 0})},
      {"floats", kArray, enc_arr(GgufType::Float32, 1, enc<float>(0.25f))},
  };
  GgufFile f = parse(build(s));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.value("u8").u, 200u);
  EXPECT_EQ(f.value("i8").i, -100);
  EXPECT_EQ(f.value("u16").u, 60000u);
  EXPECT_EQ(f.value("i16").i, -30000);
  EXPECT_EQ(f.get_u32("u32"), 4000000000u);
  EXPECT_EQ(f.get_i64("i32"), -2000000000);
  EXPECT_EQ(f.get_f32("f32"), -1.25f);
  EXPECT_TRUE(f.get_bool("bool"));
  EXPECT_EQ(f.get_string("str"), "");
  EXPECT_EQ(f.get_u64("u64"), ~uint64_t{0});
  EXPECT_EQ(f.get_i64("i64"), INT64_MIN);
  EXPECT_EQ(f.get_f64("f64"), 1e300);
  EXPECT_TRUE(f.get_int_array("empty").empty());
  EXPECT_EQ(f.get_int_array("ints"), (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ(f.get_float_array("floats"), (std::vector<float>{0.25f}));
  EXPECT_EQ(f.get_float_array("ints"), (std::vector<float>{-1.0f, 2.0f}));
  EXPECT_EQ(f.value("i16").type, GgufType::Int16);
}

void expect_accessor_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

TEST(Gguf, TypedAccessorsNameKeyAndTypes) {
  Spec s;
  s.kvs = {{"name", kString, enc_str("x")},
           {"big", 10, enc<uint64_t>(uint64_t{1} << 40)},
           {"neg", 5, enc<int32_t>(-1)},
           {"huge", 10, enc<uint64_t>(uint64_t{1} << 63)},
           {"ints", kArray, enc_arr(GgufType::UInt64, 1, enc<uint64_t>(~uint64_t{0}))}};
  GgufFile f = parse(build(s));
  expect_accessor_error([&] { f.get_u32("name"); }, {"'name'", "uint32", "string"});
  expect_accessor_error([&] { f.get_u32("big"); }, {"'big'", "uint32", "1099511627776"});
  expect_accessor_error([&] { f.get_u64("neg"); }, {"'neg'", "uint64", "-1"});
  expect_accessor_error([&] { f.get_i64("huge"); }, {"'huge'", "int64"});
  expect_accessor_error([&] { f.get_string("big"); }, {"'big'", "a string", "uint64"});
  expect_accessor_error([&] { f.get_bool("neg"); }, {"'neg'", "bool", "int32"});
  expect_accessor_error([&] { f.get_f32("name"); }, {"'name'", "number", "string"});
  expect_accessor_error([&] { f.get_string_array("ints"); },
                        {"'ints'", "array of strings", "array of uint64"});
  expect_accessor_error([&] { f.get_int_array("ints"); }, {"'ints'", "int64"});
  expect_accessor_error([&] { f.get_int_array("name"); }, {"'name'", "array of integers"});
  expect_accessor_error([&] { f.get_u32("missing"); }, {"no metadata key 'missing'"});
  expect_accessor_error([&] { f.tensor("missing"); }, {"no tensor 'missing'"});
  EXPECT_EQ(f.get_i64("neg"), -1);
  EXPECT_EQ(f.get_u64("big"), uint64_t{1} << 40);
}

TEST(Gguf, TensorDimsAndTypes) {
  Spec s = small_spec();
  s.tis[0].ne = {3, 2, 1, 1, 1};
  expect_format_error(s, "5 dimensions");
  s = small_spec();
  s.tis[0].ne = {3, 0};
  expect_format_error(s, "dimension 1 is 0");
  s = small_spec();
  s.tis[0].ne = {uint64_t{1} << 30, uint64_t{1} << 30};
  expect_format_error(s, "elements");
  s = small_spec();
  s.tis[0].ne = {~uint64_t{0}};
  expect_format_error(s, "dimension 0");
  s = small_spec();
  s.tis[1].ne = {33, 2};
  expect_format_error(s, "not a multiple of the block size 32");
  for (uint32_t t : {4u, 5u, 31u, 99u, 0xffffffffu}) {
    s = small_spec();
    s.tis[0].type = t;
    expect_format_error(s, str("unknown ggml type id ", t));
  }
}

TEST(Gguf, OffsetsAndOverlaps) {
  Spec s = small_spec();
  s.tis[1].offset = 36;
  expect_format_error(s, "not a multiple of the alignment 32");
  s = small_spec();
  s.tis[1].offset = 64;
  expect_format_error(s, "past the end");
  s = small_spec();
  s.tis[1].offset = ~uint64_t{0} - 31;  // aligned, and offset + nbytes wraps around
  expect_format_error(s, "past the end");
  s = small_spec();
  s.tis[0].ne = {16, 2};  // 128 bytes at 0 reaches into q at 32
  s.data.resize(128 + 68);
  s.tis[1].offset = 96;
  expect_format_error(s, "overlap");
  s = small_spec();
  s.tis[1].offset = 0;  // both at 0
  expect_format_error(s, "overlap");
  // Tensors listed out of file order are fine when they do not overlap.
  s = small_spec();
  std::swap(s.tis[0], s.tis[1]);
  GgufFile f = parse(build(s));
  EXPECT_EQ(f.tensors()[0].name, "q");
  EXPECT_EQ(f.dequantize("w").data_as<float>()[2], 3.0f);
}

TEST(Gguf, DuplicatesAndEmptyNames) {
  Spec s = small_spec();
  s.kvs[2].key = "test.count";
  expect_format_error(s, "duplicate metadata key 'test.count'");
  s = small_spec();
  s.tis[1].name = "w";
  expect_format_error(s, "duplicate tensor name 'w'");
  s = small_spec();
  s.kvs[1].key = "";
  expect_format_error(s, "empty metadata key");
  s = small_spec();
  s.tis[0].name = "";
  expect_format_error(s, "empty tensor name");
}

TEST(Gguf, InvalidUtf8) {
  for (std::string bad : {std::string("\xff"), std::string("a\xc3"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf")}) {
    Spec s = small_spec();
    s.kvs[1].key = "k" + bad;
    expect_format_error(s, "UTF-8");
    s = small_spec();
    s.kvs[0].payload = enc_str(bad);
    expect_format_error(s, "UTF-8");
    s = small_spec();
    s.tis[0].name = bad;
    expect_format_error(s, "UTF-8");
    s = small_spec();
    Bytes toks;
    put_str(toks, "ok");
    put_str(toks, bad);
    s.kvs[3].payload = enc_arr(GgufType::String, 2, toks);
    expect_format_error(s, "UTF-8");
  }
}

TEST(Gguf, Alignment) {
  for (uint32_t a : {0u, 1u, 4u, 48u, 1u << 31}) {
    Spec s = small_spec();
    s.kvs.push_back({"general.alignment", kU32, enc<uint32_t>(a)});
    expect_format_error(s, "general.alignment");
  }
  Spec s = small_spec();
  s.kvs.push_back({"general.alignment", kString, enc_str("64")});
  expect_format_error(s, "general.alignment must be an integer");
  // 64: the data section and offsets follow it.
  s = small_spec();
  s.kvs.push_back({"general.alignment", kU32, enc<uint32_t>(64)});
  s.alignment = 64;
  s.tis[1].offset = 64;
  s.data.insert(s.data.begin() + 32, 32, 0);
  GgufFile f = parse(build(s));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.dequantize("q").data_as<float>()[0], -8.0f);
  s.tis[1].offset = 32;  // a multiple of 32 only
  expect_format_error(s, "alignment 64");
}

TEST(Gguf, UnsupportedTypesAreListed) {
  Spec s = small_spec();
  s.tis[1].type = kQ5_0;  // 22 bytes per 32: 44 bytes, within the data
  GgufFile f = parse(build(s));
  const auto& q = f.tensor_info("q");
  EXPECT_EQ(q.type_name, "q5_0");
  EXPECT_FALSE(q.supported());
  EXPECT_EQ(q.nbytes, 44u);
  EXPECT_EQ(f.raw("q").shape, (Shape{2, 22}));
  try {
    f.tensor("q");
    ADD_FAILURE() << "no error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("q5_0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.dequantize("q"), UnsupportedError);
}

TEST(Gguf, FileWithoutTensorsMayEndAfterItsHeader) {
  Spec s;
  s.kvs = {{"general.architecture", kString, enc_str("x")}};
  s.alignment = 1;  // no padding after the header
  EXPECT_EQ(parse(build(s)).keys().size(), 1u);
}

TEST(Gguf, OpenReportsIoErrors) {
  try {
    GgufFile::open("/nonexistent-dir/x.gguf");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.gguf"), std::string::npos);
  }
}

std::string corpus(const std::string& name) {
  return std::string(NEF_SOURCE_DIR) + "/fuzz/corpus/gguf/" + name;
}

// The fuzz seeds come from fuzz/make_corpus.py's own GGUF writer (the gguf package reads them
// too): a second, independent encoder of the format.
TEST(Gguf, CorpusSeeds) {
  GgufFile f = GgufFile::open(corpus("valid_all_types.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_i64("t.i64"), -(int64_t{1} << 40));
  EXPECT_EQ(f.get_string_array("t.tokens"), (std::vector<std::string>{"a", "\xc3\xbc", ""}));
  EXPECT_EQ(f.get_float_array("t.scores"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(f.value("t.nested").array.arrays.size(), 2u);
  EXPECT_EQ(f.tensors().size(), 14u);
  auto values = [&](const char* name) {
    Array a = f.dequantize(name);
    return std::vector<float>(a.data_as<float>(), a.data_as<float>() + a.numel());
  };
  EXPECT_EQ(values("f32"), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(values("f16"), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(values("bf16"), (std::vector<float>{0.5f, 2.0f, -2.0f, 1.0f}));
  EXPECT_EQ(values("f64"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f.tensor("i8").data_as<int8_t>()[2], -1);
  EXPECT_THROW(f.dequantize("i32"), TypeError);
  for (const char* q : {"q4_0", "q4_1", "q8_0", "q4_k", "q5_k", "q6_k"}) {
    const auto& t = f.tensor_info(q);
    EXPECT_EQ(t.type_name, q);
    EXPECT_TRUE(t.quant.has_value());
    EXPECT_EQ(f.dequantize(q).numel(), numel(t.shape));
  }
  EXPECT_FALSE(f.tensor_info("q5_0").supported());
  EXPECT_EQ(GgufFile::open(corpus("valid_v2_small.gguf")).version(), 2u);
  EXPECT_EQ(GgufFile::open(corpus("valid_align64.gguf")).alignment(), 64u);
  EXPECT_TRUE(GgufFile::open(corpus("valid_metadata_only.gguf")).tensors().empty());
  EXPECT_THROW(GgufFile::open(corpus("bad_truncated.gguf")), FormatError);
  EXPECT_THROW(GgufFile::open(corpus("bad_overlap.gguf")), FormatError);
}

}  // namespace
}  // namespace nef
