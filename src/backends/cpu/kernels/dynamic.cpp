// CPU kernels for the value-shaped ops (ir/ops/dynamic.cpp). Each op's result is computed once
// on the host by one function; its "<op>_extent" kernel writes the result's extent (an int64
// scalar) and the op's kernel, which runs only once the extent is known, writes the result.
// Both run the same computation, so the extent always matches the data.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

void write_extent(const KernelArgs& a, int64_t e) { *static_cast<int64_t*>(a.out.data()) = e; }

void write_rows(const KernelArgs& a, const std::vector<int64_t>& v) {
  if (int64_t(v.size()) != a.out.numel())
    throw ShapeError(str("[", a.node.op->name, "] computed ", v.size(), " values, the output ",
                         shape_str(a.out.shape), " holds ", a.out.numel()));
  std::copy(v.begin(), v.end(), static_cast<int64_t*>(a.out.data()));
}

// ---- nonzero: [rank, n] flattened row-major ---------------------------------------------------

std::vector<int64_t> nonzero(const Array& xs) {
  const Array x = xs.contiguous();
  const int r = x.rank();
  std::vector<int64_t> flat;
  dispatch_dtype(x.dtype, [&]<typename T>() {
    const T* p = x.data_as<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i)
      if (load_as(p[i]) != compute_t<T>(0)) flat.push_back(i);
  });
  const int64_t n = int64_t(flat.size());
  std::vector<int64_t> out(static_cast<size_t>(r * n));
  for (int64_t j = 0; j < n; ++j) {
    int64_t rem = flat[size_t(j)];
    for (int d = r - 1; d >= 0; --d) {
      out[size_t(d * n + j)] = rem % x.shape[size_t(d)];
      rem /= x.shape[size_t(d)];
    }
  }
  return out;
}

// ---- unique: slices along `axis` compared lexicographically ----------------------------------

struct Unique {
  std::vector<int64_t> first, count;  // per unique slice, in output order
  std::vector<int64_t> inverse;       // per input slice: its unique slice's position
};

Unique unique(const Array& xs, int axis, bool sorted) {
  const Array x = xs.contiguous();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t n = x.shape[size_t(axis)];
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> group(static_cast<size_t>(n));  // group id per slice, ids in sorted order
  dispatch_dtype(x.dtype, [&]<typename T>() {
    using C = compute_t<T>;
    const T* p = x.data_as<T>();
    // -1, 0, 1 over slices i and j: NaN above every number and equal to NaN (a total order).
    auto cmp = [&](int64_t i, int64_t j) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < inner; ++k) {
          const C a = load_as(p[(o * n + i) * inner + k]), b = load_as(p[(o * n + j) * inner + k]);
          if constexpr (std::is_floating_point_v<C>) {
            const bool na = std::isnan(a), nb = std::isnan(b);
            if (na || nb) {
              if (na != nb) return na ? 1 : -1;
              continue;
            }
          }
          if (a < b) return -1;
          if (b < a) return 1;
        }
      return 0;
    };
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return cmp(i, j) < 0; });
    int64_t g = -1;
    for (int64_t k = 0; k < n; ++k) {
      if (k == 0 || cmp(order[size_t(k - 1)], order[size_t(k)]) != 0) ++g;
      group[size_t(order[size_t(k)])] = g;
    }
  });
  const int64_t u = n == 0 ? 0 : *std::max_element(group.begin(), group.end()) + 1;
  Unique r;
  r.first.assign(size_t(u), -1);
  r.count.assign(size_t(u), 0);
  for (int64_t i = 0; i < n; ++i) {
    auto& f = r.first[size_t(group[size_t(i)])];
    if (f < 0) f = i;
    r.count[size_t(group[size_t(i)])]++;
  }
  // Output position per group: sorted order, or by first occurrence.
  std::vector<int64_t> pos(static_cast<size_t>(u));
  std::iota(pos.begin(), pos.end(), 0);
  if (!sorted) {
    std::vector<int64_t> by_first(static_cast<size_t>(u));
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(),
              [&](int64_t a, int64_t b) { return r.first[size_t(a)] < r.first[size_t(b)]; });
    for (int64_t k = 0; k < u; ++k) pos[size_t(by_first[size_t(k)])] = k;
    std::vector<int64_t> f(static_cast<size_t>(u)), c(static_cast<size_t>(u));
    for (int64_t gi = 0; gi < u; ++gi) {
      f[size_t(pos[size_t(gi)])] = r.first[size_t(gi)];
      c[size_t(pos[size_t(gi)])] = r.count[size_t(gi)];
    }
    r.first = std::move(f);
    r.count = std::move(c);
  }
  r.inverse.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) r.inverse[size_t(i)] = pos[size_t(group[size_t(i)])];
  return r;
}

Unique unique_of(const KernelArgs& a) {
  return unique(a.inputs[0], int(a.attrs.get_int("axis")), a.attrs.get_bool("sorted"));
}

// ---- non_max_suppression: ONNX's greedy selection per (batch, class) -------------------------

struct Corners {
  float y1, x1, y2, x2;
};

std::vector<int64_t> nms(const KernelArgs& a) {
  const Array boxes = a.inputs[0].contiguous(), scores = a.inputs[1].contiguous();
  const int64_t B = boxes.shape[0], N = boxes.shape[1], C = scores.shape[1];
  const bool center = a.attrs.get_int("center_point_box") == 1;
  const int64_t max_out = std::max<int64_t>(a.attrs.get_int("max_output"), 0);
  const float iou_threshold = float(a.attrs.get_float("iou_threshold"));
  const bool has_score = a.attrs.get_bool("has_score_threshold");
  const float score_threshold = float(a.attrs.get_float("score_threshold"));
  const float* bp = boxes.data_as<float>();
  const float* sp = scores.data_as<float>();
  std::vector<int64_t> out;
  if (max_out == 0) return out;
  std::vector<Corners> corners(static_cast<size_t>(N));
  std::vector<float> area(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < N; ++i) {
      const float* q = bp + (b * N + i) * 4;
      Corners c;
      if (center) {
        c = {q[1] - q[3] / 2, q[0] - q[2] / 2, q[1] + q[3] / 2, q[0] + q[2] / 2};
      } else {
        c = {std::min(q[0], q[2]), std::min(q[1], q[3]), std::max(q[0], q[2]),
             std::max(q[1], q[3])};
      }
      corners[size_t(i)] = c;
      area[size_t(i)] = (c.y2 - c.y1) * (c.x2 - c.x1);
    }
    // IoU strictly above the threshold suppresses; degenerate boxes never do.
    auto suppresses = [&](int64_t i, int64_t j) {
      const Corners &p = corners[size_t(i)], &q = corners[size_t(j)];
      const float ih = std::min(p.y2, q.y2) - std::max(p.y1, q.y1);
      const float iw = std::min(p.x2, q.x2) - std::max(p.x1, q.x1);
      if (ih <= 0 || iw <= 0) return false;
      const float inter = ih * iw;
      const float uni = area[size_t(i)] + area[size_t(j)] - inter;
      if (area[size_t(i)] <= 0 || area[size_t(j)] <= 0 || uni <= 0) return false;
      return inter / uni > iou_threshold;
    };
    for (int64_t c = 0; c < C; ++c) {
      const float* s = sp + (b * C + c) * N;
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < N; ++i)
        if (!has_score || s[i] > score_threshold) cand.push_back(i);
      // Highest score first, equal scores by box index.
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
      std::vector<int64_t> kept;
      for (int64_t i : cand) {
        if (int64_t(kept.size()) >= max_out) break;
        bool ok = true;
        for (int64_t k : kept) ok = ok && !suppresses(i, k);
        if (!ok) continue;
        kept.push_back(i);
        out.insert(out.end(), {b, c, i});
      }
    }
  }
  return out;
}

// ---- topk_k: the topk kernel with k read from the input ---------------------------------------

int64_t topk_k_value(const KernelArgs& a) {
  const Array k = a.inputs[1].contiguous();
  const int64_t v = *k.data_as<int64_t>();
  const int axis = int(a.attrs.get_int("axis"));
  const int64_t dim = a.inputs[0].shape[size_t(axis)];
  if (v < 0 || v > dim)
    throw ShapeError(str("[topk_k] k = ", v, " must be in [0, ", dim, "] (axis ", axis, " of ",
                         shape_str(a.inputs[0].shape), ")"));
  return v;
}

void k_topk_k(const KernelArgs& a) {
  const int64_t k = topk_k_value(a);
  if (k != a.out.shape[size_t(a.attrs.get_int("axis"))])
    throw ShapeError(str("[topk_k] k = ", k, " differs from the output ", shape_str(a.out.shape),
                         " planned for it"));
  ir::Attrs attrs;
  attrs.set("axis", a.attrs.get_int("axis"));
  attrs.set("k", k);
  attrs.set("largest", a.attrs.get_bool("largest"));
  attrs.set("sorted", a.attrs.get_bool("sorted"));
  const std::vector<Array> in{a.inputs[0]};
  kernel_table().find("topk")->fn(KernelArgs{in, a.out, attrs, a.node, a.workspace});
}

// ---- cond_select: a copy of the chosen branch ------------------------------------------------

bool condition(const Array& c) {
  const Array h = c.contiguous();
  bool v = false;
  dispatch_dtype(h.dtype, [&]<typename T>() { v = load_as(h.data_as<T>()[0]) != compute_t<T>(0); });
  return v;
}

}  // namespace

void register_dynamic_kernels(KernelTable& t) {
  t.add("cond_select_extent", [](const KernelArgs& a) { write_extent(a, condition(a.inputs[0])); });
  t.add("cond_select", [](const KernelArgs& a) {
    const int64_t e = a.attrs.get_int("extent");
    const bool take_a = e < 0 ? condition(a.inputs[0]) : e == 1;
    copy_strided(a.inputs[take_a ? 1 : 2], a.out);
  });
  t.add("nonzero_extent", [](const KernelArgs& a) {
    write_extent(a, int64_t(nonzero(a.inputs[0]).size()) / std::max(1, a.inputs[0].rank()));
  });
  t.add("nonzero", [](const KernelArgs& a) { write_rows(a, nonzero(a.inputs[0])); });
  t.add("unique_extent",
        [](const KernelArgs& a) { write_extent(a, int64_t(unique_of(a).first.size())); });
  t.add("unique", [](const KernelArgs& a) {
    Unique u = unique_of(a);
    std::vector<int64_t> rows;
    for (size_t i = 0; i < u.first.size(); ++i) rows.insert(rows.end(), {u.first[i], u.count[i]});
    write_rows(a, rows);
  });
  t.add("unique_inverse", [](const KernelArgs& a) { write_rows(a, unique_of(a).inverse); });
  t.add("non_max_suppression_extent",
        [](const KernelArgs& a) { write_extent(a, int64_t(nms(a).size() / 3)); });
  t.add("non_max_suppression", [](const KernelArgs& a) { write_rows(a, nms(a)); });
  t.add("topk_k_extent", [](const KernelArgs& a) { write_extent(a, topk_k_value(a)); });
  t.add("topk_k", k_topk_k);
}

}  // namespace nef::backend::cpu
