// Internal to the CPU backend: float32 2-D convs without a column buffer (conv.cpp routes to them).
// The input is copied into zero-padded "phase planes": for stride s, s*s planes per channel
// holding the padded input's rows iy = r*s + py and columns ix = j*s + px, so that every kernel
// tap reads its plane at a constant offset from the output position, with unit stride. Output
// positions run over a padded-width domain q = oy * Wq + ox (ox < Wq, the plane's width): the
// ox >= Wo columns are computed and dropped, which keeps each tap's reads one contiguous run.
// - conv_implicit: an implicit GEMM, out[m, q] = sum_k w[m, k] * planes[offs[k] + q] with
//   k = (channel, tap): register tiles of the ISA's mr channels x nr positions (conv_simd.h),
//   weights packed once per plan (conv_implicit_pack) or per call, the bias in the tile's
//   initial value, conv_epilogue's program run on each finished panel of output rows while it
//   is in cache. The parallel items are bands of output rows (per image and group): each fills
//   the plane rows its band reads (with the taps' halo) into its thread's own buffer, in L2,
//   and computes the band at once: one parallel region per call, no pass over all planes first.
// - conv_pointwise: a 1x1 stride-1 unpadded conv needs no planes: the same register tiles read
//   the input channels in place and write the output rows in place (bias in the accumulators).
// - conv_depthwise: one channel per group: per channel, the taps' weighted sum over the plane,
//   four vectors at a time, then the epilogue over that channel's output. 3-wide kernels with
//   left pad 1 at width stride 2 (or stride 1 with pads 1 and 1) read the input rows in place
//   instead (conv_simd.h's dw_s2k3 / dw_s1k3): no planes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nef/array.h"

namespace nef::backend::cpu {

// A 2-D conv (1-D: height 1), channels first; pt/pl: the top/left pads (bottom/right follow from
// the output size).
struct Conv2d {
  int64_t N = 1, C = 1, M = 1, G = 1, H = 1, W = 1, Ho = 1, Wo = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0;
};

// Post-processing of finished float32 output runs in place (conv_epilogue's program). Each chunk
// of parallel work makes its own (it holds that thread's scratch).
class OutputFinisher {
 public:
  virtual ~OutputFinisher() = default;
  virtual void apply(float* data, int64_t n) = 0;
};
using FinisherFactory = std::function<std::unique_ptr<OutputFinisher>()>;  // empty: none

// Whether conv_depthwise runs g: one input and one output channel per group.
bool use_conv_depthwise(const Conv2d& g);
// Whether conv_implicit runs g: more than `min_mg` output channels per group and phase planes of
// bounded size.
bool use_conv_implicit(const Conv2d& g, int64_t min_mg);
// Workspace bytes conv_implicit needs (packed weights and the phase planes).
int64_t conv_implicit_workspace_bytes(const Conv2d& g);

// conv_implicit's weights with every channel tile packed (k-major, mr channels per k, zeros past
// each group's channels) for the tiles this process runs: made once per plan for a constant
// weight (Kernel::prepare), so that runs neither pack nor read the weight rows in place.
struct ConvPackedWeights {
  int mr = 0;
  std::vector<float> data;
};
ConvPackedWeights conv_implicit_pack(const Conv2d& g, const float* w);

// out (N, M, Ho, Wo) = conv(x (N, C, H, W), w (M, C/G, kh, kw)) + bias (M). `packed` (may be
// null): conv_implicit_pack(g, w) of these very weights; without it the weights are read in
// place (whole channel tiles of large weights) or packed per call.
void conv_implicit(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                   const Array& workspace, const FinisherFactory& finisher,
                   const ConvPackedWeights* packed = nullptr);
// Whether conv_pointwise runs g: a 1x1 stride-1 unpadded conv with more than `min_mg` output
// channels per group and at least 64 positions per image.
bool use_conv_pointwise(const Conv2d& g, int64_t min_mg);
// conv_implicit's contract for a 1x1 stride-1 unpadded conv, without phase planes or a scratch
// tile: register tiles read the input channels as they lie and write the output rows in place
// (the bias starts the accumulators; the epilogue runs on each finished panel of positions).
// `packed` as for conv_implicit (the same packing); no workspace.
void conv_pointwise(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                    const FinisherFactory& finisher, const ConvPackedWeights* packed = nullptr);
void conv_depthwise(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                    const FinisherFactory& finisher);

}  // namespace nef::backend::cpu
