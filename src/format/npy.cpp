// .npy (numpy format 1.0/2.0/3.0). The header is a Python dict literal; it is parsed by a small
// strict parser (strings, True/False, int tuples), never by anything that evaluates it.
// bfloat16 has no numpy descr: ml_dtypes writes it as '<V2', so '<V2'/'|V2' means bfloat16 here.
#include "format/npy.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "format/format_internal.h"
#include "format/mmap_file.h"
#include "nef/error.h"

namespace nef::format {
namespace {

using namespace detail;

constexpr uint8_t kNpyMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMaxNpyHeader = size_t{1} << 20;

[[noreturn]] void fail(size_t byte, const std::string& msg) {
  throw FormatError(str("[npy] byte ", byte, ": ", msg));
}

// Recursive-descent parser over the header dict; `base` is the header's offset in the file.
class HeaderParser {
 public:
  HeaderParser(const char* p, size_t n, size_t base) : p_(p), n_(n), base_(base) {}

  std::string descr;
  std::optional<bool> fortran;
  std::optional<Shape> shape;
  bool have_descr = false;

  void parse() {
    ws();
    expect('{');
    ws();
    while (peek() != '}') {
      size_t key_at = i_;
      std::string key = string_lit();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (have_descr) fail(pos(key_at), "duplicate key 'descr'");
        if (peek() != '\'' && peek() != '"')
          fail(pos(i_), "descr must be a simple type string (structured dtypes are unsupported)");
        descr = string_lit();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (fortran) fail(pos(key_at), "duplicate key 'fortran_order'");
        fortran = bool_lit();
      } else if (key == "shape") {
        if (shape) fail(pos(key_at), "duplicate key 'shape'");
        shape = tuple_lit();
      } else {
        fail(pos(key_at), str("unexpected key ", quote(key)));
      }
      ws();
      if (peek() == ',') {
        ++i_;
        ws();
      } else if (peek() != '}') {
        fail(pos(i_), "expected ',' or '}' in the header dict");
      }
    }
    ++i_;
    ws();
    if (i_ != n_) fail(pos(i_), "unexpected text after the header dict");
    if (!have_descr || !fortran || !shape)
      fail(pos(0), "header must have the keys 'descr', 'fortran_order' and 'shape'");
  }

 private:
  size_t pos(size_t i) const { return base_ + i; }
  char peek() const {
    if (i_ >= n_) fail(pos(i_), "header ends early");
    return p_[i_];
  }
  void ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(pos(i_), str("expected '", c, "'"));
    ++i_;
  }
  std::string string_lit() {
    char q = peek();
    if (q != '\'' && q != '"') fail(pos(i_), "expected a quoted string");
    size_t start = ++i_;
    while (i_ < n_ && p_[i_] != q) {
      if (p_[i_] == '\\') fail(pos(i_), "escapes are not supported in header strings");
      ++i_;
    }
    if (i_ >= n_) fail(pos(start - 1), "unterminated string");
    std::string s(p_ + start, i_ - start);
    ++i_;
    return s;
  }
  bool word(const char* w) {
    size_t len = std::strlen(w);
    if (n_ - i_ >= len && std::memcmp(p_ + i_, w, len) == 0) {
      i_ += len;
      return true;
    }
    return false;
  }
  bool bool_lit() {
    if (word("True")) return true;
    if (word("False")) return false;
    fail(pos(i_), "expected True or False");
  }
  int64_t int_lit() {
    size_t start = i_;
    if (i_ >= n_ || p_[i_] < '0' || p_[i_] > '9')
      fail(pos(i_), "expected a non-negative integer dimension");
    int64_t v = 0;
    while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') {
      v = v * 10 + (p_[i_] - '0');
      if (v > kMaxElements) fail(pos(start), "dimension too large");
      ++i_;
    }
    if (i_ < n_ && (p_[i_] == 'L' || p_[i_] == 'l')) ++i_;  // Python 2 longs
    return v;
  }
  Shape tuple_lit() {
    size_t start = i_;
    expect('(');
    Shape s;
    ws();
    while (peek() != ')') {
      s.push_back(int_lit());
      if (s.size() > size_t(kMaxRank)) fail(pos(start), str("rank above the maximum ", kMaxRank));
      ws();
      if (peek() == ',') {
        ++i_;
        ws();
      } else if (peek() != ')') {
        fail(pos(i_), "expected ',' or ')' in the shape tuple");
      }
    }
    ++i_;
    return s;
  }

  const char* p_;
  size_t n_, base_, i_ = 0;
};

struct Descr {
  DType dtype;
  bool swap;
};

std::optional<Descr> parse_descr(const std::string& d) {
  if (d.size() < 3) return std::nullopt;
  char order = d[0];
  std::string code = d.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=') return std::nullopt;
  struct Entry {
    const char* code;
    DType dtype;
  };
  static constexpr Entry kTable[] = {
      {"f4", DType::Float32}, {"f2", DType::Float16}, {"f8", DType::Float64},
      {"i1", DType::Int8},    {"u1", DType::UInt8},   {"i4", DType::Int32},
      {"i8", DType::Int64},   {"b1", DType::Bool},    {"V2", DType::BFloat16},
      {"i2", DType::Int16},   {"u2", DType::UInt16},  {"u4", DType::UInt32},
      {"u8", DType::UInt64}};
  for (const Entry& e : kTable) {
    if (code != e.code) continue;
    size_t sz = dtype_size(e.dtype);
    if (e.dtype == DType::BFloat16) {
      if (order == '>') return std::nullopt;  // a void type has no byte order to undo
      return Descr{e.dtype, false};
    }
    if (order == '|' && sz != 1) return std::nullopt;
    return Descr{e.dtype, order == '>' && sz > 1};
  }
  return std::nullopt;
}

const char* descr_of(DType t) {
  switch (t) {
    case DType::Float32:
      return "<f4";
    case DType::Float16:
      return "<f2";
    case DType::BFloat16:
      return "<V2";  // what ml_dtypes writes; see docs/format.md
    case DType::Float64:
      return "<f8";
    case DType::Int8:
      return "|i1";
    case DType::UInt8:
      return "|u1";
    case DType::Int32:
      return "<i4";
    case DType::Int64:
      return "<i8";
    case DType::Bool:
      return "|b1";
    case DType::Int16:
      return "<i2";
    case DType::UInt16:
      return "<u2";
    case DType::UInt32:
      return "<u4";
    case DType::UInt64:
      return "<u8";
    case DType::Float8E4M3FN:
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
      break;
  }
  return "?";
}

}  // namespace

Array parse_npy(const uint8_t* data, size_t size) {
  if (size < 10) fail(0, str("file is ", size, " bytes, too small for a .npy preamble"));
  if (std::memcmp(data, kNpyMagic, 6) != 0) fail(0, "bad magic (not a .npy file)");
  uint8_t major = data[6], minor = data[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    fail(6, str("unsupported format version ", int(major), ".", int(minor)));
  size_t hstart, hlen;
  if (major == 1) {
    hlen = size_t(data[8]) | (size_t(data[9]) << 8);
    hstart = 10;
  } else {
    if (size < 12) fail(8, "file ends inside the header length");
    hlen = load_le32(data + 8);
    hstart = 12;
  }
  if (hlen > kMaxNpyHeader) fail(8, str("header length ", hlen, " above the limit"));
  if (hlen > size - hstart)
    fail(8, str("header length ", hlen, " runs past the end of the ", size, "-byte file"));
  // Versions 1 and 2 are latin-1, 3 is UTF-8; a supported header is plain ASCII either way.
  for (size_t i = 0; i < hlen; ++i)
    if (data[hstart + i] >= 0x80 || (data[hstart + i] < 0x20 && data[hstart + i] != '\n' &&
                                     data[hstart + i] != '\t' && data[hstart + i] != '\r'))
      fail(hstart + i, "unexpected byte in the header");
  HeaderParser hp(reinterpret_cast<const char*>(data + hstart), hlen, hstart);
  hp.parse();
  auto descr = parse_descr(hp.descr);
  if (!descr)
    fail(hstart, str("unsupported dtype descr ", quote(hp.descr),
                     " (supported: f2 f4 f8 i1 u1 i4 i8 b1, and V2 as bfloat16)"));
  Shape shape = *hp.shape;
  int64_t n;
  try {
    n = checked_numel(shape, "npy");
  } catch (const ShapeError& e) {
    fail(hstart, e.what());
  }
  size_t itemsize = dtype_size(descr->dtype);
  size_t nbytes = size_t(n) * itemsize;
  size_t dstart = hstart + hlen;
  if (size - dstart != nbytes)
    fail(dstart, str("data is ", size - dstart, " bytes but ", shape_str(shape), " ",
                     dtype_name(descr->dtype), " needs ", nbytes));

  Array a = Array::empty(shape, descr->dtype);
  uint8_t* out = static_cast<uint8_t*>(a.data());
  if (nbytes) std::memcpy(out, data + dstart, nbytes);
  if (descr->swap)
    for (size_t i = 0; i < nbytes; i += itemsize) std::reverse(out + i, out + i + itemsize);
  // Bytes other than 0/1 in a bool array would be undefined behaviour in kernels.
  if (descr->dtype == DType::Bool)
    for (size_t i = 0; i < nbytes; ++i) out[i] = out[i] != 0;
  if (*hp.fortran) {
    // Column-major data: the same bytes viewed with Fortran strides.
    int64_t s = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      a.strides[d] = s;
      s *= shape[d];
    }
  }
  return a;
}

Array read_npy(const std::string& path) {
  std::string bytes = read_file_bytes(path);
  return parse_npy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::vector<uint8_t> serialize_npy(const Array& arr) {
  Array a = arr.contiguous();
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(a.shape[i]);
  }
  if (a.shape.size() == 1) shape += ",";
  shape += ")";
  if (is_storage_only(a.dtype))
    throw UnsupportedError(str("[npy] ", dtype_name(a.dtype), " has no .npy type descriptor"));
  std::string dict =
      str("{'descr': '", descr_of(a.dtype), "', 'fortran_order': False, 'shape': ", shape, ", }");
  // numpy pads with spaces and a final newline so the data starts 64-byte aligned.
  // Same rule as numpy (a full 64 bytes of padding when already aligned), so output is identical.
  auto padded_total = [&](size_t pre) {
    return pre + dict.size() + 1 + (64 - (pre + dict.size() + 1) % 64);
  };
  size_t pre = 10;
  size_t total = padded_total(pre);
  if (total - pre > 0xFFFF) {
    pre = 12;
    total = padded_total(pre);
  }
  dict.append(total - pre - dict.size() - 1, ' ');
  dict += '\n';
  std::vector<uint8_t> out(total + a.nbytes());
  std::memcpy(out.data(), kNpyMagic, 6);
  out[6] = pre == 10 ? 1 : 2;
  out[7] = 0;
  if (pre == 10) {
    out[8] = uint8_t(dict.size() & 0xFF);
    out[9] = uint8_t(dict.size() >> 8);
  } else {
    store_le32(out.data() + 8, uint32_t(dict.size()));
  }
  std::memcpy(out.data() + pre, dict.data(), dict.size());
  if (a.nbytes()) std::memcpy(out.data() + total, a.data(), a.nbytes());
  return out;
}

void write_npy(const std::string& path, const Array& a) {
  std::vector<uint8_t> bytes = serialize_npy(a);
  write_file_bytes(path, bytes.data(), bytes.size());
}

}  // namespace nef::format
