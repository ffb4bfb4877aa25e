// .npy: round trips of every dtype (rank 0, zero-size, odd shapes), files written by numpy
// itself (fuzz/corpus/npy, made by fuzz/make_corpus.py: versions 1-3, big-endian, Fortran order,
// ml_dtypes bfloat16), byte-identical output to np.save, and malformed headers.
#include "format/npy.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "format_test_util.h"
#include "nef/error.h"

namespace nef {
namespace {

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

std::string corpus(const std::string& name) {
  return std::string(NEF_SOURCE_DIR) + "/fuzz/corpus/npy/" + name;
}

void expect_format_error(const std::vector<uint8_t>& b, const std::string& needle = "byte ") {
  try {
    format::parse_npy(b.data(), b.size());
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception: " << e.what();
  }
}

// Element i of a (possibly strided) array as raw bytes.
std::vector<uint8_t> element_bytes(const Array& a, int64_t flat) {
  int64_t off = 0;
  for (int d = a.rank() - 1; d >= 0; --d) {
    off += (flat % a.shape[d]) * a.strides[d];
    flat /= a.shape[d];
  }
  size_t sz = dtype_size(a.dtype);
  auto* p = static_cast<const uint8_t*>(a.data()) + off * int64_t(sz);
  return std::vector<uint8_t>(p, p + sz);
}

TEST(Npy, RoundTripEveryDtypeAndShape) {
  std::mt19937_64 rng(99);
  std::printf("seed 99\n");
  const DType dts[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                       DType::Int8,    DType::UInt8,   DType::Int16,    DType::UInt16,
                       DType::Int32,   DType::UInt32,  DType::Int64,    DType::UInt64,
                       DType::Bool};
  const Shape shapes[] = {{}, {0}, {1}, {7}, {3, 5}, {2, 0, 3}, {1, 1, 1, 1}, {2, 3, 5, 7}};
  for (DType dt : dts)
    for (const Shape& s : shapes) {
      SCOPED_TRACE(str(dtype_name(dt), " ", shape_str(s)));
      Array a = test::random_bytes_array(s, dt, rng);
      std::vector<uint8_t> b = format::serialize_npy(a);
      EXPECT_EQ((b.size() - a.nbytes()) % 64, 0u);
      Array back = format::parse_npy(b.data(), b.size());
      EXPECT_TRUE(test::same_bytes(a, back));
    }
}

TEST(Npy, FileRoundTripAndStridedInput) {
  Array a = Array::empty({3, 2}, DType::Int32);
  for (int i = 0; i < 6; ++i) a.data_as<int32_t>()[i] = i * 7 - 3;
  Array t = a;
  t.shape = {2, 3};
  t.strides = {1, 2};
  std::string path = testing::TempDir() + "/nef_npy_" + std::to_string(::getpid()) + ".npy";
  format::write_npy(path, t);
  Array back = format::read_npy(path);
  ASSERT_EQ(back.shape, (Shape{2, 3}));
  EXPECT_TRUE(test::same_bytes(t, back));
  std::filesystem::remove(path);
  EXPECT_THROW(format::read_npy(path), Error);
}

// Files written by numpy: values are arange(n) cast to the dtype, so element i must equal i.
TEST(Npy, ReadsWhatNumpyWrites) {
  if (!std::filesystem::exists(corpus("f4_2x3_v1.npy"))) GTEST_SKIP() << "no corpus";
  struct Case {
    const char* file;
    DType dt;
    Shape shape;
  };
  const Case cases[] = {
      {"f4_2x3_v1.npy", DType::Float32, {2, 3}},
      {"f4_be_2x3.npy", DType::Float32, {2, 3}},
      {"f8_be_5.npy", DType::Float64, {5}},
      {"i8_be_4.npy", DType::Int64, {4}},
      {"i4_fortran_3x4.npy", DType::Int32, {3, 4}},
      {"f2_fortran_be_2x3x2.npy", DType::Float16, {2, 3, 2}},
      {"f4_v2.npy", DType::Float32, {3, 2}},
      {"f4_v3.npy", DType::Float32, {3, 2}},
      {"u1_7.npy", DType::UInt8, {7}},
      {"i1_2x2.npy", DType::Int8, {2, 2}},
      {"b1_5.npy", DType::Bool, {5}},
      {"bf16_2x3.npy", DType::BFloat16, {2, 3}},
      {"f4_scalar.npy", DType::Float32, {}},
      {"f4_empty_0x3.npy", DType::Float32, {0, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    Array a = format::read_npy(corpus(c.file));
    ASSERT_EQ(a.dtype, c.dt);
    ASSERT_EQ(a.shape, c.shape);
    for (int64_t i = 0; i < a.numel(); ++i) {
      std::vector<uint8_t> e = element_bytes(a, i);
      double v = 0;
      switch (c.dt) {
        case DType::Float32: {
          float f;
          std::memcpy(&f, e.data(), 4);
          v = f;
          break;
        }
        case DType::Float64:
          std::memcpy(&v, e.data(), 8);
          break;
        case DType::Int64: {
          int64_t x;
          std::memcpy(&x, e.data(), 8);
          v = double(x);
          break;
        }
        case DType::Int32: {
          int32_t x;
          std::memcpy(&x, e.data(), 4);
          v = x;
          break;
        }
        case DType::UInt8:
          v = e[0];
          break;
        case DType::Int8:
          v = int8_t(e[0]);
          break;
        case DType::Bool:
          v = e[0];
          break;
        case DType::Float16: {
          // Small integers in IEEE half: exponent and mantissa decode by hand.
          uint16_t h = uint16_t(e[0] | (e[1] << 8));
          int ex = (h >> 10) & 31, m = h & 1023;
          v = ex == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, ex - 25);
          break;
        }
        case DType::BFloat16: {
          uint32_t bits = uint32_t(e[0] | (e[1] << 8)) << 16;
          float f;
          std::memcpy(&f, &bits, 4);
          v = f;
          break;
        }
      }
      double want = c.dt == DType::Bool ? double(i % 2) : double(i);
      EXPECT_EQ(v, want) << "element " << i;
    }
  }
}

TEST(Npy, WritesWhatNumpyWrites) {
  if (!std::filesystem::exists(corpus("f4_2x3_v1.npy"))) GTEST_SKIP() << "no corpus";
  for (const char* f : {"f4_2x3_v1.npy", "u1_7.npy", "i1_2x2.npy", "b1_5.npy", "bf16_2x3.npy",
                        "f4_scalar.npy", "f4_empty_0x3.npy"}) {
    SCOPED_TRACE(f);
    std::vector<uint8_t> np = file_bytes(corpus(f));
    Array a = format::parse_npy(np.data(), np.size());
    EXPECT_EQ(format::serialize_npy(a), np);
  }
}

TEST(Npy, FortranOrderIsAStridedView) {
  // Hand-made: shape (2, 3) int32, column-major data 0..5 means a[i][j] = i + 2j.
  std::string dict = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
  dict.append(128 - 10 - dict.size() - 1, ' ');
  dict += '\n';
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size()), 0};
  b.insert(b.end(), dict.begin(), dict.end());
  for (int32_t v = 0; v < 6; ++v)
    for (int k = 0; k < 4; ++k) b.push_back(uint8_t(v >> (8 * k)));
  Array a = format::parse_npy(b.data(), b.size());
  EXPECT_EQ(a.strides, (Strides{1, 2}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<uint8_t> e = element_bytes(a, i * 3 + j);
      EXPECT_EQ(e[0], i + 2 * j);
    }
  // Writing gives C order.
  std::vector<uint8_t> out = format::serialize_npy(a);
  Array c = format::parse_npy(out.data(), out.size());
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_TRUE(test::same_bytes(a, c));
}

std::vector<uint8_t> npy_with_header(const std::string& dict, size_t data_bytes, int major = 1) {
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
  if (major == 1) {
    b.push_back(uint8_t(dict.size()));
    b.push_back(uint8_t(dict.size() >> 8));
  } else {
    for (int k = 0; k < 4; ++k) b.push_back(uint8_t(dict.size() >> (8 * k)));
  }
  b.insert(b.end(), dict.begin(), dict.end());
  b.resize(b.size() + data_bytes, 1);
  return b;
}

TEST(Npy, AcceptedHeaderVariants) {
  for (const char* d : {"{'descr':'<f4','fortran_order':False,'shape':(2,)}",
                        "{\"descr\": \"<f4\", \"shape\": (2,), \"fortran_order\": False}\n",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }   \n",
                        "{'descr': '=f4', 'fortran_order': False, 'shape': (1, 2), }"}) {
    SCOPED_TRACE(d);
    std::vector<uint8_t> b = npy_with_header(d, 8);
    EXPECT_NO_THROW(format::parse_npy(b.data(), b.size()));
  }
  // Bool bytes other than 0/1 are normalized, never passed on.
  std::vector<uint8_t> b =
      npy_with_header("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 3);
  b[b.size() - 1] = 7;
  Array a = format::parse_npy(b.data(), b.size());
  EXPECT_EQ(static_cast<uint8_t*>(a.data())[2], 1);
}

TEST(Npy, Malformed) {
  std::vector<uint8_t> good =
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  ASSERT_NO_THROW(format::parse_npy(good.data(), good.size()));
  for (size_t cut = 0; cut < good.size(); ++cut) {
    SCOPED_TRACE(cut);
    expect_format_error(std::vector<uint8_t>(good.begin(), good.begin() + cut));
  }
  std::vector<uint8_t> bad = good;
  bad[1] = 'X';
  expect_format_error(bad, "magic");
  bad = good;
  bad[6] = 4;
  expect_format_error(bad, "version");
  bad = good;
  bad[8] = 0xFF;
  expect_format_error(bad, "byte 8");
  std::vector<uint8_t> huge = npy_with_header("{}", 0, 2);
  format::detail::store_le32(huge.data() + 8, 0xFFFFFFFFu);
  expect_format_error(huge, "byte 8");
  const char* headers[] = {
      "",
      "{",
      "{'descr': '<f4', 'fortran_order': False}",                           // missing shape
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}",  // extra key
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '>V2', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
      "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} extra",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\xff",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\x01",
  };
  for (const char* h : headers) {
    SCOPED_TRACE(h);
    expect_format_error(npy_with_header(h, 24));
  }
  // Data size must match the shape exactly.
  expect_format_error(
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 23), "needs 24");
  expect_format_error(
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 25), "needs 24");
  // Version 2 needs a 4-byte header length.
  expect_format_error(std::vector<uint8_t>{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 1, 0, 0}, "byte 8");
}

TEST(Npy, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(5);
  std::printf("seed 5\n");
  Array a = test::random_bytes_array({3, 4}, DType::Float64, rng);
  std::vector<uint8_t> b = format::serialize_npy(a);
  for (int it = 0; it < 5000; ++it) {
    std::vector<uint8_t> c = b;
    int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) c[rng() % 70] = uint8_t(rng());
    try {
      format::parse_npy(c.data(), c.size());
    } catch (const FormatError&) {
    }
  }
}

}  // namespace
}  // namespace nef
