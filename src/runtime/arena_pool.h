// Idle arenas shared by the runs of every plan, per device. A run takes the smallest idle arena
// of at least the bytes its plan needs (best fit; when none is large enough, the smaller idle
// ones are dropped before the run allocates its own) and gives it back when it ends, so a process
// that runs many plans one after another (an LLM's prompt buckets, a model's batch sizes) keeps
// about its largest arena rather than one arena per cached plan.
//
// Thread-safe. Concurrent runs take different arenas; at most kMaxIdlePerDevice idle arenas are
// kept per device (the smallest are dropped first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backends/backend.h"

namespace nef::runtime {

inline constexpr int kMaxIdlePerDevice = 4;

// An idle arena of `dev` with at least `nbytes`, or nullptr when none is idle.
std::shared_ptr<Storage> take_arena(const backend::Device& dev, size_t nbytes);
// Makes `arena` (allocated by `dev`, no longer referenced by any run) idle again.
void give_back_arena(const backend::Device& dev, std::shared_ptr<Storage> arena);
// Drops every idle arena (the out-of-memory ladder); returns the bytes freed.
int64_t evict_idle_arenas();
// Bytes held by idle arenas (tests, nef.stats-like reports).
int64_t idle_arena_bytes();

}  // namespace nef::runtime
