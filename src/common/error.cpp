#include "nef/error.h"

namespace nef {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok:
      return "OK";
    case ErrorCode::Generic:
      return "NEFError";
    case ErrorCode::GraphCycle:
      return "NEFGraphCycleError";
    case ErrorCode::Validation:
      return "NEFValidationError";
    case ErrorCode::Shape:
      return "NEFShapeError";
    case ErrorCode::Type:
      return "NEFTypeError";
    case ErrorCode::Unsupported:
      return "NEFUnsupportedError";
    case ErrorCode::Format:
      return "NEFFormatError";
    case ErrorCode::OutOfMemory:
      return "NEFOutOfMemoryError";
    case ErrorCode::Device:
      return "NEFDeviceError";
    case ErrorCode::Compile:
      return "NEFCompileError";
    case ErrorCode::Cancelled:
      return "NEFCancelledError";
  }
  return "NEFError";
}

void throw_error(ErrorCode code, const std::string& msg) {
  switch (code) {
    case ErrorCode::GraphCycle:
      throw GraphCycleError(msg);
    case ErrorCode::Validation:
      throw ValidationError(msg);
    case ErrorCode::Shape:
      throw ShapeError(msg);
    case ErrorCode::Type:
      throw TypeError(msg);
    case ErrorCode::Unsupported:
      throw UnsupportedError(msg);
    case ErrorCode::Format:
      throw FormatError(msg);
    case ErrorCode::OutOfMemory:
      throw OutOfMemoryError(msg);
    case ErrorCode::Device:
      throw DeviceError(msg);
    case ErrorCode::Compile:
      throw CompileError(msg);
    case ErrorCode::Cancelled:
      throw CancelledError(msg);
    default:
      throw Error(ErrorCode::Generic, msg);
  }
}

}  // namespace nef
