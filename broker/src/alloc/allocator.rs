//! The `GlobalAlloc` implementation. It needs `unsafe`, so this module alone
//! opts out of the crate-wide `#![deny(unsafe_code)]`; keep it this small.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use super::{record, Event};

/// A global allocator that delegates every call to [`System`] and counts it.
///
/// Zero-sized and `const`-constructible, so a binary installs it with
/// `#[global_allocator] static A: CountingAllocator = CountingAllocator;`.
/// Read the counters with [`super::count`], [`super::thread_snapshot`] and
/// [`super::snapshot`].
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

// SAFETY: `GlobalAlloc` requires that (a) pointers handed out are valid for
// the requested layout, (b) `dealloc`/`realloc` receive only pointers this
// allocator returned, with the same layout, and forward them correctly, and
// (c) no method unwinds. All of these hold:
//
// * Every method forwards its arguments, unchanged, to the same method of
//   `System`, which itself implements `GlobalAlloc` soundly. The caller's
//   preconditions (non-zero size, `ptr` allocated by this allocator with
//   `layout`, `new_size` valid for `layout.align()`) are exactly `System`'s
//   preconditions, and since every pointer we hand out came from `System`,
//   a pointer given back to us is one `System` allocated with that layout.
//   The pointer `System` returns is returned untouched, null included.
// * The counting (`record`) only reads `layout.size()` / `new_size` and
//   the result's nullness; it never dereferences `ptr`.
// * `record` does not allocate, so it cannot re-enter this allocator: it
//   touches a `const`-initialised thread-local made only of `Cell`s (no lazy
//   initialisation, no `Drop`, hence no destructor registration) and
//   atomics in a `static`.
// * `record` cannot panic: counters use wrapping arithmetic, the
//   thread-local is read with `try_with`, and the stripe index is reduced
//   modulo the array length. So no method unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours; see the impl-level comment.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record(Event::Alloc {
                size: layout.size(),
            });
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours; see the impl-level comment.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(Event::Alloc {
                size: layout.size(),
            });
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout` (we only hand out
        // `System`'s pointers); see the impl-level comment.
        unsafe { System.dealloc(ptr, layout) };
        record(Event::Dealloc {
            size: layout.size(),
        });
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`, and `new_size` is
        // valid per our caller's contract; see the impl-level comment.
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        // On failure the old block is untouched and still live: count nothing.
        if !new_ptr.is_null() {
            record(Event::Realloc {
                old: layout.size(),
                new: new_size,
            });
        }
        new_ptr
    }
}
