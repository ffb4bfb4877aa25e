// numpy <-> nef::Array conversion shared by the binding files. numpy arrays are borrowed
// zero-copy (their storage keeps a reference to the array); results come back as read-only
// numpy views of NEF storage, so nothing is copied either way unless the layout forces it.
#pragma once

#include <nanobind/nanobind.h>

#include "nef/array.h"

namespace nefpy {

namespace nb = nanobind;

// Borrows a numpy array (any strides; copies only if the array is unaligned, byte-swapped or has
// strides that are not whole elements). Unsupported dtypes raise nef::TypeError.
nef::Array array_from_numpy(nb::handle arr);

// A read-only numpy array viewing `a`'s storage (bfloat16 through ml_dtypes).
nb::object array_to_numpy(const nef::Array& a);

void bind_interop(nb::module_& m);

}  // namespace nefpy
