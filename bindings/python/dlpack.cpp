// DLPack in both directions (the array-API exchange protocol that numpy, PyTorch and JAX speak):
// host arrays go out as capsules viewing NEF storage and come in as borrowed storage that keeps
// the producer's tensor alive, so neither direction copies.
//
// The structs below are the DLPack 1.0 ABI (dlpack.h), written out from the specification: the
// protocol is a fixed C layout, so any definition with these fields in this order interoperates.
#include <nanobind/stl/string.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "interop.h"
#include "nef/error.h"
#include "nef/shape.h"

namespace nefpy {

namespace {

struct DLDevice {
  int32_t device_type;  // DLDeviceType
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // DLDataTypeCode
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL = compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned*);
  uint64_t flags;
  DLTensor dl_tensor;
};

// DLDeviceType values NEF names in messages; only kDLCPU memory is host-addressable for NEF.
constexpr int32_t kDLCPU = 1;
// DLDataTypeCode values.
constexpr uint8_t kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6;
constexpr uint64_t kFlagReadOnly = 1ull << 0, kFlagIsCopied = 1ull << 1;
constexpr uint32_t kMajor = 1, kMinor = 0;

constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kLegacyName = "dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";

DLDataType dl_dtype(nef::DType t) {
  switch (t) {
    case nef::DType::Float32:
      return {kDLFloat, 32, 1};
    case nef::DType::Float16:
      return {kDLFloat, 16, 1};
    case nef::DType::BFloat16:
      return {kDLBfloat, 16, 1};
    case nef::DType::Float64:
      return {kDLFloat, 64, 1};
    case nef::DType::Int8:
      return {kDLInt, 8, 1};
    case nef::DType::UInt8:
      return {kDLUInt, 8, 1};
    case nef::DType::Int32:
      return {kDLInt, 32, 1};
    case nef::DType::Int64:
      return {kDLInt, 64, 1};
    case nef::DType::Bool:
      return {kDLBool, 8, 1};
    case nef::DType::Int16:
      return {kDLInt, 16, 1};
    case nef::DType::UInt16:
      return {kDLUInt, 16, 1};
    case nef::DType::UInt32:
      return {kDLUInt, 32, 1};
    case nef::DType::UInt64:
      return {kDLUInt, 64, 1};
    case nef::DType::Float8E4M3FN:
    case nef::DType::Float8E4M3FNUZ:
    case nef::DType::Float8E5M2:
    case nef::DType::Float8E5M2FNUZ:
      break;  // DLPack 1.0 has no float8 codes
  }
  throw nef::TypeError(nef::str("[dlpack] ", nef::dtype_name(t), " has no DLPack type code"));
}

std::string dl_dtype_name(DLDataType t) {
  const char* kind = t.code == kDLInt      ? "int"
                     : t.code == kDLUInt   ? "uint"
                     : t.code == kDLFloat  ? "float"
                     : t.code == kDLBfloat ? "bfloat"
                     : t.code == kDLBool   ? "bool"
                     : t.code == 5         ? "complex"
                                           : nullptr;
  std::string s = kind ? nef::str(kind, int(t.bits))
                       : nef::str("type code ", int(t.code), " with ", int(t.bits), " bits");
  if (t.lanes != 1) s += nef::str(" x", t.lanes, " lanes");
  return s;
}

std::optional<nef::DType> nef_dtype(DLDataType t) {
  if (t.lanes != 1) return std::nullopt;
  switch (t.code) {
    case kDLInt:
      if (t.bits == 8) return nef::DType::Int8;
      if (t.bits == 16) return nef::DType::Int16;
      if (t.bits == 32) return nef::DType::Int32;
      if (t.bits == 64) return nef::DType::Int64;
      break;
    case kDLUInt:
      if (t.bits == 8) return nef::DType::UInt8;
      if (t.bits == 16) return nef::DType::UInt16;
      if (t.bits == 32) return nef::DType::UInt32;
      if (t.bits == 64) return nef::DType::UInt64;
      break;
    case kDLFloat:
      if (t.bits == 16) return nef::DType::Float16;
      if (t.bits == 32) return nef::DType::Float32;
      if (t.bits == 64) return nef::DType::Float64;
      break;
    case kDLBfloat:
      if (t.bits == 16) return nef::DType::BFloat16;
      break;
    case kDLBool:
      if (t.bits == 8) return nef::DType::Bool;
      break;
  }
  return std::nullopt;
}

std::string dl_device_name(DLDevice d) {
  const char* name = nullptr;
  switch (d.device_type) {
    case 1:
      name = "cpu";
      break;
    case 2:
      name = "cuda";
      break;
    case 3:
      name = "cuda_host";
      break;
    case 4:
      name = "opencl";
      break;
    case 7:
      name = "vulkan";
      break;
    case 8:
      name = "metal";
      break;
    case 10:
      name = "rocm";
      break;
    case 11:
      name = "rocm_host";
      break;
    case 13:
      name = "cuda_managed";
      break;
    case 14:
      name = "oneapi";
      break;
  }
  return name ? nef::str(name, ":", d.device_id, " (DLPack device type ", d.device_type, ")")
              : nef::str("DLPack device type ", d.device_type, ", id ", d.device_id);
}

// What an exported capsule owns: the NEF array (its storage stays alive) and the shape and
// strides the DLTensor points to.
struct ExportCtx {
  nef::Array array;
  std::vector<int64_t> shape, strides;
  DLManagedTensor legacy{};
  DLManagedTensorVersioned versioned{};
};

void delete_legacy(DLManagedTensor* m) { delete static_cast<ExportCtx*>(m->manager_ctx); }
void delete_versioned(DLManagedTensorVersioned* m) {
  delete static_cast<ExportCtx*>(m->manager_ctx);
}

// A capsule nobody consumed still owns its tensor (the consumer renames a capsule it takes).
void destroy_capsule(PyObject* cap) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (PyCapsule_IsValid(cap, kVersionedName)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedName));
    if (m && m->deleter) m->deleter(m);
  } else if (PyCapsule_IsValid(cap, kLegacyName)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kLegacyName));
    if (m && m->deleter) m->deleter(m);
  }
  PyErr_Restore(type, value, tb);
}

// A producer's deleter may touch Python objects (numpy's drops its array), and NEF releases
// storage on any thread: call it with the GIL, and leak after interpreter shutdown.
template <typename M>
void call_deleter(M* m) {
  if (!m->deleter || !Py_IsInitialized()) return;
#if PY_VERSION_HEX >= 0x030D0000
  if (Py_IsFinalizing()) return;
#else
  if (_Py_IsFinalizing()) return;
#endif
  PyGILState_STATE st = PyGILState_Ensure();
  m->deleter(m);
  PyGILState_Release(st);
}

}  // namespace

nb::object dlpack_capsule(const nef::Array& a, bool versioned, bool copied) {
  NEF_CHECK(a.on_host(), "[dlpack] export of device memory needs a to-host step first");
  auto ctx = std::make_unique<ExportCtx>();
  ctx->array = a;
  ctx->shape.assign(a.shape.begin(), a.shape.end());
  ctx->strides.assign(a.strides.begin(), a.strides.end());
  ctx->strides.resize(ctx->shape.size(), 0);
  // An empty array may have no storage; consumers expect a non-null pointer all the same.
  alignas(64) static char empty_data[64];
  void* data = a.numel() == 0 || !a.storage ? empty_data : a.data();

  DLTensor t{};
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = int32_t(ctx->shape.size());
  t.dtype = dl_dtype(a.dtype);
  t.shape = ctx->shape.empty() ? nullptr : ctx->shape.data();
  t.strides = ctx->strides.empty() ? nullptr : ctx->strides.data();
  t.byte_offset = 0;

  ExportCtx* raw = ctx.get();
  PyObject* cap = nullptr;
  if (versioned) {
    raw->versioned.version = {kMajor, kMinor};
    raw->versioned.manager_ctx = raw;
    raw->versioned.deleter = delete_versioned;
    // NEF values are immutable; a copy made for this export belongs to the consumer.
    raw->versioned.flags = copied ? kFlagIsCopied : kFlagReadOnly;
    raw->versioned.dl_tensor = t;
    cap = PyCapsule_New(&raw->versioned, kVersionedName, destroy_capsule);
  } else {
    raw->legacy.dl_tensor = t;
    raw->legacy.manager_ctx = raw;
    raw->legacy.deleter = delete_legacy;
    cap = PyCapsule_New(&raw->legacy, kLegacyName, destroy_capsule);
  }
  if (!cap) throw nb::python_error();
  ctx.release();  // owned by the capsule (or its consumer) from here on
  return nb::steal(cap);
}

nef::Array array_from_dlpack(nb::handle capsule) {
  PyObject* c = capsule.ptr();
  if (!PyCapsule_CheckExact(c)) {
    throw nef::TypeError(nef::str("[from_dlpack] __dlpack__() must return a DLPack capsule, got ",
                                  nb::cast<std::string>(nb::str(capsule.type()))));
  }
  const bool versioned = PyCapsule_IsValid(c, kVersionedName);
  if (!versioned && !PyCapsule_IsValid(c, kLegacyName)) {
    const char* name = PyCapsule_GetName(c);
    PyErr_Clear();
    throw nef::ValidationError(
        nef::str("[from_dlpack] the capsule is not an unused DLPack tensor (its name is '",
                 name ? name : "", "'); a capsule can be consumed once"));
  }
  // The capsule owns the tensor until it is renamed: every check comes before that, so that
  // a failed import leaves it to the capsule's destructor.
  DLTensor* t = nullptr;
  DLManagedTensorVersioned* mv = nullptr;
  DLManagedTensor* ml = nullptr;
  if (versioned) {
    mv = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(c, kVersionedName));
    if (mv->version.major != kMajor) {
      throw nef::UnsupportedError(nef::str("[from_dlpack] DLPack version ", mv->version.major, ".",
                                           mv->version.minor, " is not supported (NEF reads 1.x)"));
    }
    t = &mv->dl_tensor;
  } else {
    ml = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, kLegacyName));
    t = &ml->dl_tensor;
  }

  if (t->device.device_type != kDLCPU) {
    throw nef::DeviceError(nef::str("[from_dlpack] the tensor lives on ", dl_device_name(t->device),
                                    "; NEF imports host (CPU) memory only: copy it to the CPU "
                                    "first (PyTorch: x.cpu(), JAX: jax.device_get(x))"));
  }
  std::optional<nef::DType> dtype = nef_dtype(t->dtype);
  if (!dtype) {
    throw nef::TypeError(
        nef::str("[from_dlpack] dtype ", dl_dtype_name(t->dtype),
                 " has no NEF equivalent (NEF has float32, float16, bfloat16, "
                 "float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64, "
                 "bool); convert it first, "
                 "e.g. nef.tensor(np.from_dlpack(x))"));
  }
  if (t->ndim < 0 || t->ndim > nef::kMaxRank) {
    throw nef::ShapeError(
        nef::str("[from_dlpack] rank ", t->ndim, " is outside 0..", nef::kMaxRank));
  }
  nef::Shape shape(t->shape, t->shape + t->ndim);
  for (int64_t d : shape) {
    if (d < 0)
      throw nef::ShapeError(nef::str("[from_dlpack] negative dim in ", nef::shape_str(shape)));
  }
  nef::checked_numel(shape, "from_dlpack");
  nef::Strides strides =
      t->strides ? nef::Strides(t->strides, t->strides + t->ndim) : nef::contiguous_strides(shape);
  if (t->data == nullptr && nef::numel(shape) != 0) {
    throw nef::ValidationError("[from_dlpack] the tensor has elements but no data pointer");
  }
  char* first = static_cast<char*>(t->data) + t->byte_offset;

  // Checks passed: take ownership from the capsule.
  if (PyCapsule_SetName(c, versioned ? kUsedVersionedName : kUsedLegacyName) != 0) {
    throw nb::python_error();
  }
  std::shared_ptr<void> owner =
      versioned ? std::shared_ptr<void>(
                      mv, [](void* p) { call_deleter(static_cast<DLManagedTensorVersioned*>(p)); })
                : std::shared_ptr<void>(
                      ml, [](void* p) { call_deleter(static_cast<DLManagedTensor*>(p)); });
  return borrow_strided(first, std::move(shape), std::move(strides), *dtype, std::move(owner));
}

}  // namespace nefpy
