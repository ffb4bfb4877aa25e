// cast: numpy astype between all dtypes. Float -> int truncates toward zero and saturates
// (NaN -> 0) so no input is undefined behaviour; int -> narrower int wraps like numpy; to bool
// is != 0 (NaN -> true). float8 follows ONNX Cast (common/float8.h).
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cpu/kernels/elementwise.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "common/dispatch.h"
#include "common/float8.h"
#include "common/simd.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

template <typename To, typename From>
inline To convert(From v) {
  auto c = load_as(v);
  using C = decltype(c);
  if constexpr (std::is_same_v<To, bool>) {
    return c != C(0);
  } else if constexpr (std::is_same_v<To, float16_t> || std::is_same_v<To, bfloat16_t>) {
    return store_as<To>(static_cast<float>(c));
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<C>) {
    // Limits as double: max rounds up to 2^63 for int64, so ">=" catches every value that
    // static_cast could not represent.
    constexpr double lo = double(std::numeric_limits<To>::min());
    constexpr double hi = double(std::numeric_limits<To>::max());
    double d = static_cast<double>(c);
    if (!(d == d)) return To(0);
    if (d >= hi) return std::numeric_limits<To>::max();
    if (d <= lo) return std::numeric_limits<To>::min();
    return static_cast<To>(c);
  } else {
    return static_cast<To>(c);  // int -> int wraps (modular since C++20), int -> float rounds
  }
}

template <typename To, typename From>
NEF_SIMD_CLONES void cast_row(const From* x, int64_t sx, To* o, int64_t so, int64_t n) {
  if (so == 1 && sx == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = convert<To>(x[i]);
  } else if (so == 1 && sx == 0) {
    To v = convert<To>(x[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * so] = convert<To>(x[i * sx]);
  }
}

void cast_kernel(const KernelArgs& args) {
  cast_into(args.inputs[0], args.out, args.attrs.get_bool("saturate"));
}

// float8 on either side: through float32, which holds every float8 value exactly (a float64
// source is rounded to float32 first, as ONNX's reference does).
void cast_float8(const Array& src, const Array& dst, bool saturate) {
  if (src.dtype == dst.dtype) {
    copy_strided(src, dst);
    return;
  }
  Array f = Array::empty(src.shape, DType::Float32);
  float* fp = f.data_as<float>();
  const int64_t n = f.numel();
  if (is_storage_only(src.dtype)) {
    const Array c = src.contiguous();
    const uint8_t* p = c.data_as<uint8_t>();
    for (int64_t i = 0; i < n; ++i) fp[i] = float8_to_float(p[i], src.dtype);
  } else {
    cast_into(src, f);
  }
  if (!is_storage_only(dst.dtype)) {
    cast_into(f, dst);
    return;
  }
  Array o = dst.is_contiguous() ? dst : Array::empty(dst.shape, dst.dtype);
  uint8_t* op = o.data_as<uint8_t>();
  for (int64_t i = 0; i < n; ++i) op[i] = float_to_float8(fp[i], dst.dtype, saturate);
  if (o.data() != dst.data()) copy_strided(o, dst);
}

// bitcast: copies the bytes through a view of the output typed like the input (same element
// size); a bool result is normalized to 0/1, which every kernel reading bools relies on.
void bitcast_kernel(const KernelArgs& args) {
  Array as_input = args.out;
  as_input.dtype = args.inputs[0].dtype;
  copy_strided(args.inputs[0], as_input);
  if (args.out.dtype == DType::Bool) {
    uint8_t* p = args.out.data_as<uint8_t>();
    for (int64_t i = 0, n = args.out.numel(); i < n; ++i) p[i] = p[i] != 0;
  }
}

}  // namespace

void cast_into(const Array& src, const Array& dst, bool saturate) {
  NEF_CHECK(src.shape == dst.shape, "cast shapes ", shape_str(src.shape), " ",
            shape_str(dst.shape));
  if (dst.numel() == 0) return;
  if (is_storage_only(src.dtype) || is_storage_only(dst.dtype)) {
    cast_float8(src, dst, saturate);
    return;
  }
  auto it = make_elementwise_iter<2>(dst, {&src});
  dispatch_dtype(src.dtype, [&]<typename From>() {
    dispatch_dtype(dst.dtype, [&]<typename To>() {
      it.parallel_rows([&](const int64_t* off, int64_t n) {
        cast_row<To, From>(elem_ptr<const From>(src, off[1]), it.inner_stride(1),
                           elem_ptr<To>(dst, off[0]), it.inner_stride(0), n);
      });
    });
  });
}

const Array& cast_array(const Array& x, DType t, Array& holder) {
  if (x.dtype == t) return x;
  holder = Array::empty(x.shape, t);
  cast_into(x, holder);
  return holder;
}

void register_cast_kernels(KernelTable& t) {
  t.add("cast", cast_kernel);
  t.add("bitcast", bitcast_kernel);
}

}  // namespace nef::backend::cpu
