// .npy read/write (numpy format versions 1.0-3.0, C order; Fortran-order arrays are read too).
// Every header field is checked: a malformed file gives FormatError naming the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nef/array.h"

namespace nef::format {

Array read_npy(const std::string& path);
Array parse_npy(const uint8_t* data, size_t size);
void write_npy(const std::string& path, const Array& a);
std::vector<uint8_t> serialize_npy(const Array& a);

}  // namespace nef::format
