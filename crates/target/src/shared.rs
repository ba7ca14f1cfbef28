//! Per-export state shared by every worker of one target (one per thread).
//!
//! The data path only *reads* it: each worker caches a copy and compares one
//! atomic generation number per frame, so there is no lock per frame. The
//! rare mutations (config set, mask edit, reservation) take the mutex, apply
//! to the master copy, bump the generation and ask the driver to persist.

use crate::state::ExportState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Durable state and size of one export, shared between workers.
#[derive(Debug)]
pub struct SharedExport {
    state: Mutex<ExportState>,
    generation: AtomicU64,
    sectors: AtomicU64,
}

impl SharedExport {
    /// State loaded from the state file (or fresh) and the store size in sectors.
    pub fn new(state: ExportState, sectors: u64) -> Arc<SharedExport> {
        Arc::new(SharedExport {
            state: Mutex::new(state),
            generation: AtomicU64::new(1),
            sectors: AtomicU64::new(sectors),
        })
    }

    /// A copy of the current durable state (to write the state file).
    pub fn snapshot(&self) -> ExportState {
        self.lock().clone()
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors.load(Ordering::Acquire)
    }

    /// Records a new size; returns true if it changed (announce then).
    pub fn set_sectors(&self, sectors: u64) -> bool {
        self.sectors.swap(sectors, Ordering::AcqRel) != sectors
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Applies `f` to the master copy; if it returns true (changed), the
    /// generation is bumped so other workers refresh their caches.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut ExportState) -> (bool, R)) -> (u64, R) {
        let mut st = self.lock();
        let (changed, r) = f(&mut st);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        (self.generation.load(Ordering::Acquire), r)
    }

    /// Copies the master into `cache` (reusing its allocations) and returns
    /// the generation copied.
    pub(crate) fn refresh(&self, cache: &mut ExportState) -> u64 {
        let st = self.lock();
        cache.serial.clone_from(&st.serial);
        cache.config.clone_from(&st.config);
        cache.mask.clone_from(&st.mask);
        cache.reserve.clone_from(&st.reserve);
        self.generation.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, ExportState> {
        // A panic while holding the lock cannot leave ExportState half-valid
        // (every mutation is a plain assignment/push), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
