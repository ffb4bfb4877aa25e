// Transfers at device boundaries: explicit "copy" nodes, so plans show and the runtime schedules
// every byte that moves between devices. Constants are not copied per run: each device that reads
// one gets its own constant node, which the runtime uploads once per plan.
#include <map>

#include "nef/error.h"
#include "planner/planner.h"

namespace nef::planner {

void insert_transfers(ir::Graph& g, const std::vector<Target>& targets) {
  const int n = static_cast<int>(g.nodes.size());
  bool crossing = false;  // no value read on another device (one device): nothing to rebuild
  for (int v = 0; v < n && !crossing; ++v)
    for (int in : g.nodes[v].inputs) crossing = crossing || g.nodes[in].device != g.nodes[v].device;
  if (!crossing) return;
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  std::vector<int> remap(n, -1);
  std::map<std::pair<int, int>, int> moved;  // (old value, device) -> new node
  for (int v = 0; v < n; ++v) {
    ir::Node node = std::move(g.nodes[v]);
    for (int& in : node.inputs) {
      int src = remap[in];
      NEF_CHECK(src >= 0, "[planner] input ", in, " of node ", v, " comes later");
      if (out[src].device == node.device) {
        in = src;
        continue;
      }
      auto key = std::make_pair(in, node.device);
      auto it = moved.find(key);
      if (it == moved.end()) {
        ir::Node t;
        const ir::Node& from = out[src];
        const Target& to = targets[node.device];
        if (from.is("constant")) {
          t = from;
          t.name.clear();
          t.device = node.device;
          t.placement_reason = str("constant: on ", to.device->id(), ", where it is read");
        } else {
          const Target& fr = targets[from.device];
          t.op = &ir::get_op("copy");
          t.inputs = {src};
          t.type = from.type;
          t.type.weak = false;
          t.device = node.device;
          t.device_hint = node.device_hint;
          double bytes = double(numel(from.type.shape)) * double(dtype_size(from.type.dtype));
          t.predicted_seconds = transfer_seconds(bytes, fr.profile, fr.device->is_host(),
                                                 to.profile, to.device->is_host());
          t.placement_reason = str("transfer ", fr.device->id(), " -> ", to.device->id());
        }
        out.push_back(std::move(t));
        it = moved.emplace(key, int(out.size()) - 1).first;
      }
      in = it->second;
    }
    out.push_back(std::move(node));
    remap[v] = int(out.size()) - 1;
  }
  g.nodes = std::move(out);
  for (int& o : g.outputs) o = remap[o];
}

void remove_transfers(ir::Graph& g) {
  for (ir::Node& node : g.nodes)
    for (int& in : node.inputs)
      while (g.nodes[in].is("copy")) in = g.nodes[in].inputs[0];
  for (int& o : g.outputs)
    while (g.nodes[o].is("copy")) o = g.nodes[o].inputs[0];
  ir::remove_dead(g);
}

}  // namespace nef::planner
