// View ops (the kView trait: reshape, transpose, slice, broadcast_to, expand_dims, squeeze) move
// no data: their value is new offset/shape/strides over the input's storage, on whatever device
// it lives. The runtime computes them here for every backend, so no backend writes view kernels.
#pragma once

#include <optional>

#include "ir/graph.h"
#include "nef/array.h"

namespace nef::ir {

// The view `node` (a kView op) makes of `input`, or nullopt when the input's strides cannot
// express it (a reshape of a non-contiguous view): the caller then copies the input into a
// contiguous buffer and applies the view to that, which always succeeds.
std::optional<Array> apply_view(const Node& node, const Array& input);

// `x`'s storage seen with another offset (elements), shape and strides.
Array view_of(const Array& x, int64_t offset, Shape shape, Strides strides);

}  // namespace nef::ir
