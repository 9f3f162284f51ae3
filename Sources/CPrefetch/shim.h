// A software prefetch for the Swift kernels: clang's `_mm_prefetch` is a macro, which Swift
// cannot import; this inline function compiles to the one instruction.
#pragma once

/// Brings the cache line at `p` towards L1 (`prefetcht0`); never faults.
static inline __attribute__((always_inline)) void triage_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}
