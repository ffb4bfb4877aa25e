// The OpenCL backend: every OpenCL 1.2+ device of every platform the ICD loader reports, loaded
// at run time (cl_api.h). A machine without a loader, without platforms, or with broken ICDs
// gets no OpenCL device and a reason (`nef devices`, NEF_DEBUG=1), never an error.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace nef::backend::opencl {

std::shared_ptr<Backend> make_opencl_backend();

}  // namespace nef::backend::opencl
