// numpy and DLPack <-> nef::Array conversion shared by the binding files. numpy arrays and
// DLPack tensors are borrowed zero-copy (their storage keeps the producer alive); results go
// out as numpy views or DLPack capsules of NEF storage, so nothing is copied either way unless
// the layout, the memory's place or a writable result forces it.
#pragma once

#include <nanobind/nanobind.h>

#include <memory>

#include "nef/array.h"
#include "shape_caster.h"

namespace nefpy {

namespace nb = nanobind;

// Borrows a numpy array (any strides; copies only if the array is unaligned, byte-swapped or has
// strides that are not whole elements). Unsupported dtypes raise nef::TypeError.
nef::Array array_from_numpy(nb::handle arr);

// A numpy array viewing `a`'s storage (bfloat16 through ml_dtypes): read-only unless
// `writable`, which the caller may ask for only when nothing else can see the bytes.
nb::object array_to_numpy(const nef::Array& a, bool writable = false);

// A host array on fresh memory of its own with `a`'s values (contiguous).
nef::Array copy_array(const nef::Array& a);

// Host memory owned elsewhere as an Array: `first` is element 0, strides are in elements (any
// sign, 0 for broadcast dims). `owner` lives as long as the storage. Memory that is not aligned
// to the element size is copied instead (NEF's kernels load whole elements).
nef::Array borrow_strided(char* first, nef::Shape shape, nef::Strides strides, nef::DType dtype,
                          std::shared_ptr<void> owner);

// DLPack: a capsule viewing a host array ("dltensor_versioned" when `versioned`, else the legacy
// "dltensor"), and the import of a capsule a producer's __dlpack__ returned (host memory only).
nb::object dlpack_capsule(const nef::Array& a, bool versioned, bool copied);
nef::Array array_from_dlpack(nb::handle capsule);

// Drops a Python reference from any thread (takes the GIL; leaks after interpreter shutdown).
void release_pyobject(void* p);

void bind_interop(nb::module_& m);
// nef._nef.GgufFile (gguf.cpp).
void bind_gguf(nb::module_& m);

}  // namespace nefpy
