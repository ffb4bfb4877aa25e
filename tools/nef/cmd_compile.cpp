// `nef compile FILE -o OUT.nef`: rewrites a .nef with its compiled plan embedded
// (compiler_cache "embedded"), so loading OUT skips the optimizer passes and the planner.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "compiler/embedded_plan.h"
#include "format/nef_file.h"

namespace nef::cli {

int cmd_compile(const std::string& file, const std::string& out) {
  require_file(file, "graph file");
  ir::Graph g = format::read_nef(file);
  format::WriteOptions opts;
  // Keep the source file's target; the header was validated by read_nef above.
  auto header = nlohmann::json::parse(format::read_nef_header_json(file));
  if (auto it = header.find("target"); it != header.end() && it->is_string())
    opts.target = it->get<std::string>();
  opts.embedded = compiler::make_embedded(g);
  format::write_nef(out, g, opts);
  std::cout << "wrote " << out << " (embedded plan)" << std::endl;
  return 0;
}

}  // namespace nef::cli
