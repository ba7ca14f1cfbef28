//! The front end without its sockets: the sans-IO AoE target (`aoe_target::Target`)
//! serving every export from a RAID volume. Store actions become volume requests;
//! volume completions become `read_done` / `write_done` / `sync_done`. Frames to
//! send wait in a queue until the host has a buffer for them
//! ([`Exports::poll_transmit`]): when send buffers run out requests are delayed,
//! never dropped.

use aoe_target::TargetConfig;
use aoe_target::{Action, ExportConfig, ExportId, IfaceId, ReqId, SharedExport, Target};
use aoe_wire::Mac;
use raid_engine::{VolumeCompletion, VolumeOp, VolumeRequest, SECTOR};
use std::collections::VecDeque;
use std::sync::Arc;

/// Header bytes before ATA data in an AoE frame (Ethernet 14 + AoE 10 + ATA 12).
const DATA_AT: usize = aoe_wire::ATA_DATA_OFFSET;

/// Volume request ids of the front end: kind in the top byte.
const KIND_READ: u64 = 1 << 56;
const KIND_WRITE: u64 = 2 << 56;
const KIND_SYNC: u64 = 3 << 56;
const KIND_MASK: u64 = 0xff << 56;

/// One exported volume as the front end sees it.
pub(crate) struct ExportDef {
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    pub(crate) read_only: bool,
    pub(crate) sectors: u64,
    pub(crate) shared: Arc<SharedExport>,
    /// Index of the volume in the core.
    pub(crate) volume: usize,
}

/// A frame waiting for a send buffer.
enum Pending {
    /// A control reply, copied out of the target (its frame is only valid until
    /// the next call).
    Ctl { iface: IfaceId, frame: Vec<u8> },
    /// A reply the target builds with `finish_reply`.
    Reply { req: ReqId, iface: IfaceId },
    /// A read reply: the volume's data (or its failure) goes after the header.
    Read { req: ReqId, data: Option<Vec<u8>> },
}

pub(crate) struct Exports {
    target: Target,
    exports: Vec<ExportDef>,
    ifaces: Vec<IfaceId>,
    actions: Vec<Action>,
    /// Requests to hand to the volumes: (volume index, request).
    pub(crate) out: Vec<(usize, VolumeRequest)>,
    pending: VecDeque<Pending>,
    /// Emptied control-frame buffers, reused.
    spare_bufs: Vec<Vec<u8>>,
    /// Exports whose durable state changed and must be saved before the next send.
    persist: Vec<usize>,
    stopping: bool,
    /// Client FLUSH CACHE (EXT) commands passed to the volumes as member flushes.
    pub(crate) flushes: u64,
    in_flight: usize,
}

impl Exports {
    /// A target on interfaces of the given (MAC, MTU), serving `exports`.
    pub(crate) fn new(ifaces: &[(Mac, u32)], exports: Vec<ExportDef>) -> Result<Exports, String> {
        let cfg = TargetConfig {
            buffer_count: 64,
            max_clients: 16,
            ..TargetConfig::default()
        };
        let mut target = Target::new(cfg).map_err(|e| format!("{e:?}"))?;
        let mut ids = Vec::new();
        for &(mac, mtu) in ifaces {
            ids.push(
                target
                    .add_interface(mac, mtu)
                    .map_err(|e| format!("{mac}: {e:?}"))?,
            );
        }
        for e in &exports {
            target
                .add_export(
                    ExportConfig {
                        shelf: e.shelf,
                        slot: e.slot,
                        read_only: e.read_only,
                        ifaces: ids.clone(),
                    },
                    e.shared.clone(),
                )
                .map_err(|err| format!("export e{}.{}: {err:?}", e.shelf, e.slot))?;
        }
        Ok(Exports {
            target,
            exports,
            ifaces: ids,
            actions: Vec::with_capacity(256),
            out: Vec::new(),
            pending: VecDeque::new(),
            spare_bufs: Vec::new(),
            persist: Vec::new(),
            stopping: false,
            flushes: 0,
            in_flight: 0,
        })
    }

    pub(crate) fn exports(&self) -> &[ExportDef] {
        &self.exports
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Announces every export (unsolicited config replies), as after start.
    pub(crate) fn announce_all(&mut self) {
        for e in 0..self.exports.len() {
            self.target.announce(ExportId(e as u16), &mut self.actions);
            self.run_actions(None);
        }
    }

    /// The export of volume `volume` now has `sectors`: resize and announce.
    pub(crate) fn resize(&mut self, volume: usize, sectors: u64) -> bool {
        let Some(e) = self.exports.iter().position(|x| x.volume == volume) else {
            return false;
        };
        self.exports[e].sectors = sectors;
        let changed = self
            .target
            .resize(ExportId(e as u16), sectors, &mut self.actions);
        self.run_actions(None);
        changed
    }

    /// Stop taking new requests (frames are dropped); in-flight ones finish.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// No store I/O in flight and nothing waiting to be sent.
    pub(crate) fn drained(&self) -> bool {
        self.in_flight == 0 && self.target.requests_in_flight() == 0 && self.pending.is_empty()
    }

    /// A frame from front-end interface `iface` (index in the order given to `new`).
    pub(crate) fn handle_frame(&mut self, iface: usize, frame: &[u8], now: std::time::Instant) {
        if self.stopping {
            return;
        }
        let Some(&id) = self.ifaces.get(iface) else {
            return;
        };
        self.target.handle_frame(id, frame, now, &mut self.actions);
        self.run_actions(Some(frame));
    }

    /// Exports whose durable state must be saved before the next frame is sent.
    pub(crate) fn take_persist(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.persist)
    }

    /// Carries out the target's actions; `frame` is the request frame being handled
    /// (write payloads are copied out of it before it is recycled).
    fn run_actions(&mut self, frame: Option<&[u8]>) {
        let mut actions = std::mem::take(&mut self.actions);
        let mut i = 0;
        while i < actions.len() {
            let a = actions[i];
            i += 1;
            match a {
                Action::Send {
                    iface,
                    frame: f,
                    len,
                } => {
                    let bytes = self.target.ctl_frame(f, len);
                    let mut buf = self.spare_bufs.pop().unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(bytes);
                    self.pending.push_back(Pending::Ctl { iface, frame: buf });
                }
                Action::Read {
                    req,
                    export,
                    offset,
                    len,
                } => {
                    let ex = &self.exports[usize::from(export.0)];
                    self.in_flight += 1;
                    self.out.push((
                        ex.volume,
                        VolumeRequest {
                            id: KIND_READ | u64::from(req.0),
                            op: VolumeOp::Read,
                            offset: offset / SECTOR as u64,
                            sectors: (len / SECTOR) as u32,
                            data: Vec::new(),
                        },
                    ));
                }
                Action::Write {
                    req,
                    export,
                    offset,
                    len,
                } => {
                    let ex = &self.exports[usize::from(export.0)];
                    match frame.and_then(|f| f.get(DATA_AT..DATA_AT + len)) {
                        Some(payload) => {
                            self.in_flight += 1;
                            self.out.push((
                                ex.volume,
                                VolumeRequest {
                                    id: KIND_WRITE | u64::from(req.0),
                                    op: VolumeOp::Write,
                                    offset: offset / SECTOR as u64,
                                    sectors: (len / SECTOR) as u32,
                                    data: payload.to_vec(),
                                },
                            ));
                        }
                        None => self.target.drop_request(req),
                    }
                }
                Action::Sync { export, flush } => {
                    if flush {
                        // A client FLUSH CACHE (EXT) is in this sync's batch: every
                        // member flushes its cache (blades get FLUSH CACHE EXT, files
                        // fdatasync) and the batch is answered after all of them.
                        self.in_flight += 1;
                        self.flushes += 1;
                        self.out.push((
                            self.exports[usize::from(export.0)].volume,
                            VolumeRequest {
                                id: KIND_SYNC | u64::from(export.0),
                                op: VolumeOp::Flush,
                                offset: 0,
                                sectors: 0,
                                data: Vec::new(),
                            },
                        ));
                    } else {
                        // Only writes: the target's group commit. Volume writes are
                        // write-through and member writes durable when acknowledged
                        // (O_DSYNC files, blades that answered), so there is nothing
                        // left to make durable; flushing every member per group
                        // commit would make small writes crawl.
                        self.target.sync_done(export, true, &mut actions);
                    }
                }
                Action::Reply { req, iface } => {
                    self.pending.push_back(Pending::Reply { req, iface })
                }
                Action::Persist { export } => self.persist.push(usize::from(export.0)),
            }
            // Actions appended by calls made above run in this pass too.
        }
        actions.clear();
        self.actions = actions;
    }

    /// Is this volume request id one of the front end's?
    pub(crate) fn owns_request(id: u64) -> bool {
        matches!(id & KIND_MASK, KIND_READ | KIND_WRITE | KIND_SYNC)
    }

    /// A volume request of the front end finished.
    pub(crate) fn volume_done(&mut self, c: VolumeCompletion) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let low = c.id & !KIND_MASK;
        match c.id & KIND_MASK {
            KIND_READ => {
                let data = c.result.ok();
                self.pending.push_back(Pending::Read {
                    req: ReqId(low as u32),
                    data,
                });
            }
            KIND_WRITE => {
                self.target
                    .write_done(ReqId(low as u32), c.result.is_ok(), &mut self.actions);
                self.run_actions(None);
            }
            KIND_SYNC => {
                self.target
                    .sync_done(ExportId(low as u16), c.result.is_ok(), &mut self.actions);
                self.run_actions(None);
            }
            _ => {}
        }
    }

    /// Frames waiting for a send buffer.
    pub(crate) fn has_transmit(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes the next frame to send into `buf`: (interface index, length).
    /// Nothing comes out while a state save is owed (see [`Exports::take_persist`]).
    pub(crate) fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        if !self.persist.is_empty() {
            return None;
        }
        while let Some(p) = self.pending.pop_front() {
            let (iface, n) = match p {
                Pending::Ctl { iface, frame } => {
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    self.spare_bufs.push(frame);
                    (iface, n)
                }
                Pending::Reply { req, iface } => (iface, self.target.finish_reply(req, buf)),
                Pending::Read { req, data } => {
                    let Some(iface) = self.target.request_iface(req) else {
                        continue;
                    };
                    let ok = match &data {
                        Some(d) if DATA_AT + d.len() <= buf.len() => {
                            buf[DATA_AT..DATA_AT + d.len()].copy_from_slice(d);
                            true
                        }
                        _ => false,
                    };
                    (iface, self.target.read_done(req, ok, buf))
                }
            };
            if n > 0 {
                return Some((usize::from(iface.0), n));
            }
        }
        None
    }
}
