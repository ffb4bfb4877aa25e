// libFuzzer target for the .npy reader: rejection must be a FormatError; an accepted file must
// round-trip through the writer to the same shape, dtype and bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "format/npy.h"
#include "nef/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nef::Array a;
  try {
    a = nef::format::parse_npy(data, size);
  } catch (const nef::FormatError&) {
    return 0;
  }
  std::vector<uint8_t> again = nef::format::serialize_npy(a);
  nef::Array b = nef::format::parse_npy(again.data(), again.size());
  nef::Array ca = a.contiguous();
  if (b.shape != a.shape || b.dtype != a.dtype ||
      (a.nbytes() && std::memcmp(ca.data(), b.data(), a.nbytes()) != 0))
    std::abort();
  return 0;
}
