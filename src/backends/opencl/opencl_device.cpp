#include "backends/opencl/opencl_device.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "backends/opencl/kernels.h"
#include "backends/opencl/program_cache.h"
#include "common/log.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

std::string device_string(const Api& cl, cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (cl.clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  if (cl.clGetDeviceInfo(d, what, n, s.data(), nullptr) != CL_SUCCESS) return "";
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string platform_string(const Api& cl, cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  if (cl.clGetPlatformInfo(p, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "";
  std::string s(n, '\0');
  if (cl.clGetPlatformInfo(p, what, n, s.data(), nullptr) != CL_SUCCESS) return "";
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

template <typename T>
T device_value(const Api& cl, cl_device_id d, cl_device_info what, T fallback) {
  T v{};
  return cl.clGetDeviceInfo(d, what, sizeof v, &v, nullptr) == CL_SUCCESS ? v : fallback;
}

std::string human(int64_t b) {
  double g = double(b) / (1024.0 * 1024 * 1024);
  return g >= 1 ? str(int64_t(g * 10) / 10.0, " GiB") : str(b / (1024 * 1024), " MiB");
}

// The cl_mem of a device array and its element offset.
cl_mem mem_of(const Array& a) { return static_cast<cl_mem>(a.storage->handle()); }

}  // namespace

std::string describe(const DeviceInfo& i) {
  std::string platform;
  for (const auto& [k, v] : i.extra)
    if (k == "platform") platform = v;
  return str(i.name, " (", platform.empty() ? i.vendor : platform, ", ", i.api_version, ", ",
             i.compute_units, " compute units, ", human(i.memory_bytes), ")");
}

// ---- events and wait lists ---------------------------------------------------------------------

OpenclEvent::OpenclEvent(const Api& cl, cl_event ev, cl_context ctx, std::vector<EventPtr> deps,
                         std::vector<std::shared_ptr<void>> keep)
    : cl_(cl), ev_(ev), ctx_(ctx), deps_(std::move(deps)), keep_(std::move(keep)) {
  // Completion time on the host's clock (profiles place device work on the run's timeline).
  auto* at = new std::shared_ptr<std::atomic<double>>(completed_at_);
  if (cl_.clSetEventCallback(
          ev_, CL_COMPLETE,
          [](cl_event, cl_int, void* user) {
            auto* p = static_cast<std::shared_ptr<std::atomic<double>>*>(user);
            (*p)->store(host_seconds());
            delete p;
          },
          at) != CL_SUCCESS)
    delete at;
}

OpenclEvent::~OpenclEvent() {
  if (ev_) cl_.clReleaseEvent(ev_);
}

cl_int OpenclEvent::status() const {
  cl_int s = CL_COMPLETE;
  if (cl_.clGetEventInfo(ev_, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof s, &s, nullptr) !=
      CL_SUCCESS)
    return -1;
  return s;
}

void OpenclEvent::wait() {
  cl_int rc = cl_.clWaitForEvents(1, &ev_);
  cl_int s = status();
  if (rc == CL_SUCCESS && s == CL_COMPLETE) return;
  // A command that did not run because something it waited for failed: that failure's error.
  for (const EventPtr& d : deps_)
    if (d->failed()) d->wait();
  throw DeviceError(str("[opencl] a command failed: ", error_name(s < 0 ? s : rc)));
}

bool OpenclEvent::ready() const {
  cl_int s = status();
  return s == CL_COMPLETE || s < 0;
}

bool OpenclEvent::failed() const { return status() < 0; }

double OpenclEvent::device_seconds() const {
  if (status() != CL_COMPLETE) return -1;
  cl_ulong t0 = 0, t1 = 0;
  if (cl_.clGetEventProfilingInfo(ev_, CL_PROFILING_COMMAND_START, sizeof t0, &t0, nullptr) !=
          CL_SUCCESS ||
      cl_.clGetEventProfilingInfo(ev_, CL_PROFILING_COMMAND_END, sizeof t1, &t1, nullptr) !=
          CL_SUCCESS)
    return -1;
  return t1 >= t0 ? double(t1 - t0) * 1e-9 : -1;
}

void OpenclEvent::on_complete(std::function<void()> fn) {
  auto* heap = new std::function<void()>(std::move(fn));
  cl_int rc = cl_.clSetEventCallback(
      ev_, CL_COMPLETE,
      [](cl_event, cl_int, void* user) {
        auto* f = static_cast<std::function<void()>*>(user);
        (*f)();
        delete f;
      },
      heap);
  if (rc != CL_SUCCESS) {  // no callback support: complete it the slow way, here
    cl_.clWaitForEvents(1, &ev_);
    (*heap)();
    delete heap;
  }
}

WaitList::~WaitList() {
  for (cl_event e : owned) cl->clReleaseEvent(e);
}

WaitList OpenclQueue::wait_list(Waits waits) const {
  WaitList wl;
  const Api& cl = dev_.cl();
  wl.cl = &cl;
  for (const EventPtr& w : waits) {
    if (!w) continue;
    if (auto* oe = dynamic_cast<const OpenclEvent*>(w.get());
        oe && oe->context() == dev_.context()) {
      wl.events.push_back(oe->handle());
      wl.deps.push_back(w);
      continue;
    }
    if (w->ready()) {
      if (w->failed()) {
        wl.failed = w;
        return wl;
      }
      continue;
    }
    // Another device's pending work: a user event this queue waits on, completed by its callback.
    cl_int err = CL_SUCCESS;
    cl_event ue = cl.clCreateUserEvent(dev_.context(), &err);
    check(err, "clCreateUserEvent");
    cl.clRetainEvent(ue);  // the callback's reference
    wl.events.push_back(ue);
    wl.owned.push_back(ue);
    wl.deps.push_back(w);
    const Api* api = &cl;
    EventPtr keep = w;
    w->on_complete([api, ue, keep] {
      api->clSetUserEventStatus(ue, keep->failed() ? -1 : CL_COMPLETE);
      api->clReleaseEvent(ue);
    });
  }
  return wl;
}

EventPtr OpenclQueue::wrap(cl_event ev, const WaitList& waits,
                           std::vector<std::shared_ptr<void>> keep) const {
  auto e =
      std::make_shared<OpenclEvent>(dev_.cl(), ev, dev_.context(), waits.deps, std::move(keep));
  dev_.cl().clFlush(q_);  // start it now: a host thread may wait on it from another queue
  return e;
}

OpenclQueue::~OpenclQueue() = default;

void OpenclQueue::synchronize() { dev_.cl().clFinish(q_); }

EventPtr launch(OpenclQueue& q, ClKernel& k, const std::vector<Arg>& args, size_t global,
                size_t local, const WaitList& waits, std::vector<std::shared_ptr<void>> keep) {
  const Api& cl = q.device().cl();
  if (waits.failed) return waits.failed;
  if (global == 0) {
    // Nothing to compute; still ordered after its waits for whoever waits on it.
    cl_event ev = nullptr;
    check(cl.clEnqueueMarkerWithWaitList(q.handle(), waits.size(), waits.data(), &ev),
          "clEnqueueMarkerWithWaitList");
    return q.wrap(ev, waits, std::move(keep));
  }
  if (local > k.max_work_group) local = k.max_work_group;
  size_t g = local ? (global + local - 1) / local * local : global;
  cl_event ev = nullptr;
  std::lock_guard<std::mutex> lock(k.mu);
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg& a = args[i];
    cl_int rc = CL_SUCCESS;
    switch (a.kind) {
      case Arg::Mem:
        rc = cl.clSetKernelArg(k.kernel, cl_uint(i), sizeof(cl_mem), &a.mem);
        break;
      case Arg::I64: {
        cl_long v = a.i;
        rc = cl.clSetKernelArg(k.kernel, cl_uint(i), sizeof v, &v);
        break;
      }
      case Arg::F32: {
        cl_float v = cl_float(a.f);
        rc = cl.clSetKernelArg(k.kernel, cl_uint(i), sizeof v, &v);
        break;
      }
      case Arg::F64: {
        cl_double v = a.f;
        rc = cl.clSetKernelArg(k.kernel, cl_uint(i), sizeof v, &v);
        break;
      }
    }
    check(rc, "clSetKernelArg");
  }
  check(cl.clEnqueueNDRangeKernel(q.handle(), k.kernel, 1, nullptr, &g, local ? &local : nullptr,
                                  waits.size(), waits.data(), &ev),
        "clEnqueueNDRangeKernel");
  return q.wrap(ev, waits, std::move(keep));
}

// ---- the device --------------------------------------------------------------------------------

std::shared_ptr<OpenclDevice> OpenclDevice::make(const Api& cl, cl_platform_id platform,
                                                 cl_device_id device, int index, std::string& why) {
  DeviceInfo i;
  i.id = str("opencl:", index);
  i.backend = "opencl";
  i.index = index;
  cl_device_type type = device_value<cl_device_type>(cl, device, CL_DEVICE_TYPE, 0);
  i.kind = type & CL_DEVICE_TYPE_GPU ? "gpu" : type & CL_DEVICE_TYPE_CPU ? "cpu" : "accelerator";
  i.name = device_string(cl, device, CL_DEVICE_NAME);
  i.vendor = device_string(cl, device, CL_DEVICE_VENDOR);
  i.driver_version = device_string(cl, device, CL_DRIVER_VERSION);
  i.api_version = device_string(cl, device, CL_DEVICE_OPENCL_C_VERSION);
  i.compute_units = int(device_value<cl_uint>(cl, device, CL_DEVICE_MAX_COMPUTE_UNITS, 1));
  i.memory_bytes = int64_t(device_value<cl_ulong>(cl, device, CL_DEVICE_GLOBAL_MEM_SIZE, 0));
  i.max_alloc_bytes = int64_t(device_value<cl_ulong>(cl, device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, 0));
  i.host_unified = device_value<cl_bool>(cl, device, CL_DEVICE_HOST_UNIFIED_MEMORY, CL_FALSE);
  std::string ext = device_string(cl, device, CL_DEVICE_EXTENSIONS);
  i.fp16 = ext.find("cl_khr_fp16") != std::string::npos;
  i.fp64 = ext.find("cl_khr_fp64") != std::string::npos ||
           device_value<cl_device_fp_config>(cl, device, CL_DEVICE_DOUBLE_FP_CONFIG, 0) != 0;
  std::string version = device_string(cl, device, CL_DEVICE_VERSION);
  i.extra = {{"platform", platform_string(cl, platform, CL_PLATFORM_NAME)},
             {"platform_version", platform_string(cl, platform, CL_PLATFORM_VERSION)},
             {"device_version", version}};
  // OpenCL 1.2 entry points (markers with wait lists, fills) are needed.
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "OpenCL %d.%d", &major, &minor) != 2 ||
      major * 10 + minor < 12) {
    why =
        str(i.name, ": ", version.empty() ? "unknown version" : version, " (NEF needs OpenCL 1.2)");
    return nullptr;
  }
  i.description = describe(i);
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, cl_context_properties(platform), 0};
  cl_int err = CL_SUCCESS;
  cl_context ctx = cl.clCreateContext(props, 1, &device, nullptr, nullptr, &err);
  if (!ctx || err != CL_SUCCESS) {
    why = str(i.name, ": clCreateContext failed: ", error_name(err));
    return nullptr;
  }
  std::shared_ptr<OpenclDevice> d(new OpenclDevice(cl, device, ctx, std::move(i)));
  d->misc_ = cl.clCreateCommandQueue(ctx, device, 0, &err);
  if (!d->misc_ || err != CL_SUCCESS) {
    why = str(d->info_.name, ": clCreateCommandQueue failed: ", error_name(err));
    return nullptr;
  }
  d->max_wg_ = device_value<size_t>(cl, device, CL_DEVICE_MAX_WORK_GROUP_SIZE, 1);
  d->local_mem_ = size_t(device_value<cl_ulong>(cl, device, CL_DEVICE_LOCAL_MEM_SIZE, 0));
  d->base_align_ = std::max<size_t>(
      1, device_value<cl_uint>(cl, device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, 1024) / 8);
  return d;
}

OpenclDevice::OpenclDevice(const Api& cl, cl_device_id dev, cl_context ctx, DeviceInfo info)
    : cl_(cl), dev_(dev), ctx_(ctx), info_(std::move(info)), budget_(info_.id, info_.backend) {}

OpenclDevice::~OpenclDevice() {
  // Devices live until the process exits; the driver may already be unloading then, so objects
  // are left to the process teardown rather than released here.
}

bool OpenclDevice::supports(const ir::Node& node, const ir::Graph& graph) const {
  if (node.is("input") || node.is("constant") || node.op->has(ir::kView))
    return storable(node.type.dtype, info_);
  const Family* f = family_for(node);
  return f && f->supports(node, graph, info_);
}

std::shared_ptr<const Kernel> OpenclDevice::compile(const ir::Node& node,
                                                    const ir::Graph& graph) const {
  const Family* f = family_for(node);
  if (!f || !f->supports(node, graph, info_))
    throw CompileError(str("[", node.op->name, "] no OpenCL kernel for ",
                           ir::types_str(graph.input_types(node)), " on ", info_.id));
  auto k = f->make(const_cast<OpenclDevice&>(*this), node, graph);
  k->prepare();
  return k;
}

std::shared_ptr<Storage> OpenclDevice::allocate(size_t nbytes) {
  budget_.reserve(int64_t(nbytes));
  cl_int err = CL_SUCCESS;
  cl_mem_flags flags = CL_MEM_READ_WRITE | (info_.host_unified ? CL_MEM_ALLOC_HOST_PTR : 0);
  cl_mem m = cl_.clCreateBuffer(ctx_, flags, std::max<size_t>(nbytes, 1), nullptr, &err);
  if (!m || err != CL_SUCCESS) {
    budget_.release(int64_t(nbytes));
    check(err == CL_SUCCESS ? CL_MEM_OBJECT_ALLOCATION_FAILURE : err,
          str("clCreateBuffer of ", nbytes, " bytes on ", info_.id).c_str());
  }
  return Storage::on_device(this, m, nbytes);
}

std::shared_ptr<Storage> OpenclDevice::scratch(size_t nbytes) { return allocate(nbytes); }

void OpenclDevice::release(void* handle, size_t nbytes) const noexcept {
  cl_.clReleaseMemObject(static_cast<cl_mem>(handle));
  {
    std::lock_guard<std::mutex> lock(unbudgeted_mu_);
    auto it = std::find(unbudgeted_.begin(), unbudgeted_.end(), handle);
    if (it != unbudgeted_.end()) {
      unbudgeted_.erase(it);
      return;
    }
  }
  budget_.release(int64_t(nbytes));
}

void OpenclDevice::read(const Storage& s, size_t offset, void* dst, size_t n) const {
  check(cl_.clEnqueueReadBuffer(misc_, static_cast<cl_mem>(s.handle()), CL_TRUE, offset, n, dst, 0,
                                nullptr, nullptr),
        "clEnqueueReadBuffer");
}

void OpenclDevice::write(const Storage& s, size_t offset, const void* src, size_t n) const {
  check(cl_.clEnqueueWriteBuffer(misc_, static_cast<cl_mem>(s.handle()), CL_TRUE, offset, n, src, 0,
                                 nullptr, nullptr),
        "clEnqueueWriteBuffer");
}

QueuePtr OpenclDevice::acquire_queue() {
  cl_command_queue q = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      q = pool_.back();
      pool_.pop_back();
    }
  }
  if (!q) {
    cl_int err = CL_SUCCESS;
    q = cl_.clCreateCommandQueue(ctx_, dev_, CL_QUEUE_PROFILING_ENABLE, &err);
    check(err, "clCreateCommandQueue");
  }
  return QueuePtr(new OpenclQueue(*this, q), [this](Queue* raw) {
    auto* oq = static_cast<OpenclQueue*>(raw);
    cl_command_queue h = oq->handle();
    cl_.clFinish(h);
    delete oq;
    std::lock_guard<std::mutex> lock(mu_);
    if (pool_.size() < 8) pool_.push_back(h);
    else cl_.clReleaseCommandQueue(h);
  });
}

std::string OpenclDevice::config_key() const {
  return str("limit=", memory_limit(info_.id, info_.backend));
}

int64_t OpenclDevice::trim() {
  std::lock_guard<std::mutex> lock(mu_);
  for (cl_command_queue q : pool_) cl_.clReleaseCommandQueue(q);
  pool_.clear();
  return 0;
}

EventPtr OpenclDevice::copy(const Array& src, const Array& dst, Queue& queue, Waits waits) {
  auto& q = static_cast<OpenclQueue&>(queue);
  NEF_CHECK(src.shape == dst.shape && src.dtype == dst.dtype && dst.is_contiguous(),
            "[opencl] copy between different arrays");
  WaitList wl = q.wait_list(waits);
  if (wl.failed) return wl.failed;
  const size_t bytes = dst.nbytes();
  const size_t es = dtype_size(dst.dtype);
  cl_event ev = nullptr;
  if (bytes == 0) return completed_event();
  if (src.on_host() && !dst.on_host()) {
    if (src.is_contiguous()) {
      check(cl_.clEnqueueWriteBuffer(q.handle(), mem_of(dst), CL_FALSE, size_t(dst.offset) * es,
                                     bytes, src.data(), wl.size(), wl.data(), &ev),
            "clEnqueueWriteBuffer");
      return q.wrap(ev, wl, {src.storage, dst.storage});
    }
    // A strided host view: its bytes up, then a device-side gather into dst.
    auto [first, last] = byte_span(src);
    auto tmp = scratch(size_t(last - first));
    check(cl_.clEnqueueWriteBuffer(
              q.handle(), static_cast<cl_mem>(tmp->handle()), CL_FALSE, 0, size_t(last - first),
              static_cast<const char*>(src.storage->data()) + first, wl.size(), wl.data(), &ev),
          "clEnqueueWriteBuffer");
    EventPtr up = q.wrap(ev, wl, {src.storage, tmp});
    Array staged = src;
    staged.storage = tmp;
    staged.offset = src.offset - first / int64_t(es);
    EventPtr after[] = {up};
    WaitList wl2 = q.wait_list(after);
    return strided_copy(*this, q, staged, dst, wl2, {tmp});
  }
  if (!src.on_host() && dst.on_host()) {
    if (src.is_contiguous()) {
      check(cl_.clEnqueueReadBuffer(q.handle(), mem_of(src), CL_FALSE, size_t(src.offset) * es,
                                    bytes, dst.data(), wl.size(), wl.data(), &ev),
            "clEnqueueReadBuffer");
      return q.wrap(ev, wl, {src.storage, dst.storage});
    }
    Array packed;
    packed.storage = scratch(bytes);
    packed.shape = src.shape;
    packed.strides = contiguous_strides(src.shape);
    packed.dtype = src.dtype;
    EventPtr gathered = strided_copy(*this, q, src, packed, wl, {src.storage});
    EventPtr after[] = {gathered};
    WaitList wl2 = q.wait_list(after);
    if (wl2.failed) return wl2.failed;
    check(cl_.clEnqueueReadBuffer(q.handle(), mem_of(packed), CL_FALSE, 0, bytes, dst.data(),
                                  wl2.size(), wl2.data(), &ev),
          "clEnqueueReadBuffer");
    return q.wrap(ev, wl2, {packed.storage, dst.storage});
  }
  NEF_CHECK(!src.on_host() && !dst.on_host(), "[opencl] a host-to-host copy");
  return strided_copy(*this, q, src, dst, wl, {src.storage});
}

std::optional<Array> OpenclDevice::map_from_host(const Array& src) {
  if (!info_.host_unified || !src.on_host() || src.numel() == 0) return std::nullopt;
  auto [first, last] = byte_span(src);
  char* base = static_cast<char*>(src.storage->data()) + first;
  // Only a suitably aligned pointer is used in place; otherwise drivers copy at creation.
  if (reinterpret_cast<uintptr_t>(base) % base_align_ != 0) return std::nullopt;
  cl_int err = CL_SUCCESS;
  cl_mem m = cl_.clCreateBuffer(ctx_, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, size_t(last - first),
                                base, &err);
  if (!m || err != CL_SUCCESS) return std::nullopt;
  {
    std::lock_guard<std::mutex> lock(unbudgeted_mu_);
    unbudgeted_.push_back(m);
  }
  Array a = src;
  a.storage = Storage::on_device(this, m, size_t(last - first), src.storage);
  a.offset = src.offset - first / int64_t(dtype_size(src.dtype));
  return a;
}

std::optional<std::pair<Array, EventPtr>> OpenclDevice::map_to_host(const Array& src, Queue& queue,
                                                                    Waits waits) {
  if (!info_.host_unified || src.on_host() || src.numel() == 0) return std::nullopt;
  auto& q = static_cast<OpenclQueue&>(queue);
  WaitList wl = q.wait_list(waits);
  if (wl.failed) return std::nullopt;
  auto [first, last] = byte_span(src);
  cl_event ev = nullptr;
  cl_int err = CL_SUCCESS;
  cl_mem m = mem_of(src);
  void* p = cl_.clEnqueueMapBuffer(q.handle(), m, CL_FALSE, CL_MAP_READ, size_t(first),
                                   size_t(last - first), wl.size(), wl.data(), &ev, &err);
  if (!p || err != CL_SUCCESS) return std::nullopt;
  // The mapping ends (on the device's own queue) when the last host view of it is released.
  const Api* api = &cl_;
  cl_command_queue misc = misc_;
  std::shared_ptr<Storage> keep = src.storage;
  auto owner = std::shared_ptr<void>(p, [api, misc, m, keep](void* ptr) {
    api->clEnqueueUnmapMemObject(misc, m, ptr, 0, nullptr, nullptr);
    api->clFinish(misc);
  });
  Array a = src;
  a.storage = Storage::borrow(p, size_t(last - first), owner);
  a.offset = src.offset - first / int64_t(dtype_size(src.dtype));
  return std::make_pair(a, q.wrap(ev, wl, {}));
}

cl_program OpenclDevice::build(const std::string& source) const {
  auto t0 = std::chrono::steady_clock::now();
  ProgramKey key{source, str(info_.name, "|", info_.driver_version, "|", info_.api_version)};
  cl_int err = CL_SUCCESS;
  const char* options = "-cl-std=CL1.2";
  if (std::optional<std::vector<unsigned char>> bin = load_binary(key)) {
    const unsigned char* data = bin->data();
    size_t size = bin->size();
    cl_int status = CL_SUCCESS;
    cl_program p = cl_.clCreateProgramWithBinary(ctx_, 1, &dev_, &size, &data, &status, &err);
    if (p && err == CL_SUCCESS && status == CL_SUCCESS &&
        cl_.clBuildProgram(p, 1, &dev_, options, nullptr, nullptr) == CL_SUCCESS)
      return p;
    if (p) cl_.clReleaseProgram(p);
    debug_log("opencl program cache: a cached binary did not load; rebuilding from source");
  }
  const char* text = source.c_str();
  size_t len = source.size();
  cl_program p = cl_.clCreateProgramWithSource(ctx_, 1, &text, &len, &err);
  check(err, "clCreateProgramWithSource");
  cl_int rc = cl_.clBuildProgram(p, 1, &dev_, options, nullptr, nullptr);
  if (rc == CL_BUILD_PROGRAM_FAILURE) {
    // Once more from a fresh program: PoCL has been seen failing a build with no diagnostics
    // while other processes built the same source into its shared cache, and succeeding on
    // the next try. A real compile error fails again, with its log.
    cl_.clReleaseProgram(p);
    debug_log("opencl: a program build failed; retrying once");
    p = cl_.clCreateProgramWithSource(ctx_, 1, &text, &len, &err);
    check(err, "clCreateProgramWithSource");
    rc = cl_.clBuildProgram(p, 1, &dev_, options, nullptr, nullptr);
  }
  if (rc != CL_SUCCESS) {
    size_t n = 0;
    cl_.clGetProgramBuildInfo(p, dev_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
    std::string log(n, '\0');
    if (n) cl_.clGetProgramBuildInfo(p, dev_, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
    cl_.clReleaseProgram(p);
    if (log.size() > 4000) log = log.substr(0, 4000) + "...";
    throw CompileError(str("[opencl] build failed on ", info_.id, ": ", error_name(rc), "\n", log));
  }
  size_t bsize = 0;
  if (cl_.clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof bsize, &bsize, nullptr) ==
          CL_SUCCESS &&
      bsize > 0) {
    std::vector<unsigned char> bin(bsize);
    unsigned char* ptr = bin.data();
    if (cl_.clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof ptr, &ptr, nullptr) == CL_SUCCESS)
      store_binary(key, bin);
  }
  debug_log(str("opencl: built a program in ",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e3,
                " ms"));
  return p;
}

ClKernel& OpenclDevice::kernel(const std::string& source, const std::string& entry) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(source, entry);
  auto it = kernels_.find(key);
  if (it != kernels_.end()) return *it->second;
  auto pit = programs_.find(source);
  if (pit == programs_.end()) pit = programs_.emplace(source, build(source)).first;
  cl_int err = CL_SUCCESS;
  auto k = std::make_unique<ClKernel>();
  k->kernel = cl_.clCreateKernel(pit->second, entry.c_str(), &err);
  check(err, "clCreateKernel");
  size_t wg = 1;
  if (cl_.clGetKernelWorkGroupInfo(k->kernel, dev_, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                   nullptr) == CL_SUCCESS)
    k->max_work_group = std::max<size_t>(1, wg);
  return *kernels_.emplace(key, std::move(k)).first->second;
}

}  // namespace nef::backend::opencl
