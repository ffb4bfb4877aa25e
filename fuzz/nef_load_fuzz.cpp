// libFuzzer target for the .nef loader. Any input may be rejected with a nef::Error; anything
// else (a crash, a sanitizer report, another exception) is a finding. A file that loads must
// also survive a write/read round trip unchanged. The embedded-plan section is parsed and
// validated too (parse_nef_contents); its failures are reported, never thrown.
#include <cstdint>
#include <cstdlib>

#include "format/nef_file.h"
#include "nef/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nef::ir::Graph g;
  try {
    nef::format::NefContents c = nef::format::parse_nef_contents(data, size);
    if (c.embedded) (void)nef::ir::to_text(c.embedded->graph);
    g = std::move(c.graph);
  } catch (const nef::Error&) {
    return 0;
  }
  std::vector<uint8_t> again = nef::format::serialize_nef(g);
  nef::ir::Graph back = nef::format::parse_nef(again.data(), again.size());
  if (nef::ir::to_text(back) != nef::ir::to_text(g)) std::abort();
  return 0;
}
