#include "backends/opencl/kernels.h"

#include <unordered_map>

#include "backends/cstyle/render.h"
#include "nef/error.h"

namespace nef::backend::opencl {

bool storable(DType t, const DeviceInfo& d) {
  switch (t) {
    case DType::Float32:
    case DType::Int8:
    case DType::UInt8:
    case DType::Int32:
    case DType::Int64:
    case DType::Bool:
      return true;
    case DType::Float64:
      return d.fp64;
    case DType::Float16:
    case DType::BFloat16:
      return false;  // no half arithmetic in the renderer yet
    case DType::Int16:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
      return false;  // not rendered (unsigned wrap/compare rules): the planner keeps them on CPU
    case DType::Float8E4M3FN:
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
      return false;  // storage-only: casts run on the CPU
  }
  return false;
}

OpenclKernel::OpenclKernel(OpenclDevice& dev, const ir::Node& node,
                           std::vector<ir::TensorType> inputs, std::string name, int64_t workspace)
    : dev_(dev),
      node_(node),
      in_(std::move(inputs)),
      name_(std::move(name)),
      workspace_(workspace) {
  node_.inputs.clear();
}

const Launch& OpenclKernel::variant(const std::vector<Strides>& strides) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = variants_.find(strides);
    if (it != variants_.end()) return it->second;
  }
  Launch l = render(strides);
  dev_.kernel(l.source, l.entry);  // build now, outside the launch path's lock
  std::lock_guard<std::mutex> lock(mu_);
  return variants_.emplace(strides, std::move(l)).first->second;
}

void OpenclKernel::prepare() const {
  std::vector<Strides> s;
  for (const ir::TensorType& t : in_) s.push_back(contiguous_strides(t.shape));
  variant(s);
}

EventPtr OpenclKernel::enqueue(const KernelArgs& args, Queue& queue, Waits waits) const {
  auto& q = static_cast<OpenclQueue&>(queue);
  std::vector<Strides> strides;
  strides.reserve(args.inputs.size());
  for (const Array& a : args.inputs) strides.push_back(a.strides);
  const Launch& l = variant(strides);
  if (args.out.numel() == 0) {
    // Nothing to compute, and an empty output may have no buffer (an empty arena): only order
    // this step after its waits.
    WaitList wl = q.wait_list(waits);
    return launch(q, dev_.kernel(l.source, l.entry), {}, 0, 0, wl, {});
  }
  std::vector<Arg> cl_args;
  auto add_array = [&](const Array& a) {
    NEF_CHECK(!a.on_host(), "[", node_.op->name, "] an OpenCL kernel got a host array");
    cl_args.push_back({Arg::Mem, static_cast<cl_mem>(a.storage->handle())});
    cl_args.push_back(Arg::i64(a.offset));
  };
  add_array(args.out);
  for (const Array& a : args.inputs) {
    if (a.numel() == 0) {  // an empty operand has no buffer to read: pass the output's
      cl_args.push_back({Arg::Mem, static_cast<cl_mem>(args.out.storage->handle())});
      cl_args.push_back(Arg::i64(0));
      continue;
    }
    add_array(a);
  }
  if (workspace_ > 0) add_array(args.workspace);
  cl_args.push_back(Arg::i64(args.out.numel()));
  cl_args.insert(cl_args.end(), l.extra.begin(), l.extra.end());
  WaitList wl = q.wait_list(waits);
  return launch(q, dev_.kernel(l.source, l.entry), cl_args, l.global, l.local, wl, {});
}

namespace {

// Copies of any element size, bit for bit, from a strided source.
std::string copy_source(const Array& src) {
  const char* word = nullptr;
  switch (dtype_size(src.dtype)) {
    case 1:
      word = "uchar";
      break;
    case 2:
      word = "ushort";
      break;
    case 4:
      word = "uint";
      break;
    case 8:
      word = "ulong";
      break;
    default:
      throw UnsupportedError("[opencl] copy of an element size with no word type");
  }
  const cstyle::Dialect& d = cstyle::kOpenCL;
  std::string s =
      str(d.kernel, " nef_copy(", d.global, " ", word, "* out, long out_off, ", d.global, " const ",
          word, "* in0, long off0, long n) {\n  const long i = ", d.global_id,
          ";\n  if (i >= n) return;\n");
  std::string off = cstyle::offset_expr(src.strides, src.shape, "i");
  if (off.find('c') != std::string::npos) {
    s += "  long r_ = i;\n";
    for (size_t dd = src.shape.size(); dd-- > 0;)
      s += dd == 0 ? std::string("  const long c0 = r_;\n")
                   : str("  const long c", dd, " = r_ % ", src.shape[dd],
                         "L; r_ /= ", src.shape[dd], "L;\n");
  }
  s += str("  out[out_off + i] = in0[off0 + ", off, "];\n}\n");
  return s;
}

}  // namespace

EventPtr strided_copy(OpenclDevice& dev, OpenclQueue& q, const Array& src, const Array& dst,
                      const WaitList& waits, std::vector<std::shared_ptr<void>> keep) {
  if (waits.failed) return waits.failed;
  ClKernel& k = dev.kernel(copy_source(src), "nef_copy");
  keep.push_back(dst.storage);
  std::vector<Arg> args = {{Arg::Mem, static_cast<cl_mem>(dst.storage->handle())},
                           Arg::i64(dst.offset),
                           {Arg::Mem, static_cast<cl_mem>(src.storage->handle())},
                           Arg::i64(src.offset),
                           Arg::i64(dst.numel())};
  return launch(q, k, args, size_t(dst.numel()), 64, waits, std::move(keep));
}

const Family* family_for(const ir::Node& n) {
  static const std::unordered_map<std::string, const Family*> table = [] {
    std::unordered_map<std::string, const Family*> t;
    for (const ir::OpDef* op : ir::all_ops())
      if (op->has(ir::kElementwise) && op->name != "copy") t[op->name] = &kElementwiseFamily;
    for (const char* name : {"matmul", "matmul_epilogue"}) t[name] = &kMatmulFamily;
    for (const char* name : {"softmax", "log_softmax", "layernorm", "rmsnorm"})
      t[name] = &kRowFamily;
    for (const char* name : {"sum", "mean", "prod", "max", "min", "argmax", "argmin"})
      t[name] = &kReductionFamily;
    t["attention"] = &kAttentionFamily;
    t["matmul_dynamic_int8"] = &kQuantFamily;
    return t;
  }();
  auto it = table.find(n.op->name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace nef::backend::opencl
