//! Silent bit flips (integrity off): what the reference model can no longer promise.
//!
//! Without checksums nothing notices a flipped bit on a member. A flip on a mirror
//! half or a data chunk is returned by the reads it serves; a flip on parity only by
//! reconstructions through it. So a flip taints the volume sectors it can reach —
//! the one sector a mirror copy holds, or every data column at that offset of the
//! parity row — and the model lets reads of them return anything (without pinning)
//! until a repair scrub that started after the flip has finished. The array takes no
//! other fault meanwhile. What the scrub leaves:
//! * a flip on parity is gone: RAID 5 recomputes P from the data, RAID 6 locates P
//!   or Q (or a write recomputed it);
//! * a flip on a data chunk: RAID 6 locates the column from P and Q and corrects it
//!   (md's raid6check), unless a write into the row meanwhile moved the flip into P
//!   and Q (read-modify-write of that sector) or sealed it into them (reconstruct-
//!   write of another); RAID 5 and the mirrors cannot tell which copy is wrong and
//!   make the parity or the other copies agree with it. That sector then stays
//!   unknown until rewritten (the first read after the scrub pins it: the copies
//!   agree by then).

use super::model::Model;
use crate::layout::Level;

struct Taint {
    array: usize,
    /// Volume sectors the flip can reach.
    sectors: Vec<u64>,
    /// The volume sector whose data the flip changed (None: it hit parity).
    data: Option<u64>,
    /// A client write touched one of them.
    written: bool,
    /// A repair scrub started after the flip.
    scrubbing: bool,
}

/// What happened to the flips once scrubbed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Resolved {
    /// Flips the scrub undid: their sectors are known again.
    pub(super) corrected: u64,
    /// Flips whose data sector stays unknown until rewritten.
    pub(super) left: u64,
}

#[derive(Default)]
pub(super) struct Taints {
    list: Vec<Taint>,
}

impl Taints {
    pub(super) fn add(&mut self, array: usize, sectors: Vec<u64>, data: Option<u64>) {
        self.list.push(Taint {
            array,
            sectors,
            data,
            written: false,
            scrubbing: false,
        });
    }

    /// May a read of volume sector `v` return anything?
    pub(super) fn covers(&self, v: u64) -> bool {
        self.list.iter().any(|t| t.sectors.contains(&v))
    }

    pub(super) fn on(&self, array: usize) -> bool {
        self.list.iter().any(|t| t.array == array)
    }

    /// Arrays with a flip that no repair scrub has started on yet.
    pub(super) fn unscrubbed(&self) -> Vec<usize> {
        let mut a: Vec<usize> = self
            .list
            .iter()
            .filter(|t| !t.scrubbing)
            .map(|t| t.array)
            .collect();
        a.dedup();
        a
    }

    pub(super) fn written(&mut self, offset: u64, sectors: u64) {
        for t in &mut self.list {
            if t.sectors
                .iter()
                .any(|&v| v >= offset && v < offset + sectors)
            {
                t.written = true;
            }
        }
    }

    pub(super) fn repair_started(&mut self, array: usize) {
        for t in self.list.iter_mut().filter(|t| t.array == array) {
            t.scrubbing = true;
        }
    }

    /// A repair scrub of `array` finished: resolve the flips it covered.
    pub(super) fn repair_finished(
        &mut self,
        array: usize,
        level: Level,
        model: &mut Model,
    ) -> Resolved {
        let mut r = Resolved::default();
        self.list.retain(|t| {
            if t.array != array || !t.scrubbing {
                return true;
            }
            match t.data {
                Some(v) if level != Level::Raid6 || t.written => {
                    r.left += 1;
                    model.failed(v, 1);
                }
                _ => r.corrected += 1,
            }
            false
        });
        r
    }
}
