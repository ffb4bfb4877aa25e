// nanobind caster for nef::Dims (Shape / Strides): Python sees exactly what it saw when shapes
// were std::vector<int64_t> (any sequence of ints in, a list out). Every binding file includes
// this before binding a function that takes or returns a Shape, so all see the same caster.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/detail/nb_list.h>

#include "nef/shape.h"

NAMESPACE_BEGIN(NB_NAMESPACE)
NAMESPACE_BEGIN(detail)

template <>
struct type_caster<nef::Dims> : list_caster<nef::Dims, int64_t> {};

NAMESPACE_END(detail)
NAMESPACE_END(NB_NAMESPACE)
