// ONNX TensorProto -> nef::Array: raw_data, the typed repeated fields, and external data files.
#pragma once

#include <memory>
#include <string>

#include "nef/array.h"

namespace onnx {
class TensorProto;
}

namespace nef::onnx_import {

// `what` names the tensor in errors ("initializer 'w1'"). External data is read from files
// relative to `base_dir` (absolute paths and paths leaving base_dir are FormatError; so is any
// external data when base_dir is ""). A dtype NEF lacks is UnsupportedError; sizes that do not
// match the dims are FormatError.
// `owner` (optional) keeps `t` alive: raw data is then borrowed instead of copied.
Array array_from_tensor_proto(const ::onnx::TensorProto& t, const std::string& base_dir,
                              const std::string& what, std::shared_ptr<const void> owner = nullptr);

}  // namespace nef::onnx_import
