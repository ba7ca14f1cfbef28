//! RAID volumes as the driver's store, ring-free: store requests become
//! [`VolumeRequest`]s for the caller to submit to the volumes, volume
//! completions become [`Done`].

use super::driver::{Done, Port, ReadData, ReadStart, Store, StoreIo, SyncStart};
use aoe_target::{ExportId, ReqId};
use aoe_wire::ATA_DATA_OFFSET;
use raid_engine::{VolumeCompletion, VolumeOp, VolumeRequest, SECTOR};

/// Volume request ids of the front end: kind in the top byte.
const KIND_READ: u64 = 1 << 56;
const KIND_WRITE: u64 = 2 << 56;
const KIND_SYNC: u64 = 3 << 56;
const KIND_MASK: u64 = 0xff << 56;

/// The volumes behind the exports.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    /// Export → index of its volume.
    volume: Vec<usize>,
    /// Requests to hand to the volumes: (volume index, request).
    out: Vec<(usize, VolumeRequest)>,
    in_flight: usize,
}

impl Volumes {
    /// `volume[e]` is the index of export `e`'s volume.
    pub(crate) fn new(volume: Vec<usize>) -> Volumes {
        Volumes {
            volume,
            ..Volumes::default()
        }
    }

    /// Requests to submit, as (volume index, request).
    pub(crate) fn take_requests(&mut self) -> std::vec::Drain<'_, (usize, VolumeRequest)> {
        self.out.drain(..)
    }

    /// Requests handed out and not completed yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Is this volume request id one of the front end's?
    pub(crate) fn owns(id: u64) -> bool {
        matches!(id & KIND_MASK, KIND_READ | KIND_WRITE | KIND_SYNC)
    }

    /// Turns a volume completion into [`Done`] (`None` if not the front end's).
    pub(crate) fn done<Slot>(&mut self, c: VolumeCompletion) -> Option<Done<Slot>> {
        if !Self::owns(c.id) {
            return None;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        let low = c.id & !KIND_MASK;
        Some(match c.id & KIND_MASK {
            KIND_READ => Done::Read {
                req: ReqId(low as u32),
                data: ReadData::Bytes(c.result.ok()),
            },
            KIND_WRITE => Done::Write {
                req: ReqId(low as u32),
                ok: c.result.is_ok(),
            },
            _ => Done::Sync {
                export: ExportId(low as u16),
                ok: c.result.is_ok(),
            },
        })
    }

    fn push(
        &mut self,
        export: ExportId,
        id: u64,
        op: VolumeOp,
        io: Option<StoreIo>,
        data: Vec<u8>,
    ) -> bool {
        let Some(&volume) = self.volume.get(usize::from(export.0)) else {
            return false;
        };
        let (offset, sectors) = io.map_or((0, 0), |io| {
            (io.offset / SECTOR as u64, (io.len / SECTOR) as u32)
        });
        self.in_flight += 1;
        self.out.push((
            volume,
            VolumeRequest {
                id,
                op,
                offset,
                sectors,
                data,
            },
        ));
        true
    }
}

impl<P: Port> Store<P> for Volumes {
    fn read(&mut self, _port: &mut P, io: StoreIo) -> ReadStart {
        let id = KIND_READ | u64::from(io.req.0);
        if self.push(io.export, id, VolumeOp::Read, Some(io), Vec::new()) {
            ReadStart::Started
        } else {
            ReadStart::Failed
        }
    }

    /// Volume writes are durable when acknowledged (see `sync`), so a
    /// `durable` write needs nothing more.
    fn write(
        &mut self,
        port: &mut P,
        io: StoreIo,
        frame: &mut Option<P::Frame>,
        _durable: bool,
    ) -> bool {
        // The engine owns the data of a request (it stripes and keeps it for
        // parity and retries), so the payload is copied once, here.
        let Some(payload) = frame
            .as_ref()
            .and_then(|f| port.frame(f).get(ATA_DATA_OFFSET..ATA_DATA_OFFSET + io.len))
        else {
            return false;
        };
        let data = payload.to_vec();
        let id = KIND_WRITE | u64::from(io.req.0);
        self.push(io.export, id, VolumeOp::Write, Some(io), data)
    }

    fn sync(&mut self, _port: &mut P, export: ExportId, flush: bool) -> SyncStart {
        if !flush {
            // Only writes: the target's group commit. Volume writes are
            // write-through and member writes durable when acknowledged
            // (O_DSYNC files, blades that answered), so there is nothing left
            // to make durable; flushing every member per group commit would
            // make small writes crawl.
            return SyncStart::Done(true);
        }
        // A client FLUSH CACHE (EXT) is in this sync's batch: every member
        // flushes its cache (blades get FLUSH CACHE EXT, files fdatasync) and
        // the batch is answered after all of them.
        let id = KIND_SYNC | u64::from(export.0);
        if self.push(export, id, VolumeOp::Flush, None, Vec::new()) {
            SyncStart::Started
        } else {
            SyncStart::Done(false)
        }
    }
}
