// Conv-style geometry of an ONNX node (kernel, strides, dilations, pads with auto_pad
// resolved), shared by the converters of Conv, the pools (ops/nn.cpp) and ConvInteger /
// QLinearConv (ops/quant.cpp). Errors go through the node's ctx.
#pragma once

#include <cstdint>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {

struct Geometry {
  std::vector<int64_t> kernel, strides, dilations, pads;
};

// Kernel from the weight w (convolutions) or the kernel_shape attribute (pools, w null);
// strides and dilations from the attributes, each checked to lie in [1, 2^31].
Geometry read_geometry(const NodeCtx& ctx, const Tensor& x, const Tensor* w);
// The explicit pads, or the ones auto_pad implies for input shape x.
std::vector<int64_t> resolve_pads(const NodeCtx& ctx, const Shape& x, const Geometry& g);

}  // namespace nef::onnx_import
