//! `alloc::use_one_malloc_arena`, which the broker calls first thing in `main`: afterwards a
//! new thread's allocations come from the main arena (the `brk` heap, below the program
//! break), not from an arena of its own (memory mapped above it).
//!
//! Run as a plain program (`harness = false`), so that no other thread has allocated before
//! the limit is set. It runs itself a second time without the limit and checks that there the
//! thread's memory does come from elsewhere: the check can tell the two apart.
#![allow(unsafe_code)]

use std::process::Command;

/// Set in the second run: leave glibc's default arenas.
const DEFAULT_ARENAS: &str = "FERRUMQ_TEST_DEFAULT_ARENAS";

/// Whether a small allocation made on a new thread lies in the main arena's heap.
fn new_thread_allocates_from_main_arena() -> bool {
    let address = std::thread::spawn(|| {
        let block = Box::new([7u8; 64]);
        std::hint::black_box(&*block as *const [u8; 64] as usize)
    })
    .join()
    .expect("the allocating thread ran");
    // SAFETY: `sbrk(0)` only reads the current program break; it changes nothing.
    let program_break = unsafe { libc::sbrk(0) } as usize;
    address < program_break
}

fn main() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(!ferrumq_broker::alloc::use_one_malloc_arena());
        println!("malloc_arena: not glibc; the call reports that it changed nothing");
        return;
    }
    if std::env::var_os(DEFAULT_ARENAS).is_some() {
        assert!(
            !new_thread_allocates_from_main_arena(),
            "with glibc's default, a new thread allocates from an arena of its own"
        );
        return;
    }
    assert!(
        ferrumq_broker::alloc::use_one_malloc_arena(),
        "glibc accepted M_ARENA_MAX=1"
    );
    assert!(
        new_thread_allocates_from_main_arena(),
        "after use_one_malloc_arena, a new thread allocates from the main arena"
    );
    let exe = std::env::current_exe().expect("the test's own path");
    let status = Command::new(exe)
        .env(DEFAULT_ARENAS, "1")
        .status()
        .expect("the test ran itself again");
    assert!(status.success(), "the default-arena run: {status}");
    println!("malloc_arena: one arena with the limit, a thread arena without: ok");
}
