#include "engine/execute.h"

#include "common/log.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "nef/error.h"
#include "runtime/run.h"

namespace nef::engine {
namespace {

constexpr int kMaxSplitDepth = 3;

// User errors, cancellation and failures of the host itself are not device faults.
bool user_error(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const ShapeError&) {
    return true;
  } catch (const TypeError&) {
    return true;
  } catch (const ValidationError&) {
    return true;
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool out_of_memory(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const OutOfMemoryError&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string message(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

struct Ladder {
  bool evicted = false;
  int splits = 0;
  std::vector<std::string> excluded;  // devices taken out after their failure
};

std::vector<Array> run_with_ladder(std::shared_ptr<const runtime::Plan> plan,
                                   std::vector<Array> bindings, Ladder& ladder) {
  for (;;) {
    std::optional<runtime::StepFailure> failure;
    std::vector<const Array*> done;
    // The run takes the bindings over (no copy per run); a retry takes them back.
    auto run = std::make_unique<runtime::Run>(plan, std::move(bindings));
    run->advance();
    run->wait();
    if (!run->failure()) {
      if (run->cancelled()) throw CancelledError("[run] cancelled");
      return run->outputs();
    }
    failure = run->failure();
    bindings = run->bindings();
    const backend::Device& dev = *plan->devices[failure->device];
    std::exception_ptr err = failure->error;
    if (user_error(err)) std::rethrow_exception(err);
    const bool oom = out_of_memory(err);
    if (dev.is_host() && !(oom && !ladder.evicted)) std::rethrow_exception(err);

    const int node = plan->steps[failure->step].node;
    const std::string what = str("[", plan->graph.nodes[node].op->name, "] on ", dev.id());
    if (oom && !ladder.evicted) {
      // Rung 1: drop what devices cache and retry the same plan.
      ladder.evicted = true;
      int64_t freed = compiler::evict_device_memory();
      warn(str(what, ": out of memory; evicted ", freed, " cached bytes, retrying"));
      run.reset();
      continue;
    }
    // The finished values survive the failed run: the rest is recomputed from them.
    done.assign(plan->graph.nodes.size(), nullptr);
    for (size_t v = 0; v < done.size(); ++v) done[v] = run->value(int(v));
    compiler::CompileOptions opts;
    opts.use_plan_cache = false;
    opts.exclude_devices = ladder.excluded;
    int split = -1;
    if (oom && ladder.splits < kMaxSplitDepth && splittable(plan->graph, node)) {
      // Rung 2: the failing op in halves along its batch dimension, on the same devices.
      split = node;
      ladder.splits++;
      warn(str(what, ": out of memory; retrying it in two halves along dimension 0"));
    } else {
      // Rung 3 (out of memory) and a device failure mid-graph: the rest without that device.
      ladder.excluded.push_back(dev.id());
      opts.exclude_devices = ladder.excluded;
      warn(str(what, ": ", message(err), "; finishing the graph without ", dev.id()));
    }
    counters().device_fallbacks++;
    std::vector<Array> more = bindings;
    ir::Graph rest = remainder(*plan, done, more, split);
    run.reset();
    plan = compiler::compile(std::move(rest), opts);
    bindings = std::move(more);
  }
}

}  // namespace

std::vector<Array> execute(std::shared_ptr<const runtime::Plan> plan, std::vector<Array> bindings) {
  Ladder ladder;
  return run_with_ladder(std::move(plan), std::move(bindings), ladder);
}

}  // namespace nef::engine
