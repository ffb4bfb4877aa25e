// Materialized tensor data: a strided view into reference-counted storage.
//
// Storage lives in one memory space. Host storage (the default) owns heap memory or borrows a
// caller's buffer (numpy, mmap) kept alive by `owner`, and is directly addressable. Device storage
// (an OpenCL buffer, later CUDA memory) belongs to a backend's MemorySpace: host code reaches its
// bytes only through an explicit to-host step (nef::to_host), so nothing reads device memory by
// accident; Storage::data() on device storage is an internal error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nef/dtype.h"
#include "nef/shape.h"

namespace nef {

class Storage;

// A device's memory, implemented by its backend. One instance per device, alive for the whole
// process. Thread-safe: read/write may be called from any thread.
class MemorySpace {
 public:
  virtual ~MemorySpace() = default;
  // The device instance id: "opencl:0", "cuda:1".
  virtual const std::string& name() const = 0;
  // Blocking copies between `s` (of this space) and host memory, ordered after all work already
  // submitted to the device. Throw DeviceError on a device failure.
  virtual void read(const Storage& s, size_t offset, void* dst, size_t n) const = 0;
  virtual void write(const Storage& s, size_t offset, const void* src, size_t n) const = 0;
  // Frees an allocation made by this space (called once, from ~Storage).
  virtual void release(void* handle, size_t nbytes) const noexcept = 0;
};

class Storage {
 public:
  // Allocates `nbytes` of 64-byte aligned host memory (throws OutOfMemoryError).
  static std::shared_ptr<Storage> allocate(size_t nbytes);
  // Borrows host memory owned elsewhere; `owner` is kept alive as long as this storage.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, std::shared_ptr<void> owner);
  // Adopts a device allocation: `handle` is the backend's (a cl_mem); `space` frees it. `owner`
  // (optional) lives as long as the storage (host memory a device buffer maps, say).
  static std::shared_ptr<Storage> on_device(const MemorySpace* space, void* handle, size_t nbytes,
                                            std::shared_ptr<void> owner = nullptr);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  bool on_host() const { return space_ == nullptr; }
  // nullptr for host memory.
  const MemorySpace* space() const { return space_; }
  // "cpu" for host memory, else the device instance id.
  const std::string& device() const;
  // Host memory only (checked: device bytes need nef::to_host).
  void* data() const;
  // The backend's handle of device memory (checked: device storage only).
  void* handle() const;
  size_t nbytes() const { return nbytes_; }
  // True for host memory this storage allocated itself (Storage::allocate), false for borrowed
  // memory (numpy arrays, mmap'd files, mapped device buffers) and device memory. With
  // use_count() == 1 it tells a caller that nothing else can see these bytes.
  bool owns_host_memory() const { return owned_ && space_ == nullptr; }
  // Process-unique, never reused: identifies constants in plan-cache keys.
  uint64_t id() const { return id_; }

 private:
  Storage() = default;
  void* data_ = nullptr;  // host pointer, or the device handle
  size_t nbytes_ = 0;
  bool owned_ = false;
  uint64_t id_ = 0;
  const MemorySpace* space_ = nullptr;
  std::shared_ptr<void> owner_;
};

// A typed, strided view. Strides are in elements and may be 0 (broadcast) or negative (reversed
// slices); `offset` is in elements from the start of the storage. Arrays are cheap to copy.
struct Array {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Strides strides;
  DType dtype = DType::Float32;

  // Fresh contiguous host array (uninitialized contents).
  static Array empty(const Shape& shape, DType dtype);

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const { return nef::numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;  // row-major dense (size-1 dims may have any stride)
  // Host memory (or no storage at all: empty arrays may have none).
  bool on_host() const { return !storage || storage->on_host(); }
  // "cpu" or the device instance id of the storage.
  const std::string& device() const;

  // Pointer to element 0 of the view (may be nullptr for empty storage). Host arrays only.
  void* data() const {
    return storage ? static_cast<char*>(storage->data()) + offset * int64_t(dtype_size(dtype))
                   : nullptr;
  }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data());
  }

  // Contiguous copy if not already contiguous (returns *this otherwise). Host arrays only.
  Array contiguous() const;
};

// Copies src (any strides) into dst (same shape and dtype; dst must be contiguous). Host only.
void copy_strided(const Array& src, const Array& dst);

// The explicit to-host step: `a` itself when it is in host memory, else a host copy of the bytes
// its view spans (same shape and strides). Blocking; throws DeviceError on a device failure.
Array to_host(const Array& a);

// Byte range [first, last) of the storage that a view addresses (0, 0 when empty).
std::pair<int64_t, int64_t> byte_span(const Array& a);

}  // namespace nef
