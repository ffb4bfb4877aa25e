#include "backends/opencl/opencl_backend.h"

#include <vector>

#include "backends/opencl/cl_api.h"
#include "backends/opencl/opencl_device.h"
#include "common/log.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

class OpenclBackend final : public Backend {
 public:
  std::string name() const override { return "opencl"; }

  std::vector<DevicePtr> probe(std::string& problem) override {
    std::vector<DevicePtr> out;
    try {
      std::string why;
      const Api* cl = api(&why);
      if (!cl) {
        problem = why;
        return out;
      }
      cl_uint np = 0;
      cl_int rc = cl->clGetPlatformIDs(0, nullptr, &np);
      if (rc != CL_SUCCESS || np == 0) {
        problem = rc == CL_SUCCESS ? "no OpenCL platform (no ICD installed)"
                                   : str("clGetPlatformIDs: ", error_name(rc));
        return out;
      }
      std::vector<cl_platform_id> platforms(np);
      cl->clGetPlatformIDs(np, platforms.data(), nullptr);
      std::string problems;
      int index = 0;
      for (cl_platform_id p : platforms) {
        cl_uint nd = 0;
        if (cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0)
          continue;
        std::vector<cl_device_id> devices(nd);
        cl->clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, devices.data(), nullptr);
        for (cl_device_id d : devices) {
          std::string reason;
          auto dev = OpenclDevice::make(*cl, p, d, index, reason);
          if (!dev) {
            debug_log(str("opencl: device skipped: ", reason));
            problems += str(problems.empty() ? "" : "; ", reason);
            continue;
          }
          ++index;
          out.push_back(std::move(dev));
        }
      }
      if (out.empty()) problem = problems.empty() ? "no OpenCL device" : problems;
    } catch (const std::exception& e) {
      problem = str("probe failed: ", e.what());
      out.clear();
    }
    return out;
  }
};

}  // namespace

std::shared_ptr<Backend> make_opencl_backend() { return std::make_shared<OpenclBackend>(); }

}  // namespace nef::backend::opencl
