// The geometry attributes every conv-family op takes (conv, conv_epilogue, conv_transpose,
// conv_integer, conv_dynamic_int8): absent lists are filled by inference (their length depends on
// the input rank), groups defaults to 1.
#pragma once

#include "ir/op_registry.h"

namespace nef::ir {

inline void add_conv_geometry_attrs(OpDef& d) {
  d.attrs.push_back({"strides", AttrType::Ints, std::nullopt, false});
  d.attrs.push_back({"pads", AttrType::Ints, std::nullopt, false});
  d.attrs.push_back({"dilations", AttrType::Ints, std::nullopt, false});
  d.attrs.push_back({"groups", AttrType::Int, AttrValue(int64_t(1)), false});
}

}  // namespace nef::ir
