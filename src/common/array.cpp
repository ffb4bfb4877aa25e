#include "nef/array.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/host_memory.h"
#include "nef/error.h"

namespace nef {
namespace {
std::atomic<uint64_t> next_storage_id{1};
// 64-byte alignment for SIMD and cache lines; at least one line so data() is never null.
size_t host_bytes(size_t nbytes) { return nbytes == 0 ? 64 : (nbytes + 63) / 64 * 64; }
}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes) {
  auto s = std::shared_ptr<Storage>(new Storage());
  s->id_ = next_storage_id.fetch_add(1, std::memory_order_relaxed);
  void* p = host_alloc(host_bytes(nbytes));
  if (!p) throw OutOfMemoryError(str("[allocate] cannot allocate ", nbytes, " bytes on cpu"));
  s->data_ = p;
  s->nbytes_ = nbytes;
  s->owned_ = true;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes, std::shared_ptr<void> owner) {
  auto s = std::shared_ptr<Storage>(new Storage());
  s->id_ = next_storage_id.fetch_add(1, std::memory_order_relaxed);
  s->data_ = data;
  s->nbytes_ = nbytes;
  s->owner_ = std::move(owner);
  return s;
}

std::shared_ptr<Storage> Storage::on_device(const MemorySpace* space, void* handle, size_t nbytes,
                                            std::shared_ptr<void> owner) {
  NEF_CHECK(space != nullptr, "[storage] device storage needs a memory space");
  auto s = std::shared_ptr<Storage>(new Storage());
  s->id_ = next_storage_id.fetch_add(1, std::memory_order_relaxed);
  s->data_ = handle;
  s->nbytes_ = nbytes;
  s->space_ = space;
  s->owned_ = true;
  s->owner_ = std::move(owner);
  return s;
}

Storage::~Storage() {
  if (!owned_) return;
  if (space_) space_->release(data_, nbytes_);
  else host_free(data_, host_bytes(nbytes_));
}

const std::string& Storage::device() const {
  static const std::string host = "cpu";
  return space_ ? space_->name() : host;
}

void* Storage::data() const {
  NEF_CHECK(space_ == nullptr, "[storage] host access to memory of device ", space_->name(),
            " without a to-host step");
  return data_;
}

void* Storage::handle() const {
  NEF_CHECK(space_ != nullptr, "[storage] host memory has no device handle");
  return data_;
}

const std::string& Array::device() const {
  static const std::string host = "cpu";
  return storage ? storage->device() : host;
}

Array Array::empty(const Shape& shape, DType dtype) {
  Array a;
  int64_t n = checked_numel(shape, "empty");
  a.storage = Storage::allocate(static_cast<size_t>(n) * dtype_size(dtype));
  a.shape = shape;
  a.strides = contiguous_strides(shape);
  a.dtype = dtype;
  return a;
}

bool Array::is_contiguous() const {
  // An empty array addresses no memory: trivially contiguous whatever its strides.
  for (int64_t d : shape)
    if (d == 0) return true;
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (shape[i] == 0) return true;
    if (strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

std::pair<int64_t, int64_t> byte_span(const Array& a) {
  if (a.numel() == 0) return {0, 0};
  int64_t lo = a.offset, hi = a.offset;
  for (int d = 0; d < a.rank(); ++d) {
    int64_t reach = (a.shape[d] - 1) * a.strides[d];
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  int64_t es = int64_t(dtype_size(a.dtype));
  return {lo * es, (hi + 1) * es};
}

Array to_host(const Array& a) {
  if (a.on_host()) return a;
  auto [first, last] = byte_span(a);
  Array h = a;
  h.storage = Storage::allocate(size_t(last - first));
  if (last > first)
    a.storage->space()->read(*a.storage, size_t(first), h.storage->data(), size_t(last - first));
  h.offset = a.offset - first / int64_t(dtype_size(a.dtype));
  return h;
}

Array Array::contiguous() const {
  if (is_contiguous()) return *this;
  Array out = Array::empty(shape, dtype);
  copy_strided(*this, out);
  return out;
}

void copy_strided(const Array& src, const Array& dst) {
  NEF_CHECK(src.shape == dst.shape && src.dtype == dst.dtype && dst.is_contiguous());
  int64_t n = src.numel();
  if (n == 0) return;
  size_t es = dtype_size(src.dtype);
  if (src.is_contiguous()) {
    std::memcpy(dst.data(), src.data(), static_cast<size_t>(n) * es);
    return;
  }
  int r = src.rank();
  // Walk all but the innermost dim with an index counter; copy the inner run element-wise.
  int64_t inner = src.shape[r - 1];
  int64_t inner_stride = src.strides[r - 1] * int64_t(es);
  int64_t rows = n / inner;
  std::vector<int64_t> idx(r, 0);
  const char* base = static_cast<const char*>(src.data());
  char* out = static_cast<char*>(dst.data());
  for (int64_t row = 0; row < rows; ++row) {
    int64_t off = 0;
    for (int d = 0; d < r - 1; ++d) off += idx[d] * src.strides[d];
    const char* p = base + off * int64_t(es);
    if (inner_stride == int64_t(es)) {
      std::memcpy(out, p, static_cast<size_t>(inner) * es);
      out += inner * int64_t(es);
    } else {
      switch (es) {
        case 1:
          for (int64_t i = 0; i < inner; ++i) out[i] = p[i * inner_stride];
          break;
        case 2:
          for (int64_t i = 0; i < inner; ++i) std::memcpy(out + 2 * i, p + i * inner_stride, 2);
          break;
        case 4:
          for (int64_t i = 0; i < inner; ++i) std::memcpy(out + 4 * i, p + i * inner_stride, 4);
          break;
        default:
          for (int64_t i = 0; i < inner; ++i) std::memcpy(out + es * i, p + i * inner_stride, es);
      }
      out += inner * int64_t(es);
    }
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < src.shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace nef
