//! The daemon's front end: the sans-IO AoE target (`aoe_target::Target`) on the
//! data path's ring, with every export's store I/O served by a RAID volume instead
//! of a file. Store actions become volume requests; volume completions become
//! `read_done` / `write_done` / `sync_done` and replies sent from ring send slots.

use crate::control::status::{FrontendCounters, InterfaceStatus, Side};
use crate::frontend::StateFile;
use anyhow::Context;
use aoe_target::{
    Action, ExportConfig, ExportId, IfaceId, ReqId, SharedExport, Target, TargetConfig,
};
use aoe_uring::{Completion, PacketSocket, Ring, SockId};
use aoe_wire::Mac;
use raid_engine::{VolumeCompletion, VolumeOp, VolumeRequest, SECTOR};
use std::sync::Arc;
use std::time::Instant;

/// Header bytes before ATA data in an AoE frame (Ethernet 14 + AoE 10 + ATA 12).
const DATA_AT: usize = aoe_wire::ATA_DATA_OFFSET;

/// Volume request ids of the front end: kind in the top byte.
const KIND_READ: u64 = 1 << 56;
const KIND_WRITE: u64 = 2 << 56;
const KIND_SYNC: u64 = 3 << 56;
const KIND_MASK: u64 = 0xff << 56;

/// One exported volume as the front end sees it.
pub struct ExportDef {
    pub shelf: u16,
    pub slot: u8,
    pub read_only: bool,
    pub sectors: u64,
    pub state: Arc<StateFile>,
    pub shared: Arc<SharedExport>,
    /// Index of the volume in the data path.
    pub volume: usize,
}

/// Volume requests the front end wants submitted: (volume index, request).
pub type VolumeSubmit = (usize, VolumeRequest);

struct IfaceTally {
    name: String,
    sent: u64,
    malformed: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct FrontCounters {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub no_slot_drops: u64,
    pub send_errors: u64,
    /// Client FLUSH CACHE (EXT) commands passed to the volumes as member flushes.
    pub flushes: u64,
}

pub struct Front {
    target: Target,
    socks: Vec<SockId>,
    /// Per front-end interface: its name, frames sent, malformed frames.
    ifaces: Vec<IfaceTally>,
    exports: Vec<ExportDef>,
    actions: Vec<Action>,
    /// Requests to hand to the volumes after the current call.
    pub out: Vec<VolumeSubmit>,
    stopping: bool,
    pub counters: FrontCounters,
    in_flight: usize,
}

impl Front {
    /// Opens a socket per interface on `ring` and adds every export.
    pub fn open(
        ring: &mut Ring,
        ifaces: &[String],
        exports: Vec<ExportDef>,
    ) -> anyhow::Result<Front> {
        let cfg = TargetConfig {
            buffer_count: 64,
            max_clients: 16,
            ..TargetConfig::default()
        };
        let mut target = Target::new(cfg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut socks = Vec::new();
        let mut ids = Vec::new();
        for name in ifaces {
            let sock = PacketSocket::open(name)
                .with_context(|| format!("open AoE socket on front-end interface {name}"))?;
            let id = target
                .add_interface(Mac(sock.mac()), sock.mtu())
                .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
            ids.push(id);
            socks.push(ring.add_socket(sock)?);
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
                .map_err(|err| anyhow::anyhow!("export e{}.{}: {err:?}", e.shelf, e.slot))?;
        }
        Ok(Front {
            target,
            socks,
            ifaces: ifaces
                .iter()
                .map(|n| IfaceTally {
                    name: n.clone(),
                    sent: 0,
                    malformed: 0,
                })
                .collect(),
            actions: Vec::with_capacity(256),
            out: Vec::new(),
            stopping: false,
            counters: FrontCounters::default(),
            in_flight: 0,
            exports,
        })
    }

    pub fn exports(&self) -> &[ExportDef] {
        &self.exports
    }

    /// Does this socket belong to the front end?
    pub fn owns(&self, sock: SockId) -> bool {
        self.socks.contains(&sock)
    }

    /// Announces every export (unsolicited config replies), as after start or growth.
    pub fn announce_all(&mut self, ring: &Ring) {
        for e in 0..self.exports.len() {
            self.target.announce(ExportId(e as u16), &mut self.actions);
            self.run_actions(ring, None);
        }
    }

    /// The export of volume `volume` now has `sectors`: resize and announce.
    pub fn resize(&mut self, ring: &Ring, volume: usize, sectors: u64) -> bool {
        let Some(e) = self.exports.iter().position(|x| x.volume == volume) else {
            return false;
        };
        self.exports[e].sectors = sectors;
        let changed = self
            .target
            .resize(ExportId(e as u16), sectors, &mut self.actions);
        self.run_actions(ring, None);
        changed
    }

    /// Stop taking new requests (frames are dropped); in-flight ones finish.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// No store I/O in flight.
    pub fn drained(&self) -> bool {
        self.in_flight == 0 && self.target.requests_in_flight() == 0
    }

    /// Feeds a ring completion; hands it back if it is not the front end's.
    pub fn on_completion(
        &mut self,
        ring: &Ring,
        now: Instant,
        ev: Completion,
    ) -> Option<Completion> {
        match ev {
            Completion::Frame { sock, buf } => {
                let Some(i) = self.socks.iter().position(|s| *s == sock) else {
                    return Some(Completion::Frame { sock, buf });
                };
                if !self.stopping {
                    let frame = ring.frame(&buf);
                    let malformed = self.target.counters().malformed;
                    self.target
                        .handle_frame(IfaceId(i as u16), frame, now, &mut self.actions);
                    self.ifaces[i].malformed += self.target.counters().malformed - malformed;
                    self.run_actions(ring, Some(frame));
                }
                ring.recycle(buf);
                None
            }
            Completion::SendDone { sock, result, .. } if self.owns(sock) => {
                if result.is_err() {
                    self.counters.send_errors += 1;
                }
                None
            }
            Completion::RecvError { sock, .. } if self.owns(sock) => None,
            other => Some(other),
        }
    }

    /// Carries out the target's actions; `frame` is the request frame being handled
    /// (write payloads are copied out of it before it is recycled).
    fn run_actions(&mut self, ring: &Ring, frame: Option<&[u8]>) {
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
                    let Some(mut slot) = ring.send_slot() else {
                        self.counters.no_slot_drops += 1;
                        continue;
                    };
                    let bytes = self.target.ctl_frame(f, len);
                    let n = bytes.len();
                    ring.slot_mut(&mut slot)[..n].copy_from_slice(bytes);
                    self.submit_slot(ring, iface, slot, n);
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
                            self.counters.write_bytes += len as u64;
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
                    let e = usize::from(export.0);
                    if flush {
                        // A client FLUSH CACHE (EXT) is in this sync's batch: every
                        // member flushes its cache (blades get FLUSH CACHE EXT, files
                        // fdatasync) and the batch is answered after all of them.
                        self.in_flight += 1;
                        self.counters.flushes += 1;
                        self.out.push((
                            self.exports[e].volume,
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
                    let Some(mut slot) = ring.send_slot() else {
                        self.counters.no_slot_drops += 1;
                        self.target.drop_request(req);
                        continue;
                    };
                    let n = self.target.finish_reply(req, ring.slot_mut(&mut slot));
                    self.submit_slot(ring, iface, slot, n);
                }
                Action::Persist { export } => {
                    let ex = &self.exports[usize::from(export.0)];
                    if let Err(e) = ex.state.save(&ex.shared.snapshot()) {
                        crate::events::log_line(
                            3,
                            &format!("e{}.{}: cannot save export state: {e:#}", ex.shelf, ex.slot),
                        );
                    }
                }
            }
            // Actions appended by calls made above (e.g. drop) run in this pass too.
        }
        actions.clear();
        self.actions = actions;
    }

    fn submit_slot(&mut self, ring: &Ring, iface: IfaceId, slot: aoe_uring::SendSlot, n: usize) {
        if n == 0 {
            ring.release_slot(slot);
            return;
        }
        let sock = self.socks[usize::from(iface.0)];
        if ring.submit_send(sock, slot, n, 0).is_err() {
            self.counters.send_errors += 1;
        } else {
            self.ifaces[usize::from(iface.0)].sent += 1;
        }
    }

    /// Is this volume request id one of the front end's?
    pub fn owns_request(id: u64) -> bool {
        matches!(id & KIND_MASK, KIND_READ | KIND_WRITE | KIND_SYNC)
    }

    /// A volume request of the front end finished.
    pub fn volume_done(&mut self, ring: &Ring, c: VolumeCompletion) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let low = c.id & !KIND_MASK;
        match c.id & KIND_MASK {
            KIND_READ => {
                let req = ReqId(low as u32);
                let Some(iface) = self.target.request_iface(req) else {
                    return;
                };
                let Some(mut slot) = ring.send_slot() else {
                    self.counters.no_slot_drops += 1;
                    self.target.drop_request(req);
                    return;
                };
                let buf = ring.slot_mut(&mut slot);
                let ok = match &c.result {
                    Ok(data) if DATA_AT + data.len() <= buf.len() => {
                        buf[DATA_AT..DATA_AT + data.len()].copy_from_slice(data);
                        true
                    }
                    _ => false,
                };
                if let Ok(d) = &c.result {
                    self.counters.read_bytes += d.len() as u64;
                }
                let n = self.target.read_done(req, ok, buf);
                self.submit_slot(ring, iface, slot, n);
            }
            KIND_WRITE => {
                self.target
                    .write_done(ReqId(low as u32), c.result.is_ok(), &mut self.actions);
                self.run_actions(ring, None);
            }
            KIND_SYNC => {
                self.target
                    .sync_done(ExportId(low as u16), c.result.is_ok(), &mut self.actions);
                self.run_actions(ring, None);
            }
            _ => {}
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Per-interface frame counts (kernel receive and drop counts included)
    /// and what the target did with the frames.
    pub fn status(&self, ring: &Ring) -> (Vec<InterfaceStatus>, FrontendCounters) {
        let ifaces = self
            .ifaces
            .iter()
            .zip(&self.socks)
            .map(|(t, &sock)| {
                InterfaceStatus::of_socket(
                    &t.name,
                    Side::Frontend,
                    ring.socket(sock),
                    t.sent,
                    t.malformed,
                )
            })
            .collect();
        let c = self.target.counters();
        let counters = FrontendCounters {
            frames: c.frames,
            malformed: c.malformed,
            not_for_us: c.not_addressed + c.masked,
            client_queue_full: c.client_queue_full,
            target_queue_full: c.target_queue_full,
            no_send_slot: self.counters.no_slot_drops,
            send_errors: self.counters.send_errors,
            flushes: self.counters.flushes,
            reservation_conflicts: c.reservation_conflicts,
        };
        (ifaces, counters)
    }
}
