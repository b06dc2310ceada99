//! The library's allocator: the system's, with large blocks aligned to
//! cache lines.
//!
//! glibc serves large blocks from `mmap` with a 16-byte header, so their
//! data starts 16 bytes past a page: every 64-byte vector load and store the
//! kernels consider aligned would straddle two cache lines. Aligning large
//! blocks to 64 bytes makes them whole lines.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes are aligned to [`LINE`].
const LARGE: usize = 4096;
const LINE: usize = 64;

pub struct LineAligned;

/// The layout a block is really allocated with: a function of the
/// caller's layout only, so that freeing and resizing find it again.
fn adjusted(layout: Layout) -> Layout {
    if layout.size() >= LARGE && layout.align() < LINE {
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every call forwards to `System` with a layout derived from the
// caller's by `adjusted`, which depends only on that layout, so a block is
// always freed or resized with the layout it was allocated with.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(adjusted(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(adjusted(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, adjusted(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = adjusted(layout);
        let new = adjusted(Layout::from_size_align_unchecked(new_size, layout.align()));
        if old.align() == new.align() {
            return System.realloc(ptr, old, new_size);
        }
        // The size crosses LARGE, so the alignment changes: move the block.
        let fresh = System.alloc(new);
        if !fresh.is_null() {
            std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
            System.dealloc(ptr, old);
        }
        fresh
    }
}

#[global_allocator]
static ALLOCATOR: LineAligned = LineAligned;

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_start_on_a_cache_line() {
        for n in [1024, 1025, 100_000, 3 << 20] {
            let v = vec![1f32; n];
            assert_eq!(v.as_ptr() as usize % super::LINE, 0, "{n} elements");
        }
    }

    #[test]
    fn growing_and_shrinking_across_the_threshold_keeps_the_contents() {
        let mut v: Vec<u32> = (0..100).collect();
        v.extend(100..50_000);
        assert_eq!(v.as_ptr() as usize % super::LINE, 0);
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(v, (0..10).collect::<Vec<u32>>());
        v.extend(10..20_000);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    }
}
