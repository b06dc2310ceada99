//! Live tensors by handle, and the allocation counters tests read.
//!
//! Handles are never reused, so a stale handle is always reported as freed
//! instead of silently naming a newer tensor.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

#[derive(Default)]
pub struct Registry {
    tensors: HashMap<u32, Tensor>,
    next: u32,
    live_bytes: usize,
}

impl Registry {
    pub fn insert(&mut self, t: Tensor) -> u32 {
        self.next = self.next.checked_add(1).expect("tensor handles exhausted");
        self.live_bytes += t.nbytes();
        crate::buffers::note_live_bytes(self.live_bytes);
        self.tensors.insert(self.next, t);
        self.next
    }

    pub fn get(&self, h: u32) -> Result<&Tensor> {
        self.tensors.get(&h).ok_or(Error::BadHandle(h))
    }

    /// Takes a tensor out for in-place mutation; `put_back` must follow.
    pub fn take(&mut self, h: u32) -> Result<Tensor> {
        let t = self.tensors.remove(&h).ok_or(Error::BadHandle(h))?;
        self.live_bytes -= t.nbytes();
        Ok(t)
    }

    pub fn put_back(&mut self, h: u32, t: Tensor) {
        self.live_bytes += t.nbytes();
        self.tensors.insert(h, t);
    }

    pub fn free(&mut self, h: u32) -> Result<()> {
        self.take(h).map(drop)
    }

    pub fn live_count(&self) -> usize {
        self.tensors.len()
    }

    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }
}

/// The process-wide registry. Deno calls from one thread; the lock only
/// guards against misuse.
pub static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

pub fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Registry::default))
}
