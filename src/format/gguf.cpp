// GGUF parsing: header, metadata, tensor infos, data-section layout. Every read is bounds
// checked against the file and every count against the bytes that remain before anything is
// allocated, so a hostile file costs at most a small multiple of its own size.
#include "format/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "format/format_internal.h"
#include "format/mmap_file.h"
#include "nef/error.h"

namespace nef::format {
namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint64_t kDefaultAlignment = 32;
// Limits beyond the file's own size: far above any published model, low enough that a hostile
// header cannot make the reader loop or allocate for long.
constexpr uint64_t kMaxKeys = 1 << 16;
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint64_t kMaxKeyBytes = 65535;       // the GGUF spec's bound
constexpr uint64_t kMaxNameBytes = 4096;       // tensor names (ggml itself keeps 64)
constexpr uint64_t kMaxStringBytes = 1 << 28;  // metadata string values
constexpr int kMaxArrayDepth = 8;              // arrays of arrays of ...
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxAlignment = 1 << 30;

// Smallest encoding of one element of each value type (strings: the length; arrays: the element
// type and the count), so a count can be checked against the bytes left before reading.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::UInt8:
    case GgufType::Int8:
    case GgufType::Bool:
      return 1;
    case GgufType::UInt16:
    case GgufType::Int16:
      return 2;
    case GgufType::UInt32:
    case GgufType::Int32:
    case GgufType::Float32:
      return 4;
    case GgufType::UInt64:
    case GgufType::Int64:
    case GgufType::Float64:
    case GgufType::String:
      return 8;
    case GgufType::Array:
      return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::Float64); }

bool is_unsigned_type(GgufType t) {
  return t == GgufType::UInt8 || t == GgufType::UInt16 || t == GgufType::UInt32 ||
         t == GgufType::UInt64 || t == GgufType::Bool;
}
bool is_signed_type(GgufType t) {
  return t == GgufType::Int8 || t == GgufType::Int16 || t == GgufType::Int32 ||
         t == GgufType::Int64;
}

std::optional<DType> plain_dtype(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0:
      return DType::Float32;
    case 1:
      return DType::Float16;
    case 24:
      return DType::Int8;
    case 25:
      return DType::Int16;
    case 26:
      return DType::Int32;
    case 27:
      return DType::Int64;
    case 28:
      return DType::Float64;
    case 30:
      return DType::BFloat16;
    default:
      return std::nullopt;
  }
}

}  // namespace

// Reads one file front to back; `fail` names the source and the byte offset.
class GgufParser {
 public:
  GgufParser(const uint8_t* p, size_t n, const std::string& source)
      : p_(p), n_(n), source_(source) {}

  [[noreturn]] void fail(uint64_t at, const std::string& msg) const {
    throw FormatError(str("[gguf] ", source_, ": ", msg, " (at byte ", at, ")"));
  }

  void parse(GgufFile& f) {
    header(f);
    for (uint64_t k = 0; k < n_kv_; ++k) key_value(f);
    alignment(f);
    for (uint64_t t = 0; t < n_tensors_; ++t) tensor_info(f);
    data_layout(f);
  }

 private:
  uint64_t remaining() const { return n_ - pos_; }

  void need(uint64_t bytes, const std::string& what) const {
    if (bytes > remaining())
      fail(pos_, str(what, " needs ", bytes, " bytes but the file ends ", remaining(),
                     " bytes later (truncated?)"));
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A length-prefixed string: bounded, within the file, UTF-8.
  std::string string(const std::string& what, uint64_t max_len) {
    uint64_t at = pos_;
    uint64_t len = read<uint64_t>(what + " length");
    if (len > max_len) fail(at, str(what, " has length ", len, ", above the limit of ", max_len));
    need(len, what);
    size_t bad = detail::find_invalid_utf8(p_ + pos_, size_t(len));
    if (bad != SIZE_MAX) fail(pos_ + bad, str(what, " is not valid UTF-8"));
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += len;
    return s;
  }

  void header(GgufFile& f) {
    need(4, "the magic");
    if (std::memcmp(p_, kMagic, 4) != 0) fail(0, "not a GGUF file (the magic is not 'GGUF')");
    pos_ = 4;
    uint32_t v = read<uint32_t>("the version");
    if (v == 0x02000000u || v == 0x03000000u)
      fail(4, "big-endian GGUF files are not supported (NEF reads little-endian GGUF)");
    if (v == 1) fail(4, "GGUF version 1 is not supported (NEF reads versions 2 and 3)");
    if (v != 2 && v != 3) fail(4, str("unknown GGUF version ", v, " (NEF reads versions 2 and 3)"));
    f.version_ = v;
    uint64_t at = pos_;
    n_tensors_ = read<uint64_t>("the tensor count");
    n_kv_ = read<uint64_t>("the metadata count");
    // Each entry takes at least a few bytes, so the counts cannot exceed what the file holds.
    if (n_tensors_ > kMaxTensors || n_tensors_ > remaining() / 24)
      fail(at, str("tensor count ", n_tensors_, " is impossible for a file of ", n_,
                   " bytes (limit ", kMaxTensors, ")"));
    if (n_kv_ > kMaxKeys || n_kv_ > remaining() / 13)
      fail(at + 8, str("metadata count ", n_kv_, " is impossible for a file of ", n_,
                       " bytes (limit ", kMaxKeys, ")"));
  }

  void key_value(GgufFile& f) {
    uint64_t at = pos_;
    std::string key = string("metadata key", kMaxKeyBytes);
    if (key.empty()) fail(at, "empty metadata key");
    if (f.key_index_.count(key)) fail(at, str("duplicate metadata key ", detail::quote(key)));
    uint64_t type_at = pos_;
    uint32_t t = read<uint32_t>(str("the type of metadata ", detail::quote(key)));
    if (!valid_type(t))
      fail(type_at, str("metadata ", detail::quote(key), " has invalid value type ", t));
    GgufValue v = value(GgufType(t), key);
    f.key_index_.emplace(key, f.keys_.size());
    f.keys_.push_back(std::move(key));
    f.values_.push_back(std::move(v));
  }

  GgufValue value(GgufType t, const std::string& key) {
    GgufValue v;
    v.type = t;
    std::string what = str("metadata ", detail::quote(key));
    switch (t) {
      case GgufType::UInt8:
        v.u = read<uint8_t>(what);
        break;
      case GgufType::UInt16:
        v.u = read<uint16_t>(what);
        break;
      case GgufType::UInt32:
        v.u = read<uint32_t>(what);
        break;
      case GgufType::UInt64:
        v.u = read<uint64_t>(what);
        break;
      case GgufType::Int8:
        v.i = read<int8_t>(what);
        break;
      case GgufType::Int16:
        v.i = read<int16_t>(what);
        break;
      case GgufType::Int32:
        v.i = read<int32_t>(what);
        break;
      case GgufType::Int64:
        v.i = read<int64_t>(what);
        break;
      case GgufType::Float32:
        v.f = read<float>(what);
        break;
      case GgufType::Float64:
        v.f = read<double>(what);
        break;
      case GgufType::Bool:
        v.u = boolean(what);
        break;
      case GgufType::String:
        v.s = string(what, kMaxStringBytes);
        break;
      case GgufType::Array:
        v.array = array(key, 1);
        break;
    }
    return v;
  }

  uint64_t boolean(const std::string& what) {
    uint64_t at = pos_;
    uint8_t b = read<uint8_t>(what);
    if (b > 1) fail(at, str(what, ": bool byte ", int(b), " is neither 0 nor 1"));
    return b;
  }

  GgufArray array(const std::string& key, int depth) {
    uint64_t at = pos_;
    std::string what = str("metadata ", detail::quote(key));
    if (depth > kMaxArrayDepth)
      fail(at, str(what, ": arrays nested more than ", kMaxArrayDepth, " deep"));
    uint32_t t = read<uint32_t>(what + " array type");
    if (!valid_type(t)) fail(at, str(what, ": invalid array element type ", t));
    uint64_t count = read<uint64_t>(what + " array length");
    GgufArray a;
    a.elem_type = GgufType(t);
    if (count > remaining() / min_encoded_size(a.elem_type))
      fail(at + 4, str(what, ": array of ", count, " ", gguf_type_name(a.elem_type),
                       " elements cannot fit in the ", remaining(), " bytes left"));
    auto n = size_t(count);
    switch (a.elem_type) {
      case GgufType::UInt8:
        read_ints<uint8_t>(a.u, n, what);
        break;
      case GgufType::UInt16:
        read_ints<uint16_t>(a.u, n, what);
        break;
      case GgufType::UInt32:
        read_ints<uint32_t>(a.u, n, what);
        break;
      case GgufType::UInt64:
        read_ints<uint64_t>(a.u, n, what);
        break;
      case GgufType::Int8:
        read_ints<int8_t>(a.i, n, what);
        break;
      case GgufType::Int16:
        read_ints<int16_t>(a.i, n, what);
        break;
      case GgufType::Int32:
        read_ints<int32_t>(a.i, n, what);
        break;
      case GgufType::Int64:
        read_ints<int64_t>(a.i, n, what);
        break;
      case GgufType::Float32:
        read_ints<float>(a.f, n, what);
        break;
      case GgufType::Float64:
        read_ints<double>(a.f, n, what);
        break;
      case GgufType::Bool:
        a.u.reserve(n);
        for (size_t j = 0; j < n; ++j) a.u.push_back(boolean(what));
        break;
      case GgufType::String:
        a.s.reserve(n);
        for (size_t j = 0; j < n; ++j) a.s.push_back(string(what, kMaxStringBytes));
        break;
      case GgufType::Array:
        a.arrays.reserve(n);
        for (size_t j = 0; j < n; ++j) a.arrays.push_back(array(key, depth + 1));
        break;
    }
    return a;
  }

  // Fixed-size elements (the count was checked against the bytes left, so need() cannot fail).
  template <typename T, typename V>
  void read_ints(std::vector<V>& out, size_t n, const std::string& what) {
    need(uint64_t(n) * sizeof(T), what);
    out.resize(n);
    for (size_t j = 0; j < n; ++j) {
      T v;
      std::memcpy(&v, p_ + pos_ + j * sizeof(T), sizeof(T));
      out[j] = V(v);
    }
    pos_ += n * sizeof(T);
  }

  void alignment(GgufFile& f) {
    const GgufValue* v = f.find("general.alignment");
    f.alignment_ = kDefaultAlignment;
    if (!v) return;
    uint64_t a;
    if (v->type == GgufType::Bool || !(is_unsigned_type(v->type) || is_signed_type(v->type)))
      fail(pos_, str("general.alignment must be an integer, got ", gguf_type_name(v->type)));
    if (is_signed_type(v->type) && v->i <= 0) fail(pos_, str("general.alignment is ", v->i));
    a = is_signed_type(v->type) ? uint64_t(v->i) : v->u;
    // The spec asks for a multiple of 8; a power of two keeps every offset computable.
    if (a < 8 || a > kMaxAlignment || (a & (a - 1)) != 0)
      fail(pos_,
           str("general.alignment ", a, " is not a power of two between 8 and ", kMaxAlignment));
    f.alignment_ = a;
  }

  void tensor_info(GgufFile& f) {
    uint64_t at = pos_;
    GgufTensorInfo t;
    t.name = string("tensor name", kMaxNameBytes);
    if (t.name.empty()) fail(at, "empty tensor name");
    if (f.tensor_index_.count(t.name))
      fail(at, str("duplicate tensor name ", detail::quote(t.name)));
    std::string what = str("tensor ", detail::quote(t.name));
    uint64_t dims_at = pos_;
    uint32_t n_dims = read<uint32_t>(what + " rank");
    if (n_dims > kMaxDims)
      fail(dims_at, str(what, " has ", n_dims, " dimensions (GGUF allows at most ", kMaxDims, ")"));
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim_at = pos_;
      uint64_t ne = read<uint64_t>(what + " dimension");
      if (ne == 0 || ne > uint64_t(kMaxElements))
        fail(dim_at, str(what, " dimension ", d, " is ", ne, " (must be 1 to ", kMaxElements, ")"));
      if (__builtin_mul_overflow(numel, int64_t(ne), &numel) || numel > kMaxElements)
        fail(dim_at, str(what, " has more than ", kMaxElements, " elements"));
      t.ne.push_back(int64_t(ne));
    }
    uint64_t type_at = pos_;
    t.ggml_type = read<uint32_t>(what + " type");
    const GgmlTypeInfo* ti = ggml_type_info(t.ggml_type);
    if (!ti) fail(type_at, str(what, " has unknown ggml type id ", t.ggml_type));
    t.type_name = ti->name;
    int64_t row = t.ne.empty() ? 1 : t.ne[0];
    if (row % ti->block_elems != 0)
      fail(type_at, str(what, " of type ", ti->name, " has rows of ", row,
                        " elements, not a multiple of the block size ", ti->block_elems));
    // numel <= 2^48 and block_bytes / block_elems <= 8, so this cannot overflow.
    t.nbytes = uint64_t(numel / ti->block_elems * ti->block_bytes);
    t.offset = read<uint64_t>(what + " offset");
    t.shape.assign(t.ne.rbegin(), t.ne.rend());
    t.quant = quant::format_from_ggml(t.ggml_type);
    t.dtype = plain_dtype(t.ggml_type);
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  void data_layout(GgufFile& f) {
    uint64_t start = detail::align_up(pos_, f.alignment_);
    f.data_offset_ = start;
    if (f.tensors_.empty()) return;  // a file without tensors may end right after its header
    if (start > n_)
      fail(pos_, str("the data section would start at byte ", start, ", past the end of the ", n_,
                     "-byte file"));
    uint64_t data_size = n_ - start;
    for (const GgufTensorInfo& t : f.tensors_) {
      if (t.offset % f.alignment_ != 0)
        fail(start, str("tensor ", detail::quote(t.name), " data offset ", t.offset,
                        " is not a multiple of the alignment ", f.alignment_));
      if (t.offset > data_size || t.nbytes > data_size - t.offset)
        fail(start, str("tensor ", detail::quote(t.name), " (", t.nbytes, " bytes at data offset ",
                        t.offset, ") runs past the end of the file (the data section holds ",
                        data_size, " bytes)"));
    }
    std::vector<size_t> order(f.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return f.tensors_[a].offset < f.tensors_[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const GgufTensorInfo& a = f.tensors_[order[k - 1]];
      const GgufTensorInfo& b = f.tensors_[order[k]];
      if (a.offset + a.nbytes > b.offset)
        fail(start, str("tensors ", detail::quote(a.name), " (data bytes ", a.offset, "..",
                        a.offset + a.nbytes, ") and ", detail::quote(b.name), " (from ", b.offset,
                        ") overlap"));
    }
  }

  const uint8_t* p_;
  size_t n_;
  const std::string& source_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

GgufFile GgufFile::load(const uint8_t* data, size_t size, std::shared_ptr<void> owner,
                        std::string source) {
  GgufFile f;
  f.owner_ = std::move(owner);
  f.base_ = data;
  f.size_ = size;
  f.source_ = std::move(source);
  GgufParser(data, size, f.source_).parse(f);
  return f;
}

GgufFile GgufFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  return load(m->data(), m->size(), m, "'" + path + "'");
}

GgufFile GgufFile::parse(const uint8_t* data, size_t size) {
  // One aligned copy; tensors borrow from it as they borrow from a mapping.
  std::shared_ptr<Storage> s = Storage::allocate(size);
  if (size) std::memcpy(s->data(), data, size);
  return load(static_cast<const uint8_t*>(s->data()), size, s, "<memory>");
}

}  // namespace nef::format
