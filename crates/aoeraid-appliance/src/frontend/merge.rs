//! Requests merged into one store operation: consecutive reads (or writes)
//! of one export that arrive in one wake-up go to a store that can as one
//! vectored read (write), each request's data still landing in (coming from)
//! its own buffer, and the completion answers each of them.
//!
//! A run is collected in arrival order and only ever grows at its end: the
//! next request extends it if it goes the same way (read or write), to the
//! same export, starting at the byte where the run ends, within the store's
//! [`RunBounds`]. Anything else — another export, the other direction, a
//! gap, an overlap, a full run — starts the run first and opens a new one,
//! so requests reach the store in the order they came, exactly as without
//! merging; a run only waits until the wake-up's last frame (or the next
//! request that does not extend it). Nothing else changes for a request in a
//! run: the core counts each write in the store and in the export's write
//! gate until its own completion, so a FLUSH still waits for it and a
//! Reserve reply that must see it land still does.

use super::driver::{Port, ReadStart, StoreIo};
use aoe_target::ExportId;

/// How far a store merges requests of one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunBounds {
    /// Most requests in one operation.
    pub(crate) max_requests: usize,
    /// Most bytes in one operation.
    pub(crate) max_bytes: usize,
}

/// A store that takes a run of requests as one operation.
pub(crate) trait Merge<P: Port> {
    /// How far requests of `export` are merged; `None`: not at all (each
    /// goes to the store alone, as it comes).
    fn bounds(&self, export: ExportId) -> Option<RunBounds>;
    /// Keeps the received frame of the next write of a run until the run
    /// starts ([`Merge::write_run`] takes the kept frames in order).
    fn keep(&mut self, port: &mut P, frame: P::Frame);
    /// Starts the reads of `run` (consecutive, in order, one export) as one
    /// operation; all of them or none.
    fn read_run(&mut self, port: &mut P, run: &[StoreIo]) -> ReadStart;
    /// Starts the writes of `run` from the kept frames as one operation,
    /// durable by itself if `durable` (see [`super::driver::Store::write`]);
    /// false if it could not (none started, the frames are given back).
    fn write_run(&mut self, port: &mut P, run: &[StoreIo], durable: bool) -> bool;
}

/// The run being collected.
#[derive(Debug, Default)]
pub(crate) struct Run {
    write: bool,
    ios: Vec<StoreIo>,
    bytes: usize,
}

impl Run {
    pub(crate) fn is_empty(&self) -> bool {
        self.ios.is_empty()
    }

    /// True if `io` (a write if `write`) may join the run at its end.
    pub(crate) fn extends(&self, io: &StoreIo, write: bool, bounds: RunBounds) -> bool {
        let Some(last) = self.ios.last() else {
            return false;
        };
        write == self.write
            && io.export == last.export
            && io.offset == last.offset + last.len as u64
            && self.ios.len() < bounds.max_requests
            && self.bytes + io.len <= bounds.max_bytes
    }

    /// Adds `io` at the end (the caller checked [`Run::extends`] or the run
    /// is empty).
    pub(crate) fn push(&mut self, io: StoreIo, write: bool) {
        if self.ios.is_empty() {
            self.write = write;
        }
        self.bytes += io.len;
        self.ios.push(io);
    }

    /// The run's requests and whether they are writes; the run is empty
    /// afterwards. `spare` is an empty vector to keep the next run in (its
    /// capacity kept from turn to turn).
    pub(crate) fn take(&mut self, spare: Vec<StoreIo>) -> (Vec<StoreIo>, bool) {
        self.bytes = 0;
        (std::mem::replace(&mut self.ios, spare), self.write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aoe_target::ReqId;

    fn io(req: u32, export: u16, sector: u64, sectors: usize) -> StoreIo {
        StoreIo {
            req: ReqId(req),
            export: ExportId(export),
            offset: sector * 512,
            len: sectors * 512,
        }
    }

    const BOUNDS: RunBounds = RunBounds {
        max_requests: 3,
        max_bytes: 8 << 10,
    };

    #[test]
    fn a_run_grows_only_at_its_end_one_way_one_export_within_bounds() {
        let mut run = Run::default();
        assert!(!run.extends(&io(0, 0, 0, 2), false, BOUNDS), "empty");
        run.push(io(0, 0, 8, 2), false);
        assert!(run.extends(&io(1, 0, 10, 2), false, BOUNDS), "adjacent");
        assert!(!run.extends(&io(1, 0, 10, 2), true, BOUNDS), "a write");
        assert!(
            !run.extends(&io(1, 1, 10, 2), false, BOUNDS),
            "other export"
        );
        assert!(!run.extends(&io(1, 0, 11, 2), false, BOUNDS), "a gap");
        assert!(!run.extends(&io(1, 0, 9, 2), false, BOUNDS), "an overlap");
        assert!(!run.extends(&io(1, 0, 6, 2), false, BOUNDS), "before it");
        run.push(io(1, 0, 10, 2), false);
        assert!(!run.extends(&io(2, 0, 12, 15), false, BOUNDS), "bytes");
        run.push(io(2, 0, 12, 2), false);
        assert!(!run.extends(&io(3, 0, 14, 2), false, BOUNDS), "requests");
        let (ios, write) = run.take(Vec::new());
        assert_eq!((ios.len(), write), (3, false));
        assert!(run.is_empty());
        run.push(io(4, 0, 14, 2), true);
        assert!(run.extends(&io(5, 0, 16, 1), true, BOUNDS));
    }
}
