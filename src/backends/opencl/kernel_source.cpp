#include "backends/opencl/kernel_source.h"

#include <algorithm>

#include "backends/cstyle/render.h"
#include "nef/error.h"

namespace nef::backend::opencl::source {

std::string ctype(DType t) { return cstyle::storage_type(t, cstyle::kOpenCL); }

std::string lit(double v, DType compute) {
  if (compute != DType::Float64) v = double(float(v));
  return cstyle::literal(v, compute);
}

std::string params(DType out, const std::vector<DType>& ins) {
  std::string s = str("__global ", ctype(out), "* out, long out_off");
  for (size_t k = 0; k < ins.size(); ++k)
    s += str(", __global const ", ctype(ins[k]), "* in", k, ", long off", k);
  return s + ", long n";
}

Merged merge_dims(const Shape& dims, const std::vector<Strides>& strides) {
  Merged m;
  m.strides.resize(strides.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    bool merge = !m.shape.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k)
      merge = m.strides[k].back() == strides[k][i] * dims[i];
    if (merge) m.shape.back() *= dims[i];
    else m.shape.push_back(dims[i]);
    for (size_t k = 0; k < strides.size(); ++k) {
      if (merge) m.strides[k].back() = strides[k][i];
      else m.strides[k].push_back(strides[k][i]);
    }
  }
  return m;
}

std::string offsets(const std::string& index, const Shape& dims, const std::vector<Offset>& ops,
                    const std::string& indent) {
  std::vector<Strides> in;
  for (const Offset& o : ops) in.push_back(o.strides);
  const Merged m = merge_dims(dims, in);
  const Shape& d = m.shape;
  const std::vector<Strides>& st = m.strides;
  std::string s;
  if (d.empty()) {
    for (const Offset& o : ops) s += str(indent, "const long ", o.name, " = 0;\n");
    return s;
  }
  if (d.size() == 1) {  // one dim: a multiply, no division
    for (size_t k = 0; k < ops.size(); ++k)
      s += str(indent, "const long ", ops[k].name, " = ",
               st[k][0] == 0 ? std::string("0") : str("(", index, ") * ", st[k][0], "L"), ";\n");
    return s;
  }
  for (const Offset& o : ops) s += str(indent, "long ", o.name, " = 0;\n");
  s += str(indent, "{\n", indent, "  long r_ = ", index, ";\n");
  for (size_t i = d.size(); i-- > 0;) {
    std::string c = i == 0 ? std::string("r_") : str("c", i, "_");
    if (i > 0) s += str(indent, "  const long ", c, " = r_ % ", d[i], "L; r_ /= ", d[i], "L;\n");
    for (size_t k = 0; k < ops.size(); ++k)
      if (st[k][i] != 0) s += str(indent, "  ", ops[k].name, " += ", c, " * ", st[k][i], "L;\n");
  }
  s += str(indent, "}\n");
  return s;
}

int max_width(DType t) { return int(64 / dtype_size(t)); }

std::string vtype(DType t, int w) { return w == 1 ? ctype(t) : str(ctype(t), w); }

std::string vload(const std::string& p, int64_t s, int w, DType t) {
  if (w == 1) return str("(", p, ")[0]");
  if (s == 1) return str("vload", w, "(0, ", p, ")");
  std::string e = str("(", vtype(t, w), ")(");
  for (int l = 0; l < w; ++l) e += str(l ? ", " : "", "(", p, ")[", int64_t(l) * s, "L]");
  return e + ")";
}

std::string vstore(const std::string& v, const std::string& p, int w) {
  if (w == 1) return str("(", p, ")[0] = ", v);
  return str("vstore", w, "(", v, ", 0, ", p, ")");
}

std::string hsum_helpers(DType t, int w) {
  const std::string T = ctype(t);
  std::string s = str("inline ", T, " nef_hsum1(", T, " v) { return v; }\n");
  for (int k = 2; k <= w; k *= 2)
    s += str("inline ", T, " nef_hsum", k, "(", vtype(t, k), " v) { return nef_hsum", k / 2,
             "(v.lo + v.hi); }\n");
  return s;
}

size_t local_size(int64_t items, const DeviceInfo& d) {
  return size_t(pow2_at_most(items / (4 * std::max(1, d.compute_units)), 16));
}

int64_t pow2_at_most(int64_t n, int64_t cap) {
  int64_t p = 1;
  while (p * 2 <= n && p * 2 <= cap) p *= 2;
  return p;
}

}  // namespace nef::backend::opencl::source
