// Host memory for Storage::allocate. Small blocks come from malloc; large ones (>= 1 MiB) from
// mmap, and a freed large block is kept for the next allocation of its size class instead of
// being unmapped: a run's fresh outputs (handed to numpy, freed when the user drops them) then
// reuse pages that are already faulted in, instead of paying the kernel's page faults and page
// zeroing, which cost more than the arithmetic of an elementwise op over the same bytes.
//
// Bound: the cache never holds more than it can give back without growing the process: a miss
// first releases cached blocks at least as large in total as the new one (so cached + in use
// stays at the high-water mark of what was in use), and the cache holds at most
// host_cache_limit() bytes. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nef {

// 64-byte aligned host memory of at least `nbytes` (nbytes > 0); nullptr when the system has
// none. Release with host_free(p, nbytes) with the same nbytes.
void* host_alloc(size_t nbytes);
void host_free(void* p, size_t nbytes) noexcept;

// Unmaps every cached block (the out-of-memory ladder's first rung calls it through the CPU
// device's trim()). Returns the bytes released.
int64_t host_cache_trim() noexcept;

// Bytes held in the cache now, and the most it keeps (min(RAM / 16, 2 GiB); NEF_HOST_CACHE=0
// (or off/false/no) turns the cache off).
int64_t host_cache_bytes() noexcept;
int64_t host_cache_limit() noexcept;

// File mappings NEF made (the .nef and GGUF readers' MappedFile) note themselves here while they
// live, so that host_pageout touches nothing else.
void host_note_file_mapping(const void* p, size_t nbytes) noexcept;
void host_forget_file_mapping(const void* p) noexcept;
// Whether [p, p + nbytes) lies inside one noted file mapping.
bool host_in_file_mapping(const void* p, size_t nbytes) noexcept;

// A hint that [p, p + nbytes) will not be read for a while: when it lies inside a noted file
// mapping, its whole pages are reclaimed (madvise MADV_PAGEOUT: dropped, read again from the file
// when touched). Anything else (a caller's array, heap memory) is left alone: its pages would go
// to swap. The contents never change. No-op where the system lacks it.
void host_pageout(const void* p, size_t nbytes) noexcept;

}  // namespace nef
