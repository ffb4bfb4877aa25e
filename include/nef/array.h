// Materialized tensor data: a strided view into reference-counted storage.
// Storage may own heap memory, borrow a caller's buffer (numpy, mmap) kept alive by `owner`,
// or live in a device's memory later. Views (transpose, slice, broadcast) share storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nef/dtype.h"
#include "nef/shape.h"

namespace nef {

class Storage {
 public:
  // Allocates `nbytes` of 64-byte aligned host memory (throws OutOfMemoryError).
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Borrows memory owned elsewhere; `owner` is kept alive as long as this storage.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, std::shared_ptr<void> owner);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  // Process-unique, never reused: identifies constants in plan-cache keys.
  uint64_t id() const { return id_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  bool owned_ = false;
  uint64_t id_ = 0;
  std::shared_ptr<void> owner_;
};

// A typed, strided view. Strides are in elements and may be 0 (broadcast) or negative (reversed
// slices); `offset` is in elements from storage->data(). Arrays are cheap to copy.
struct Array {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Strides strides;
  DType dtype = DType::Float32;

  // Fresh contiguous array (uninitialized contents).
  static Array empty(const Shape& shape, DType dtype);

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const { return nef::numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;  // row-major dense (size-1 dims may have any stride)

  // Pointer to element 0 of the view (may be nullptr for empty storage).
  void* data() const {
    return storage ? static_cast<char*>(storage->data()) + offset * int64_t(dtype_size(dtype))
                   : nullptr;
  }
  template <typename T>
  T* data_as() const { return static_cast<T*>(data()); }

  // Contiguous copy if not already contiguous (returns *this otherwise).
  Array contiguous() const;
};

// Copies src (any strides) into dst (same shape and dtype; dst must be contiguous).
void copy_strided(const Array& src, const Array& dst);

}  // namespace nef
