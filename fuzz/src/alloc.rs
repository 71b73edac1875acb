//! A global allocator that counts the bytes live on the heap and their
//! peak. Decoders read lengths and counts from their input; one that
//! allocated what a length claims, rather than what the input holds, would
//! let a few bytes take gigabytes. libFuzzer's `-rss_limit_mb` only notices
//! that far too late, so targets hold each run to a budget linear in the
//! input instead.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};

/// The system allocator, counted.
pub struct Counting;

#[global_allocator]
static COUNTING: Counting = Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Relaxed);
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged;
// the counters only observe the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        moved
    }
}

/// Runs `work` and returns its result with the most heap bytes it held at
/// once, beyond what was live when it started.
pub fn peak_during<R>(work: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let result = work();
    (result, PEAK.load(Relaxed).saturating_sub(before))
}

/// Panics when `work` held more than `per_byte` bytes per input byte plus
/// `slack` at once; returns its result otherwise.
pub fn within_budget<R>(
    input_len: usize,
    per_byte: usize,
    slack: usize,
    work: impl FnOnce() -> R,
) -> R {
    let (result, peak) = peak_during(work);
    let budget = input_len.saturating_mul(per_byte).saturating_add(slack);
    assert!(
        peak <= budget,
        "held {peak} bytes at once for {input_len} input bytes (budget {budget})"
    );
    result
}
