//! Per-export state shared by every worker of one target (one per thread).
//!
//! The data path only *reads* it: each worker caches a copy and compares one
//! atomic generation number per frame, so there is no lock per frame. The
//! rare mutations (config set, mask edit, reservation) take the mutex, apply
//! to the master copy, bump the generation and ask the driver to persist.
//! The generation is read and bumped `SeqCst`: the write gate
//! ([`crate::fence`]) relies on one total order of it and the gate's counts.

use crate::fence::WriteGate;
use crate::state::{ExportState, MASK_CAPACITY};
use aoe_wire::{Mac, MAX_CONFIG_LEN};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Durable state and size of one export, shared between workers.
#[derive(Debug)]
pub struct SharedExport {
    state: Mutex<ExportState>,
    generation: AtomicU64,
    sectors: AtomicU64,
    /// Writes in flight, for Reserve replies that must outlast them.
    pub(crate) gate: WriteGate,
    fenced: AtomicU64,
    reserve_refused: AtomicU64,
}

impl SharedExport {
    /// State loaded from the state file (or fresh) and the store size in sectors.
    pub fn new(state: ExportState, sectors: u64) -> Arc<SharedExport> {
        Arc::new(SharedExport {
            state: Mutex::new(state),
            generation: AtomicU64::new(1),
            sectors: AtomicU64::new(sectors),
            gate: WriteGate::default(),
            fenced: AtomicU64::new(0),
            reserve_refused: AtomicU64::new(0),
        })
    }

    /// ATA commands refused (ATA ERR/ABRT) because the reserve list excludes
    /// their sender, by every worker since start.
    pub fn fenced_commands(&self) -> u64 {
        self.fenced.load(Ordering::Relaxed)
    }

    /// Reserve Set/Force Set refused: the sender was outside the allow (mask)
    /// list, or (Set) outside a non-empty reserve list.
    pub fn reserve_refused(&self) -> u64 {
        self.reserve_refused.load(Ordering::Relaxed)
    }

    pub(crate) fn count_fenced(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_reserve_refused(&self) {
        self.reserve_refused.fetch_add(1, Ordering::Relaxed);
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

    /// Replaces the MAC mask list (duplicates dropped), as an operator's config
    /// reload does. Workers see it on their next frame. Returns whether it
    /// changed (persist then); refuses a list over [`MASK_CAPACITY`] entries,
    /// the same bound the Mac Mask List command enforces.
    pub fn set_mask(&self, macs: &[Mac]) -> Result<bool, String> {
        let mut mask: Vec<Mac> = Vec::with_capacity(macs.len());
        for m in macs {
            if !mask.contains(m) {
                mask.push(*m);
            }
        }
        if mask.len() > MASK_CAPACITY {
            return Err(format!(
                "mask list of {} MACs is over the {MASK_CAPACITY} the target holds",
                mask.len()
            ));
        }
        Ok(self.replace(|st| &mut st.mask, mask))
    }

    /// Replaces the Query Config string, as an operator's config reload does.
    /// Returns whether it changed; refuses more than [`MAX_CONFIG_LEN`] bytes,
    /// the same bound Query Config "set" enforces.
    pub fn set_config_string(&self, config: &[u8]) -> Result<bool, String> {
        if config.len() > MAX_CONFIG_LEN {
            return Err(format!(
                "config string of {} bytes is over the {MAX_CONFIG_LEN} AoE allows",
                config.len()
            ));
        }
        Ok(self.replace(|st| &mut st.config, config.to_vec()))
    }

    /// Sets the state's `field` to `value`; whether that changed it.
    fn replace<T: PartialEq>(
        &self,
        field: impl FnOnce(&mut ExportState) -> &mut T,
        value: T,
    ) -> bool {
        self.mutate(|st| {
            let f = field(st);
            let changed = *f != value;
            if changed {
                *f = value;
            }
            (changed, changed)
        })
        .1
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Applies `f` to the master copy; if it returns true (changed), the
    /// generation is bumped so other workers refresh their caches.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut ExportState) -> (bool, R)) -> (u64, R) {
        let mut st = self.lock();
        let (changed, r) = f(&mut st);
        if changed {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        (self.generation.load(Ordering::SeqCst), r)
    }

    /// Copies the master into `cache` (reusing its allocations) and returns
    /// the generation copied.
    pub(crate) fn refresh(&self, cache: &mut ExportState) -> u64 {
        let st = self.lock();
        cache.serial.clone_from(&st.serial);
        cache.config.clone_from(&st.config);
        cache.mask.clone_from(&st.mask);
        cache.reserve.clone_from(&st.reserve);
        self.generation.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, ExportState> {
        // A panic while holding the lock cannot leave ExportState half-valid
        // (every mutation is a plain assignment/push), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> Arc<SharedExport> {
        SharedExport::new(ExportState::with_random_serial(7), 100)
    }

    #[test]
    fn set_mask_bumps_generation_only_on_change() {
        let sh = export();
        let g0 = sh.generation();
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!(sh.set_mask(&[a, b, a]), Ok(true));
        assert_eq!(sh.snapshot().mask, vec![a, b]);
        let g1 = sh.generation();
        assert!(g1 > g0);
        assert_eq!(sh.set_mask(&[a, b]), Ok(false));
        assert_eq!(sh.generation(), g1);
        let mut cache = ExportState::default();
        assert_eq!(sh.refresh(&mut cache), g1);
        assert_eq!(cache.mask, vec![a, b]);
        assert_eq!(sh.set_mask(&[]), Ok(true));
        assert!(sh.snapshot().mask.is_empty());
    }

    #[test]
    fn set_mask_refuses_over_capacity() {
        let sh = export();
        let many: Vec<Mac> = (0..=MASK_CAPACITY)
            .map(|i| Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]))
            .collect();
        let g = sh.generation();
        assert!(sh.set_mask(&many).unwrap_err().contains("over the"));
        assert_eq!(sh.generation(), g);
        assert_eq!(sh.set_mask(&many[..MASK_CAPACITY]), Ok(true));
        assert_eq!(sh.snapshot().mask.len(), MASK_CAPACITY);
    }

    #[test]
    fn set_config_string_checks_length_and_bumps_generation() {
        let sh = export();
        let g = sh.generation();
        assert_eq!(sh.set_config_string(b"reloaded"), Ok(true));
        assert_eq!(sh.snapshot().config, b"reloaded");
        assert!(sh.generation() > g);
        let g = sh.generation();
        assert_eq!(sh.set_config_string(b"reloaded"), Ok(false));
        assert_eq!(sh.generation(), g);
        assert!(sh.set_config_string(&[b'x'; MAX_CONFIG_LEN + 1]).is_err());
        assert_eq!(sh.snapshot().config, b"reloaded");
        assert_eq!(sh.set_config_string(&[b'x'; MAX_CONFIG_LEN]), Ok(true));
    }
}
