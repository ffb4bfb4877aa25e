// `nef quantize IN.nef -o OUT.nef --int8`: weights of matmuls by constant matrices to int8.
#include <cstdio>

#include "cli.h"

namespace nef::cli {

int cmd_quantize(const std::string& in, const std::string& out, bool int8) {
  if (!int8) throw UsageError("nef quantize: choose a scheme (--int8)");
  LoadedGraph::QuantizeReport r;
  LoadedGraph q = LoadedGraph::load(in).quantize("int8", &r);
  q.save(out);
  std::printf("%s: %d matmuls quantized to int8 (weights %.1f MB -> %.1f MB), %d left in float\n",
              out.c_str(), r.quantized, double(r.bytes_before) / 1e6, double(r.bytes_after) / 1e6,
              r.kept);
  if (r.convs_quantized + r.convs_kept > 0)
    std::printf("%d convs quantized to int8, %d left in float\n", r.convs_quantized, r.convs_kept);
  return 0;
}

}  // namespace nef::cli
