// numpy interop without numpy's C API at build time: values go out through the
// __array_struct__ protocol and come in through the buffer protocol or __array_interface__,
// which also handles ml_dtypes' bfloat16 (DLPack and the buffer protocol do not describe it).
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

// Every file that casts std::string needs its caster: without it nanobind instantiates the
// generic class caster under the same name, and the linker may keep either (a runtime bad_cast).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "interop.h"
#include "nef/error.h"
#include "nef/shape.h"

namespace nefpy {

using namespace nb::literals;

namespace {

nb::object numpy_module() { return nb::module_::import_("numpy"); }

// numpy's C-level array interface (the `__array_struct__` protocol; the layout is part of
// numpy's stable ABI). numpy reads it without building or parsing a Python dict: converting a
// small result took 4.1 us through `__array_interface__` and takes ~1 us this way.
struct PyArrayInterface {
  int two;  // always 2
  int nd;
  char typekind;
  int itemsize;
  int flags;
  Py_intptr_t* shape;
  Py_intptr_t* strides;
  void* data;
  PyObject* descr;
};
constexpr int kNpyAligned = 0x0100, kNpyNotSwapped = 0x0200, kNpyWriteable = 0x0400;

// Keeps NEF storage alive for as long as a numpy array views it (it becomes the array's base)
// and holds the interface numpy reads while it makes the array.
struct ArrayView {
  std::shared_ptr<nef::Storage> storage;
  Py_intptr_t shape[nef::kMaxRank];
  Py_intptr_t strides[nef::kMaxRank];
  PyArrayInterface iface;
};

const char* typestr(nef::DType t) {
  constexpr bool little = std::endian::native == std::endian::little;
  switch (t) {
    case nef::DType::Float32:
      return little ? "<f4" : ">f4";
    case nef::DType::Float16:
      return little ? "<f2" : ">f2";
    case nef::DType::BFloat16:
      return little ? "<u2" : ">u2";  // re-viewed as bfloat16 below
    case nef::DType::Float64:
      return little ? "<f8" : ">f8";
    case nef::DType::Int8:
      return "|i1";
    case nef::DType::UInt8:
      return "|u1";
    case nef::DType::Int32:
      return little ? "<i4" : ">i4";
    case nef::DType::Int64:
      return little ? "<i8" : ">i8";
    case nef::DType::Bool:
      return "|b1";
    case nef::DType::Int16:
      return little ? "<i2" : ">i2";
    case nef::DType::UInt16:
      return little ? "<u2" : ">u2";
    case nef::DType::UInt32:
      return little ? "<u4" : ">u4";
    case nef::DType::UInt64:
      return little ? "<u8" : ">u8";
    case nef::DType::Float8E4M3FN:
    case nef::DType::Float8E4M3FNUZ:
    case nef::DType::Float8E5M2:
    case nef::DType::Float8E5M2FNUZ:
      return "|u1";  // re-viewed as ml_dtypes' float8 type below
  }
  throw nef::TypeError("[to_numpy] unknown dtype");
}

}  // namespace

// Drops the Python reference that keeps a borrowed numpy array alive. NEF may release storage
// on any thread (runtime workers, with the GIL released), so take the GIL first; after the
// interpreter has shut down, leak instead of touching it.
void release_pyobject(void* p) {
  // A thread with a live thread state that holds the GIL may drop the reference even while the
  // interpreter finalizes (Py_IsInitialized() is already 0 while Py_FinalizeEx clears __main__'s
  // tensors): skipping it there left the array, and nanobind's view of NEF memory, alive past
  // teardown ("nanobind: leaked 1 instances" at exit).
#if PY_VERSION_HEX >= 0x030D0000
  PyThreadState* ts = PyThreadState_GetUnchecked();
#else
  PyThreadState* ts = _PyThreadState_UncheckedGet();
#endif
  if (ts != nullptr && PyGILState_Check()) {
    Py_DECREF(static_cast<PyObject*>(p));
    return;
  }
  if (!Py_IsInitialized()) return;
#if PY_VERSION_HEX >= 0x030D0000
  if (Py_IsFinalizing()) return;
#else
  if (_Py_IsFinalizing()) return;
#endif
  PyGILState_STATE st = PyGILState_Ensure();
  Py_DECREF(static_cast<PyObject*>(p));
  PyGILState_Release(st);
}

nef::Array copy_array(const nef::Array& a) {
  nef::Array out = nef::Array::empty(a.shape, a.dtype);
  nef::copy_strided(a, out);
  return out;
}

nef::Array borrow_strided(char* first, nef::Shape shape, nef::Strides strides, nef::DType dtype,
                          std::shared_ptr<void> owner) {
  const int64_t item = static_cast<int64_t>(nef::dtype_size(dtype));
  // The storage spans from the lowest to the highest addressed element (negative strides
  // put element 0 anywhere inside it).
  int64_t n = nef::numel(shape), lo = 0, hi = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) continue;
    int64_t span = (shape[i] - 1) * strides[i];
    if (span < 0) lo += span;
    else hi += span;
  }
  char* base = n == 0 ? first : first + lo * item;
  size_t nbytes = n == 0 ? 0 : size_t((hi - lo + 1) * item);
  nef::Array out;
  out.storage = nef::Storage::borrow(base, nbytes, std::move(owner));
  out.offset = n == 0 ? 0 : -lo;
  out.shape = std::move(shape);
  out.strides = std::move(strides);
  out.dtype = dtype;
  if (n != 0 && reinterpret_cast<uintptr_t>(first) % uintptr_t(item) != 0) {
    return copy_array(out);  // copy_strided moves bytes with memcpy: unaligned reads are fine
  }
  return out;
}

// The dtype of a buffer-protocol format string of one native-order standard type, or nothing
// (other types, byte orders and ml_dtypes' types take the __array_interface__ path).
std::optional<nef::DType> dtype_of_format(const char* f, Py_ssize_t itemsize) {
  if (!f) return std::nullopt;
  if (*f == '@' || *f == '=' || (*f == '<' && std::endian::native == std::endian::little)) ++f;
  if (!f[0] || f[1]) return std::nullopt;
  std::optional<nef::DType> t;
  switch (f[0]) {
    case 'f':
      t = nef::DType::Float32;
      break;
    case 'd':
      t = nef::DType::Float64;
      break;
    case 'e':
      t = nef::DType::Float16;
      break;
    case 'b':
      t = nef::DType::Int8;
      break;
    case 'B':
      t = nef::DType::UInt8;
      break;
    case 'h':
      t = nef::DType::Int16;
      break;
    case 'H':
      t = nef::DType::UInt16;
      break;
    case 'i':
      t = nef::DType::Int32;
      break;
    case 'I':
      t = nef::DType::UInt32;
      break;
    case 'l':
    case 'q':
      t = itemsize == 8 ? nef::DType::Int64 : nef::DType::Int32;
      break;
    case 'L':
    case 'Q':
      t = itemsize == 8 ? nef::DType::UInt64 : nef::DType::UInt32;
      break;
    case '?':
      t = nef::DType::Bool;
      break;
    default:
      return std::nullopt;
  }
  if (Py_ssize_t(nef::dtype_size(*t)) != itemsize) return std::nullopt;
  return t;
}

// A numpy array of a standard dtype through the buffer protocol (read at C level: no Python
// dicts or dtype names built per call, which cost most of a small graph's run); nothing where
// that does not apply. The array keeps its memory alive as the result's owner.
std::optional<nef::Array> from_buffer(const nb::object& obj) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_RECORDS_RO) != 0) {
    PyErr_Clear();
    return std::nullopt;
  }
  std::optional<nef::DType> dtype = dtype_of_format(view.format, view.itemsize);
  const int64_t item = view.itemsize;
  nef::Shape shape(size_t(view.ndim));
  nef::Strides strides(size_t(view.ndim));
  bool ok = dtype.has_value() && view.ndim <= nef::kMaxRank &&
            reinterpret_cast<uintptr_t>(view.buf) % uintptr_t(item) == 0;
  for (int i = 0; ok && i < view.ndim; ++i) {
    shape[size_t(i)] = view.shape[i];
    ok = view.strides[i] % item == 0;
    strides[size_t(i)] = view.strides[i] / item;
  }
  char* first = static_cast<char*>(view.buf);
  PyBuffer_Release(&view);
  if (!ok) return std::nullopt;
  PyObject* ref = obj.ptr();
  Py_INCREF(ref);
  std::shared_ptr<void> owner(ref, release_pyobject);
  return borrow_strided(first, std::move(shape), std::move(strides), *dtype, std::move(owner));
}

nef::Array array_from_numpy(nb::handle arr) {
  nb::object np = numpy_module();
  nb::object obj = nb::borrow(arr);
  if (Py_TYPE(obj.ptr()) == reinterpret_cast<PyTypeObject*>(np.attr("ndarray").ptr()))
    if (std::optional<nef::Array> a = from_buffer(obj)) return std::move(*a);
  if (!nb::isinstance(obj, np.attr("ndarray"))) obj = np.attr("asarray")(obj);
  nb::object dt = obj.attr("dtype");
  std::string name = nb::cast<std::string>(dt.attr("name"));
  std::optional<nef::DType> dtype = nef::dtype_from_name(name);
  if (!dtype) {
    throw nef::TypeError(nef::str("[from_numpy] unsupported numpy dtype ", name,
                                  " (NEF has float32, float16, bfloat16, float64, int8, uint8, "
                                  "int16, uint16, int32, uint32, int64, uint64, bool)"));
  }
  if (!nb::cast<bool>(dt.attr("isnative"))) {
    obj = obj.attr("astype")(dt.attr("newbyteorder")("="));
  }
  const int64_t item = static_cast<int64_t>(nef::dtype_size(*dtype));

  nb::dict iface = nb::borrow<nb::dict>(obj.attr("__array_interface__"));
  uintptr_t ptr = nb::cast<uintptr_t>(nb::borrow<nb::tuple>(iface["data"])[0]);
  nef::Shape shape = nb::cast<nef::Shape>(iface["shape"]);
  if (shape.size() > size_t(nef::kMaxRank)) {
    throw nef::ShapeError(
        nef::str("[from_numpy] rank ", shape.size(), " exceeds the maximum ", nef::kMaxRank));
  }
  nef::checked_numel(shape, "from_numpy");
  nef::Strides strides = nef::contiguous_strides(shape);
  nb::object byte_strides = iface["strides"];
  bool need_copy = ptr % uintptr_t(item) != 0;
  if (!byte_strides.is_none()) {
    nef::Strides bs = nb::cast<nef::Strides>(byte_strides);
    for (size_t i = 0; i < bs.size(); ++i) {
      if (bs[i] % item != 0) need_copy = true;
      strides[i] = bs[i] / item;
    }
  }
  if (need_copy) {
    // Unaligned or fractional strides: a contiguous copy is aligned and dense.
    return array_from_numpy(np.attr("array")(obj, "copy"_a = true, "order"_a = "C"));
  }

  PyObject* ref = obj.ptr();
  Py_INCREF(ref);
  std::shared_ptr<void> owner(ref, release_pyobject);
  return borrow_strided(reinterpret_cast<char*>(ptr), std::move(shape), std::move(strides), *dtype,
                        std::move(owner));
}

nb::object array_to_numpy(const nef::Array& a, bool writable) {
  const int64_t item = static_cast<int64_t>(nef::dtype_size(a.dtype));
  const char* ts = typestr(a.dtype);
  ArrayView view;
  view.storage = a.storage;
  const int nd = int(a.shape.size());
  for (int i = 0; i < nd; ++i) {
    view.shape[i] = Py_intptr_t(a.shape[i]);
    view.strides[i] = Py_intptr_t(size_t(i) < a.strides.size() ? a.strides[i] * item : 0);
  }
  // typestr is "<f4"-style: kind at [1]; NEF only hands out native-endian, aligned data.
  view.iface = PyArrayInterface{2,
                                nd,
                                ts[1],
                                int(item),
                                kNpyAligned | kNpyNotSwapped | (writable ? kNpyWriteable : 0),
                                nullptr,
                                nullptr,
                                const_cast<void*>(a.data()),
                                nullptr};
  nb::object holder = nb::cast(std::move(view));
  // The struct lives in the holder (numpy keeps the holder as the array's base); point at it
  // only now that it has its final address.
  ArrayView& held = nb::cast<ArrayView&>(holder);
  held.iface.shape = held.shape;
  held.iface.strides = held.strides;
  // numpy.asarray looked up once: the module stays loaded for the interpreter's life.
  static PyObject* const asarray = nb::object(numpy_module().attr("asarray")).release().ptr();
  nb::object out = nb::steal(PyObject_CallOneArg(asarray, holder.ptr()));
  if (!out.is_valid()) nb::raise_python_error();
  if (a.dtype == nef::DType::BFloat16 || nef::is_storage_only(a.dtype)) {
    // ml_dtypes names its types as NEF does (bfloat16, float8_e4m3fn, ...).
    out = out.attr("view")(nb::module_::import_("ml_dtypes").attr(nef::dtype_name(a.dtype)));
  }
  return out;
}

void bind_interop(nb::module_& m) {
  nb::class_<ArrayView>(m, "_ArrayView").def_prop_ro("__array_struct__", [](ArrayView& v) {
    // A capsule without a name, as numpy expects; it only points into the holder.
    return nb::steal(PyCapsule_New(&v.iface, nullptr, nullptr));
  });
}

}  // namespace nefpy
