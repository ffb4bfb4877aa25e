// Runtime ISA dispatch for auto-vectorized loops: GCC emits AVX-512, AVX2 and baseline clones
// of a function marked NEF_SIMD_CLONES and picks one at load time (ifunc). Clang (used for the
// fuzz and sanitizer builds) does not support clones of templates, so there it is a no-op.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(NEF_NO_CLONES)
#define NEF_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NEF_SIMD_CLONES
#endif
