#include "backends/opencl/cl_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

struct Loaded {
  Api table;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  const char* env = std::getenv("NEF_OPENCL_LIBRARY");
  std::string lib = env && *env ? env : "libOpenCL.so.1";
  void* h = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    l.why = str("cannot load ", lib, ": ", e ? e : "unknown error");
    return l;
  }
#define NEF_CL_LOAD(name)                                                         \
  l.table.name = reinterpret_cast<decltype(&::name)>(::dlsym(h, #name));          \
  if (!l.table.name) {                                                            \
    l.why = str(lib, " has no ", #name, " (an OpenCL 1.2 ICD loader is needed)"); \
    return l;                                                                     \
  }
  NEF_CL_FUNCTIONS(NEF_CL_LOAD)
#undef NEF_CL_LOAD
  // The library stays loaded for the process: devices and buffers live until exit.
  l.ok = true;
  return l;
}

}  // namespace

const Api* api(std::string* why) {
  static const Loaded* loaded = new Loaded(load());
  if (!loaded->ok) {
    if (why) *why = loaded->why;
    return nullptr;
  }
  return &loaded->table;
}

std::string error_name(cl_int code) {
  const char* n = "CL_ERROR";
  switch (code) {
    case CL_DEVICE_NOT_FOUND:
      n = "CL_DEVICE_NOT_FOUND";
      break;
    case CL_DEVICE_NOT_AVAILABLE:
      n = "CL_DEVICE_NOT_AVAILABLE";
      break;
    case CL_COMPILER_NOT_AVAILABLE:
      n = "CL_COMPILER_NOT_AVAILABLE";
      break;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
      n = "CL_MEM_OBJECT_ALLOCATION_FAILURE";
      break;
    case CL_OUT_OF_RESOURCES:
      n = "CL_OUT_OF_RESOURCES";
      break;
    case CL_OUT_OF_HOST_MEMORY:
      n = "CL_OUT_OF_HOST_MEMORY";
      break;
    case CL_BUILD_PROGRAM_FAILURE:
      n = "CL_BUILD_PROGRAM_FAILURE";
      break;
    case CL_INVALID_VALUE:
      n = "CL_INVALID_VALUE";
      break;
    case CL_INVALID_DEVICE:
      n = "CL_INVALID_DEVICE";
      break;
    case CL_INVALID_BINARY:
      n = "CL_INVALID_BINARY";
      break;
    case CL_INVALID_BUFFER_SIZE:
      n = "CL_INVALID_BUFFER_SIZE";
      break;
    case CL_INVALID_PROGRAM_EXECUTABLE:
      n = "CL_INVALID_PROGRAM_EXECUTABLE";
      break;
    case CL_INVALID_KERNEL_NAME:
      n = "CL_INVALID_KERNEL_NAME";
      break;
    case CL_INVALID_KERNEL_ARGS:
      n = "CL_INVALID_KERNEL_ARGS";
      break;
    case CL_INVALID_ARG_SIZE:
      n = "CL_INVALID_ARG_SIZE";
      break;
    case CL_INVALID_WORK_GROUP_SIZE:
      n = "CL_INVALID_WORK_GROUP_SIZE";
      break;
    case CL_INVALID_EVENT_WAIT_LIST:
      n = "CL_INVALID_EVENT_WAIT_LIST";
      break;
    case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST:
      n = "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
      break;
    case -1001:
      n = "CL_PLATFORM_NOT_FOUND_KHR (no ICD found)";
      break;
    default:
      break;
  }
  return str(n, " (", code, ")");
}

void check(cl_int code, const char* what) {
  if (code == CL_SUCCESS) return;
  if (code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_HOST_MEMORY ||
      code == CL_OUT_OF_RESOURCES)
    throw OutOfMemoryError(str("[opencl] ", what, ": ", error_name(code)));
  throw DeviceError(str("[opencl] ", what, ": ", error_name(code)));
}

}  // namespace nef::backend::opencl
