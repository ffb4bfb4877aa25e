// NEF error hierarchy. The same taxonomy exists in C++ (these exception types), in the C API
// (nef_status codes plus a message) and in Python (NEFError and subclasses).
// Messages name the op in brackets and the shapes involved: "[matmul] inner dimensions differ:
// ...".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nef {

// Numeric values are part of the C ABI (nef_status in nef.h); never renumber.
enum class ErrorCode : int {
  Ok = 0,
  Generic = 1,      // NEFError
  GraphCycle = 2,   // NEFGraphCycleError
  Validation = 3,   // NEFValidationError
  Shape = 4,        // NEFShapeError (also ValueError in Python)
  Type = 5,         // NEFTypeError (also TypeError in Python)
  Unsupported = 6,  // NEFUnsupportedError
  Format = 7,       // NEFFormatError: malformed file, message says where
  OutOfMemory = 8,  // NEFOutOfMemoryError
  Device = 9,       // NEFDeviceError
  Compile = 10,     // NEFCompileError
  // 11 is the C API's NEF_ERROR_INVALID_ARGUMENT.
  Cancelled = 12,  // NEFCancelledError: a run stopped by cancel() before it finished
};

const char* error_code_name(ErrorCode code);  // "NEFShapeError", ...

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

#define NEF_DEFINE_ERROR(Name, Code)                                       \
  class Name : public Error {                                              \
   public:                                                                 \
    explicit Name(const std::string& msg) : Error(ErrorCode::Code, msg) {} \
  };
NEF_DEFINE_ERROR(GraphCycleError, GraphCycle)
NEF_DEFINE_ERROR(ValidationError, Validation)
NEF_DEFINE_ERROR(ShapeError, Shape)
NEF_DEFINE_ERROR(TypeError, Type)
NEF_DEFINE_ERROR(UnsupportedError, Unsupported)
NEF_DEFINE_ERROR(FormatError, Format)
NEF_DEFINE_ERROR(OutOfMemoryError, OutOfMemory)
NEF_DEFINE_ERROR(DeviceError, Device)
NEF_DEFINE_ERROR(CompileError, Compile)
NEF_DEFINE_ERROR(CancelledError, Cancelled)
#undef NEF_DEFINE_ERROR

// Throws the exception type that matches `code` (used when errors cross the C ABI back into C++).
[[noreturn]] void throw_error(ErrorCode code, const std::string& msg);

// Concatenates anything streamable: str("[matmul] got ", shape_str(s)).
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace nef

// Invariant check that stays on in release builds; failing it is a bug in NEF, not bad input.
#define NEF_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond))                                                                          \
      ::nef::throw_error(::nef::ErrorCode::Generic,                                       \
                         ::nef::str("internal check failed: " #cond " ", ##__VA_ARGS__)); \
  } while (0)
