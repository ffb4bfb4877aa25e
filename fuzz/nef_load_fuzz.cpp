// libFuzzer target for the .nef loader. Any input may be rejected with a nef::Error; anything
// else (a crash, a sanitizer report, another exception) is a finding. A file that loads must
// also survive a write/read round trip unchanged.
#include <cstdint>
#include <cstdlib>

#include "format/nef_file.h"
#include "nef/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nef::ir::Graph g;
  try {
    g = nef::format::parse_nef(data, size);
  } catch (const nef::Error&) {
    return 0;
  }
  std::vector<uint8_t> again = nef::format::serialize_nef(g);
  nef::ir::Graph back = nef::format::parse_nef(again.data(), again.size());
  if (nef::ir::to_text(back) != nef::ir::to_text(g)) std::abort();
  return 0;
}
