// Users of every node in one flat array (CSR), for the passes that walk producer -> consumer:
// two allocations for the whole graph instead of one vector per node.
#pragma once

#include <span>
#include <vector>

#include "ir/graph.h"

namespace nef::passes {

class Users {
 public:
  // Users of each node among the nodes with live[i] (earlier passes leave dead nodes for the
  // final dce: their uses do not count), in increasing order; a node reading v twice is listed
  // once when `distinct`, else twice.
  Users(const ir::Graph& g, const std::vector<bool>& live, bool distinct) {
    const size_t n = g.nodes.size();
    begin_.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i)
      if (live[i])
        for (int in : g.nodes[i].inputs) begin_[in + 1]++;
    for (size_t v = 0; v < n; ++v) begin_[v + 1] += begin_[v];
    list_.resize(begin_[n]);
    std::vector<int> fill(begin_.begin(), begin_.end() - 1);
    for (size_t i = 0; i < n; ++i)
      if (live[i])
        for (int in : g.nodes[i].inputs)
          if (!distinct || fill[in] == begin_[in] || list_[fill[in] - 1] != int(i))
            list_[fill[in]++] = int(i);
    end_.assign(fill.begin(), fill.end());
  }
  std::span<const int> of(int v) const {
    return {list_.data() + begin_[v], size_t(end_[v] - begin_[v])};
  }

 private:
  std::vector<int> begin_, end_, list_;
};

}  // namespace nef::passes
