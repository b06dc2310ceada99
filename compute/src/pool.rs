//! The worker threads every kernel runs on; the count is settable at run time.

use std::sync::{Arc, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn build(threads: usize) -> Arc<ThreadPool> {
    Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool"),
    )
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Replaces the pool; 0 means one thread per core.
pub fn set_threads(threads: usize) {
    let n = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    *POOL.write().unwrap_or_else(|p| p.into_inner()) = Some(build(n));
}

pub fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return p.clone();
    }
    let mut w = POOL.write().unwrap_or_else(|p| p.into_inner());
    w.get_or_insert_with(|| build(default_threads())).clone()
}

pub fn threads() -> usize {
    pool().current_num_threads()
}

/// Runs `f` on the pool, so rayon loops and GEMM inside use its threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}
