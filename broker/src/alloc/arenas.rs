//! One `malloc` arena for the whole process.
//!
//! glibc gives threads that allocate at the same time arenas of their own (up to eight per
//! core), each a heap that grows and is reused apart from the others. The broker's message path
//! allocates nothing in steady state (pools), so what those arenas buy, `malloc` without lock
//! contention, is worth little here, while what they cost shows on every connection: objects
//! made on one worker and freed on another leave holes in two heaps instead of one. Measured
//! with `loadgen --scenario storm` (10,000 connections, then idle), resident memory per idle
//! connection was 688-717 bytes with glibc's default and 655-667 bytes with one arena.
#![allow(unsafe_code)]

/// Limits the process to one `malloc` arena. Call it first thing in `main`: glibc fixes the
/// limit the first time a second thread needs an arena, after which this changes nothing.
/// Returns whether the C library took the setting (always false where the C library is not
/// glibc, whose allocator has no arenas to limit).
pub fn use_one_malloc_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets an allocator parameter: it takes two integers, touches
        // no memory of ours, takes glibc's own lock for the change and is documented as
        // callable at any time; `M_ARENA_MAX` with a positive value is a valid request.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
