// The OpenCL API, loaded at run time: NEF never links libOpenCL, so a machine without an OpenCL
// ICD loader (or with a broken one) still runs everything on the CPU. One table of entry points,
// resolved once with dlopen/dlsym from NEF_OPENCL_LIBRARY or libOpenCL.so.1.
#pragma once

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <string>

namespace nef::backend::opencl {

#define NEF_CL_FUNCTIONS(X)      \
  X(clGetPlatformIDs)            \
  X(clGetPlatformInfo)           \
  X(clGetDeviceIDs)              \
  X(clGetDeviceInfo)             \
  X(clCreateContext)             \
  X(clReleaseContext)            \
  X(clCreateCommandQueue)        \
  X(clReleaseCommandQueue)       \
  X(clCreateBuffer)              \
  X(clReleaseMemObject)          \
  X(clEnqueueReadBuffer)         \
  X(clEnqueueWriteBuffer)        \
  X(clEnqueueCopyBuffer)         \
  X(clEnqueueFillBuffer)         \
  X(clEnqueueMapBuffer)          \
  X(clEnqueueUnmapMemObject)     \
  X(clCreateProgramWithSource)   \
  X(clCreateProgramWithBinary)   \
  X(clBuildProgram)              \
  X(clGetProgramBuildInfo)       \
  X(clGetProgramInfo)            \
  X(clReleaseProgram)            \
  X(clCreateKernel)              \
  X(clReleaseKernel)             \
  X(clSetKernelArg)              \
  X(clGetKernelWorkGroupInfo)    \
  X(clEnqueueNDRangeKernel)      \
  X(clEnqueueMarkerWithWaitList) \
  X(clFlush)                     \
  X(clFinish)                    \
  X(clWaitForEvents)             \
  X(clGetEventInfo)              \
  X(clGetEventProfilingInfo)     \
  X(clSetEventCallback)          \
  X(clCreateUserEvent)           \
  X(clSetUserEventStatus)        \
  X(clRetainEvent)               \
  X(clReleaseEvent)

struct Api {
#define NEF_CL_MEMBER(name) decltype(&::name) name = nullptr;
  NEF_CL_FUNCTIONS(NEF_CL_MEMBER)
#undef NEF_CL_MEMBER
};

// The loaded table, or null with `why` set (no library, a missing entry point). Loaded once.
const Api* api(std::string* why = nullptr);

// "CL_OUT_OF_RESOURCES (-5)".
std::string error_name(cl_int code);

// Throws DeviceError (OutOfMemoryError for the allocation failures) naming `what` and the code.
void check(cl_int code, const char* what);

}  // namespace nef::backend::opencl
