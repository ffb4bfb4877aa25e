// The four ONNX float8 formats (storage only): exact decoding to float, and encoding with
// round-to-nearest-even and ONNX Cast's saturate rules.
#pragma once

#include <cstdint>

#include "nef/dtype.h"

namespace nef {

// The value of a float8 bit pattern of dtype `t` (one of the Float8* dtypes); NaN for NaN codes.
float float8_to_float(uint8_t bits, DType t);

// `v` rounded to the nearest float8 of dtype `t` (ties to even). saturate (ONNX's default): a
// finite value beyond the largest and +-inf give +-the largest finite value; otherwise they give
// +-inf for E5M2 and NaN for the others. NaN gives NaN (its sign kept where the format has one);
// the FNUZ formats have no -0 (it becomes +0).
uint8_t float_to_float8(float v, DType t, bool saturate);

}  // namespace nef
