//! Recycled tensor buffers.
//!
//! Large buffers freed by dropped tensors go into a pool keyed by length;
//! new outputs of the same length take them back. Training repeats the same
//! shapes step after step, so after the first step almost no output touches
//! fresh pages (which the OS would have to fault in and zero).
//!
//! The pool holds at most [`cap_bytes`]: the peak bytes of live tensors seen
//! so far plus a quarter for the scratch buffers kernels take from it (at
//! least 256 MiB), never more than `MACER_BUFFER_POOL_MB` (default 8192).
//! Past that, the size classes used least recently are released first.
//! Pooled buffers are not live tensors and are not counted as such.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Buffers shorter than this (in elements) are left to the allocator.
const MIN_LEN: usize = 8 * 1024;

struct Class {
    bufs: Vec<Vec<f32>>,
    last_use: u64,
}

#[derive(Default)]
struct Pool {
    classes: HashMap<usize, Class>,
    bytes: usize,
    tick: u64,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Pool::default))
}

/// The smallest cap, whatever the live peak.
const MIN_CAP: usize = 256 << 20;

static PEAK_LIVE: AtomicUsize = AtomicUsize::new(0);

/// Records the bytes held by live tensors; the pool may grow to their peak.
pub fn note_live_bytes(bytes: usize) {
    PEAK_LIVE.fetch_max(bytes, Ordering::Relaxed);
}

fn max_cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("MACER_BUFFER_POOL_MB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(8192)
            << 20
    })
}

/// Upper bound on the bytes held by the pool. When a step's tensors are all
/// freed, the pool holds them and the kernels' scratch (weight-gradient
/// partials, transform buffers, an op's temporaries): without the headroom
/// for the scratch, each step would release buffers and fault fresh ones in.
pub fn cap_bytes() -> usize {
    let peak = PEAK_LIVE.load(Ordering::Relaxed);
    (peak + peak / 4).max(MIN_CAP).min(max_cap())
}

/// Bytes currently held by the pool (not by live tensors).
pub fn pooled_bytes() -> usize {
    with_pool(|p| p.bytes)
}

/// Releases every pooled buffer.
pub fn clear() {
    with_pool(|p| {
        p.classes.clear();
        p.bytes = 0;
    });
}

impl Pool {
    /// A pooled buffer of exactly `n` elements, if one is held.
    fn take(&mut self, n: usize) -> Option<Vec<f32>> {
        self.tick += 1;
        let tick = self.tick;
        let class = self.classes.get_mut(&n)?;
        class.last_use = tick;
        let v = class.bufs.pop()?;
        self.bytes -= n * 4;
        Some(v)
    }

    /// Keeps `v` (whole: `len == capacity`) if the pool can hold it within
    /// `cap` bytes, releasing buffers of the size classes used least
    /// recently first. What it does not keep goes into `evicted`.
    fn give(&mut self, v: Vec<f32>, cap: usize, evicted: &mut Vec<Vec<f32>>) {
        let n = v.capacity();
        let bytes = n * 4;
        if bytes > cap {
            evicted.push(v);
            return;
        }
        self.tick += 1;
        let tick = self.tick;
        while self.bytes + bytes > cap {
            let oldest = self
                .classes
                .iter()
                .filter(|(&len, c)| len != n && !c.bufs.is_empty())
                .min_by_key(|(_, c)| c.last_use)
                .map(|(&len, _)| len);
            let Some(len) = oldest else { break };
            let class = self.classes.get_mut(&len).expect("class");
            evicted.push(class.bufs.pop().expect("buffer"));
            self.bytes -= len * 4;
        }
        if self.bytes + bytes > cap {
            evicted.push(v);
            return;
        }
        let class = self.classes.entry(n).or_insert(Class {
            bufs: Vec::new(),
            last_use: tick,
        });
        class.last_use = tick;
        class.bufs.push(v);
        self.bytes += bytes;
    }
}

fn take(n: usize) -> Option<Vec<f32>> {
    if n < MIN_LEN {
        return None;
    }
    with_pool(|p| p.take(n))
}

fn give(v: Vec<f32>) {
    let n = v.capacity();
    if n < MIN_LEN || v.len() != n {
        return;
    }
    let cap = cap_bytes();
    // Dropped outside the lock.
    let mut evicted = Vec::new();
    with_pool(|p| p.give(v, cap, &mut evicted));
    drop(evicted);
}

/// A buffer of `n` f32 whose contents are unspecified (stale values from an
/// earlier tensor, or zeros). The caller must write every element.
pub fn uninit_f32(n: usize) -> Vec<f32> {
    take(n).unwrap_or_else(|| vec![0f32; n])
}

/// A buffer of `n` zeros.
pub fn zeros_f32(n: usize) -> Vec<f32> {
    match take(n) {
        Some(mut v) => {
            fill_par(&mut v, 0.0);
            v
        }
        None => vec![0f32; n],
    }
}

/// A buffer of `n` i32 whose contents are unspecified; see [`uninit_f32`].
pub fn uninit_i32(n: usize) -> Vec<i32> {
    match take(n) {
        Some(v) => {
            let mut v = std::mem::ManuallyDrop::new(v);
            // SAFETY: f32 and i32 have the same size and alignment, so the
            // allocation's layout is unchanged, and every bit pattern is a
            // valid i32.
            unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut i32, v.len(), v.capacity()) }
        }
        None => vec![0i32; n],
    }
}

/// Returns a buffer to the pool (or frees it).
pub fn recycle_f32(v: Vec<f32>) {
    give(v)
}

/// Returns an i32 buffer to the pool (or frees it).
pub fn recycle_i32(v: Vec<i32>) {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: as in `uninit_i32`, the layouts are identical and every bit
    // pattern is a valid f32.
    give(unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut f32, v.len(), v.capacity()) })
}

/// A scratch buffer that goes back to the pool when dropped.
pub struct Scratch(Vec<f32>);

impl Scratch {
    /// `n` elements with unspecified contents.
    pub fn uninit(n: usize) -> Scratch {
        Scratch(uninit_f32(n))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0))
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

/// `v.fill(x)`, split over the thread pool for large buffers.
pub fn fill_par(v: &mut [f32], x: f32) {
    use rayon::prelude::*;
    if v.len() >= 2 * crate::cpu::CHUNK {
        crate::pool::install(|| v.par_chunks_mut(crate::cpu::CHUNK).for_each(|c| c.fill(x)));
    } else {
        v.fill(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's bookkeeping on a pool of the test's own (the shared one
    /// is used by the tests running beside it).
    #[test]
    fn reuses_buffers_of_the_same_length_and_evicts_the_least_recent() {
        let (a, b, c) = (MIN_LEN * 3 + 1, MIN_LEN * 2, MIN_LEN * 5);
        let mut pool = Pool::default();
        let mut evicted = Vec::new();
        assert!(pool.take(a).is_none());
        let v = vec![7f32; a];
        let ptr = v.as_ptr();
        pool.give(v, usize::MAX, &mut evicted);
        assert_eq!(pool.bytes, a * 4);
        assert!(pool.take(b).is_none(), "only the same length is reused");
        let w = pool.take(a).expect("the buffer given back");
        assert_eq!((w.as_ptr(), w.len(), pool.bytes), (ptr, a, 0));
        assert!(pool.take(a).is_none());

        // a and b fill a cap of a + b; under a cap of a + c, giving c
        // releases the class used least recently (a, given before b), and
        // keeps c.
        let cap = (a + b) * 4;
        pool.give(w, cap, &mut evicted);
        pool.give(vec![1f32; b], cap, &mut evicted);
        assert_eq!((pool.bytes, evicted.len()), ((a + b) * 4, 0));
        pool.give(vec![2f32; c], (a + c) * 4, &mut evicted);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].as_ptr(), ptr);
        assert_eq!(pool.bytes, (b + c) * 4);
        // What cannot fit even alone is not kept, and releases nothing.
        pool.give(vec![3f32; c + 1], c * 4, &mut evicted);
        assert_eq!((pool.bytes, evicted.len()), ((b + c) * 4, 2));
        assert_eq!(pool.take(c).map(|v| v.len()), Some(c));
        assert_eq!(pool.take(b).map(|v| v.len()), Some(b));
        assert_eq!(pool.bytes, 0);
    }

    #[test]
    fn pooled_buffers_come_back_with_the_requested_contents() {
        let n = MIN_LEN * 3 + 1;
        let mut v = uninit_f32(n);
        v.fill(7.0);
        recycle_f32(v);
        let w = uninit_f32(n);
        assert_eq!(w.len(), n);
        let z = zeros_f32(n);
        assert!(z.len() == n && z.iter().all(|&x| x == 0.0));
        recycle_f32(w);
        recycle_f32(z);
        let i = uninit_i32(n);
        assert_eq!(i.len(), n);
        recycle_i32(i);
        assert!(pooled_bytes() <= cap_bytes());
    }
}
