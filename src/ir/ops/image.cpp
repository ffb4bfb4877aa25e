// Image op family: pad (ONNX Pad: constant/reflect/edge/wrap, negative pads crop), resize
// (ONNX Resize: nearest/linear/cubic with every coordinate transformation mode, no antialias) and
// grid_sample (ONNX GridSample: x sampled at the normalized positions of a grid, any number of
// spatial dims) and roi_align (ONNX RoiAlign). See docs/ops.md for the contract; the kernels
// are kernels/pad.cpp, kernels/resize.cpp, kernels/grid_sample.cpp and kernels/roi_align.cpp.
#include <cmath>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

template <typename V>
std::string list_str(const std::vector<V>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += str(i ? ", " : "", v[i]);
  return s + "]";
}

void check_one_of(const OpDef& op, const Attrs& attrs, const char* name,
                  std::initializer_list<const char*> allowed) {
  const std::string& v = attrs.get_string(name);
  std::string all;
  for (const char* a : allowed) {
    if (v == a) return;
    all += all.empty() ? a : str(", ", a);
  }
  throw ValidationError(str("[", op.name, "] ", name, " must be one of ", all, ", got '", v, "'"));
}

// --- pad ----------------------------------------------------------------------------------
// Negative pads crop first; the positive pads then extend the cropped tensor (ONNX Runtime's
// order), so reflect/edge/wrap read only the kept values.
TensorType infer_pad(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const size_t rank = x.size();
  const auto& pads = attrs.get_ints("pads");
  check_one_of(op, attrs, "mode", {"constant", "reflect", "edge", "wrap"});
  const std::string& mode = attrs.get_string("mode");
  if (pads.size() != 2 * rank)
    throw ValidationError(str("[pad] pads ", list_str(pads), " must have 2 * rank = ", 2 * rank,
                              " values for input ", shape_str(x)));
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) {
    int64_t pb = pads[d], pe = pads[d + rank];
    if (std::abs(pb) > kMaxElements || std::abs(pe) > kMaxElements)
      throw ShapeError(str("[pad] pads ", list_str(pads), " too large for input ", shape_str(x)));
    int64_t kept = x[d] - std::max<int64_t>(-pb, 0) - std::max<int64_t>(-pe, 0);
    out[d] = x[d] + pb + pe;
    if (kept < 0 || out[d] < 0)
      throw ShapeError(str("[pad] pads ", list_str(pads), " crop more than dim ", d, " of input ",
                           shape_str(x)));
    int64_t grow = std::max<int64_t>(pb, 0) + std::max<int64_t>(pe, 0);
    if (mode != "constant" && grow > 0 && kept == 0)
      throw ValidationError(str("[pad] mode '", mode, "' cannot pad dim ", d,
                                " of size 0 (after cropping) of input ", shape_str(x),
                                " with pads ", list_str(pads)));
    if (mode == "reflect" && (pb >= kept || pe >= kept) && grow > 0)
      throw ValidationError(str("[pad] reflect pads ", list_str(pads), " must be smaller than dim ",
                                d, " (", kept, " after cropping) of input ", shape_str(x)));
  }
  return {out, in[0].dtype};
}

// --- resize -------------------------------------------------------------------------------
TensorType infer_resize(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const TensorType& x = in[0];
  const size_t rank = x.shape.size();
  check_one_of(op, attrs, "mode", {"nearest", "linear", "cubic"});
  check_one_of(op, attrs, "coordinate_transformation_mode",
               {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_crop_and_resize", "half_pixel_symmetric", "tf_half_pixel_for_nn"});
  check_one_of(op, attrs, "nearest_mode",
               {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"});
  const std::string& mode = attrs.get_string("mode");
  if (mode != "nearest" && !is_floating(x.dtype))
    throw TypeError(str("[resize] mode '", mode, "' needs a float input, got ", types_str(in)));
  if (rank == 0)
    throw ShapeError(str("[resize] input must have rank >= 1, got ", shape_str(x.shape)));
  const auto& sizes = attrs.get_ints("sizes");
  if (sizes.size() != rank)
    throw ValidationError(str("[resize] sizes ", list_str(sizes),
                              " must have one value per dim of input ", shape_str(x.shape)));
  for (size_t d = 0; d < rank; ++d) {
    if (sizes[d] < 0)
      throw ShapeError(str("[resize] sizes ", list_str(sizes), " has a negative dim (input ",
                           shape_str(x.shape), ")"));
    if (x.shape[d] == 0 && sizes[d] > 0)
      throw ShapeError(str("[resize] cannot resize dim ", d, " of size 0 to ", sizes[d], " (input ",
                           shape_str(x.shape), ")"));
  }
  if (attrs.has("scales")) {
    const auto& scales = attrs.get_floats("scales");
    if (scales.size() != rank)
      throw ValidationError(str("[resize] scales ", list_str(scales),
                                " must have one value per dim of input ", shape_str(x.shape)));
    for (double s : scales)
      if (!(s > 0) || !std::isfinite(s))
        throw ValidationError(str("[resize] scales ", list_str(scales),
                                  " must be finite and > 0 (input ", shape_str(x.shape), ")"));
  }
  const auto& roi = attrs.get_floats("roi");
  if (!roi.empty() && roi.size() != 2 * rank)
    throw ValidationError(str("[resize] roi ", list_str(roi), " must be empty or have 2 * rank = ",
                              2 * rank, " values for input ", shape_str(x.shape)));
  for (double r : roi)
    if (!std::isfinite(r))
      throw ValidationError(str("[resize] roi ", list_str(roi), " must be finite"));
  if (!std::isfinite(attrs.get_float("cubic_coeff_a")))
    throw ValidationError(
        str("[resize] cubic_coeff_a must be finite, got ", attrs.get_float("cubic_coeff_a")));
  return {Shape(sizes.begin(), sizes.end()), x.dtype};
}

Cost cost_resize(const std::vector<TensorType>& in, const TensorType& out, const Attrs& attrs) {
  const std::string& mode = attrs.get_string("mode");
  double taps = mode == "nearest" ? 0 : mode == "linear" ? 2 : 4;
  double on = double(numel(out.shape));
  return {on * taps * 2 * double(out.shape.size()),
          double(numel(in[0].shape)) * dtype_size(in[0].dtype) + on * dtype_size(out.dtype)};
}

// --- grid_sample ----------------------------------------------------------------------------
// x [N, C, D1..Dr] (float), grid [N, O1..Ok, r] (x's dtype) -> [N, C, O1..Ok].
TensorType infer_grid_sample(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const Shape& g = in[1].shape;
  check_one_of(op, attrs, "mode", {"nearest", "linear", "cubic"});
  check_one_of(op, attrs, "padding_mode", {"zeros", "border", "reflection"});
  if (!is_floating(in[0].dtype) || in[1].dtype != in[0].dtype)
    throw TypeError(
        str("[grid_sample] x must be a float tensor and grid of the same dtype: ", types_str(in)));
  if (x.size() < 3)
    throw ShapeError(
        str("[grid_sample] x must be [N, C, spatial...] (rank >= 3): ", types_str(in)));
  const int64_t r = int64_t(x.size()) - 2;
  if (int64_t(g.size()) != r + 2 || g[0] != x[0] || g.back() != r)
    throw ShapeError(str("[grid_sample] grid must be [N, out spatial (", r, " dims), ", r,
                         "] for x ", shape_str(x), ": ", types_str(in)));
  Shape out = {x[0], x[1]};
  out.insert(out.end(), g.begin() + 1, g.end() - 1);
  return {out, in[0].dtype};
}

// Per output element: taps^r reads of x (nearest 1, linear 2, cubic 4 per spatial dim).
Cost cost_grid_sample(const std::vector<TensorType>& in, const TensorType& out,
                      const Attrs& attrs) {
  const std::string& mode = attrs.get_string("mode");
  const double taps = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4;
  const double reads = std::pow(taps, double(in[0].shape.size()) - 2);
  const double n = double(numel(out.shape));
  const double es = double(dtype_size(out.dtype));
  return {n * reads * 2, n * reads * es + double(numel(in[1].shape)) * es + n * es};
}

// --- roi_align ------------------------------------------------------------------------------
// x [N, C, H, W] (float), rois [R, 4] (x1, y1, x2, y2 in x's pixels / spatial_scale; x's
// dtype), batch_indices [R] (int) -> [R, C, output_height, output_width]: each bin averages
// (or, with ONNX's max rule, takes the largest weighted corner of) a grid of bilinear samples.
TensorType infer_roi_align(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  check_one_of(op, attrs, "mode", {"avg", "max"});
  check_one_of(op, attrs, "coordinate_transformation_mode", {"half_pixel", "output_half_pixel"});
  const Shape &x = in[0].shape, &rois = in[1].shape, &bi = in[2].shape;
  if (!is_floating(in[0].dtype) || in[1].dtype != in[0].dtype)
    throw TypeError(
        str("[roi_align] x must be a float tensor and rois of the same dtype: ", types_str(in)));
  if (in[2].dtype != DType::Int32 && in[2].dtype != DType::Int64)
    throw TypeError(str("[roi_align] batch_indices must be int32/int64: ", types_str(in)));
  if (x.size() != 4 || rois.size() != 2 || rois[1] != 4 || bi != Shape{rois[0]})
    throw ShapeError(
        str("[roi_align] needs x [N, C, H, W], rois [R, 4], batch_indices [R]: ", types_str(in)));
  const int64_t oh = attrs.get_int("output_height"), ow = attrs.get_int("output_width");
  if (oh < 1 || ow < 1 || oh > (int64_t(1) << 24) || ow > (int64_t(1) << 24))
    throw ValidationError(
        str("[roi_align] output_height ", oh, " and output_width ", ow, " must be in [1, 2^24]"));
  if (attrs.get_int("sampling_ratio") < 0)
    throw ValidationError(
        str("[roi_align] sampling_ratio must be >= 0, got ", attrs.get_int("sampling_ratio")));
  const double scale = attrs.get_float("spatial_scale");
  if (!std::isfinite(scale) || !(scale > 0))
    throw ValidationError(str("[roi_align] spatial_scale must be finite and > 0, got ", scale));
  Shape out = {rois[0], x[1], oh, ow};
  checked_numel(out, "roi_align");
  return {out, in[0].dtype};
}

// Per output element a grid of samples (sampling_ratio^2, or ~4 adaptive) of 4 taps each.
Cost cost_roi_align(const std::vector<TensorType>&, const TensorType& out, const Attrs& attrs) {
  const int64_t sr = attrs.get_int("sampling_ratio");
  const double samples = sr > 0 ? double(sr * sr) : 4.0;
  const double n = double(numel(out.shape));
  return {n * samples * 8, n * samples * 4 * double(dtype_size(out.dtype))};
}

}  // namespace

void register_image_ops(Registry& r) {
  OpDef pad;
  pad.name = "pad";
  pad.min_inputs = pad.max_inputs = 1;
  pad.infer = infer_pad;
  pad.attrs = {{"pads", AttrType::Ints, std::nullopt, true},
               {"mode", AttrType::String, AttrValue(std::string("constant")), false},
               {"value", AttrType::Float, AttrValue(0.0), false}};
  r.add(std::move(pad));

  OpDef rs;
  rs.name = "resize";
  rs.min_inputs = rs.max_inputs = 1;
  rs.infer = infer_resize;
  rs.cost = cost_resize;
  rs.attrs = {
      {"sizes", AttrType::Ints, std::nullopt, true},
      {"scales", AttrType::Floats, std::nullopt, false},
      {"mode", AttrType::String, AttrValue(std::string("nearest")), false},
      {"coordinate_transformation_mode", AttrType::String, AttrValue(std::string("half_pixel")),
       false},
      {"nearest_mode", AttrType::String, AttrValue(std::string("round_prefer_floor")), false},
      {"cubic_coeff_a", AttrType::Float, AttrValue(-0.75), false},
      {"exclude_outside", AttrType::Bool, AttrValue(false), false},
      {"extrapolation_value", AttrType::Float, AttrValue(0.0), false},
      {"roi", AttrType::Floats, AttrValue(std::vector<double>{}), false}};
  r.add(std::move(rs));

  r.add({.name = "grid_sample",
         .min_inputs = 2,
         .max_inputs = 2,
         .attrs = {{"mode", AttrType::String, AttrValue(std::string("linear")), false},
                   {"padding_mode", AttrType::String, AttrValue(std::string("zeros")), false},
                   {"align_corners", AttrType::Bool, AttrValue(false), false}},
         .infer = infer_grid_sample,
         .traits = 0,
         .cost = cost_grid_sample});

  r.add({.name = "roi_align",
         .min_inputs = 3,
         .max_inputs = 3,
         .attrs = {{"mode", AttrType::String, AttrValue(std::string("avg")), false},
                   {"coordinate_transformation_mode", AttrType::String,
                    AttrValue(std::string("half_pixel")), false},
                   {"output_height", AttrType::Int, AttrValue(int64_t(1)), false},
                   {"output_width", AttrType::Int, AttrValue(int64_t(1)), false},
                   {"sampling_ratio", AttrType::Int, AttrValue(int64_t(0)), false},
                   {"spatial_scale", AttrType::Float, AttrValue(1.0), false}},
         .infer = infer_roi_align,
         .traits = 0,
         .cost = cost_roi_align});
}

}  // namespace nef::ir
