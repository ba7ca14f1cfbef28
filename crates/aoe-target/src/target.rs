//! The target state machine: frames and store completions in, actions out.

use crate::counters::Counters;
use crate::fence::{excluded, HeldReply};
use crate::limiter::TokenBucket;
use crate::shared::SharedExport;
use crate::state::ExportState;
use aoe_wire::{
    ata, finish_frame, parse, sectors_per_frame, write_ata_response, AtaArg, Command, ErrorCode,
    Header, Identify, Mac, Message, WireError, AOE_VERSION, ATA_DATA_OFFSET, IDENTIFY_LEN,
    SECTOR_SIZE,
};
use std::sync::Arc;
use std::time::Instant;

/// Largest control reply: a 128-entry mask list is 1052 bytes, a 1024-byte
/// config string 1056; IDENTIFY is 548.
pub(crate) const CTL_FRAME_LEN: usize = 1280;
/// Writes/flushes that force a sync even while other writes are still on
/// their way to the store (bounds the latency of the first in a batch).
const GROUP_MAX: usize = 32;

/// An interface the target listens on (index into the driver's sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfaceId(pub u16);
/// An export (shelf.slot) of this target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExportId(pub u16);
/// A request being answered: the interface it came in on, the export it
/// addresses and its header; the reply goes back the same way.
#[derive(Clone, Copy)]
pub(crate) struct ReplyTo<'a> {
    pub(crate) iface: IfaceId,
    pub(crate) export: ExportId,
    pub(crate) h: &'a Header,
}
/// A request holding a slot in the target until it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqId(pub u32);
/// A control reply frame owned by the target (valid until the next call that
/// takes `&mut self`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtlFrame(pub(crate) u16);

/// Target-wide settings.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Buffer Count advertised, and the number of requests really queued per
    /// client MAC (more are dropped and counted). At least 2 (Linux stalls
    /// below); Linux uses at most 64.
    pub buffer_count: u16,
    /// Client MACs with requests in flight at once.
    pub max_clients: u16,
    /// Firmware Version in Query Config replies.
    pub firmware: u16,
    /// IDENTIFY model string (≤ 40 ASCII).
    pub model: String,
    /// IDENTIFY firmware revision string (≤ 8 ASCII).
    pub firmware_rev: String,
    /// Largest frame the driver can send or receive (send slot size).
    pub max_frame: usize,
    /// Broadcast Query Config replies one interface may send in a burst...
    pub broadcast_burst: u32,
    /// ...and per second after that.
    pub broadcast_per_sec: u32,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            buffer_count: 64,
            max_clients: 32,
            firmware: 0x0100,
            model: "aoeraid io_uring AoE target".into(),
            firmware_rev: concat!("A", env!("CARGO_PKG_VERSION"))
                .chars()
                .take(8)
                .collect(),
            max_frame: 9216,
            broadcast_burst: 64,
            broadcast_per_sec: 256,
        }
    }
}

/// One export's settings.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub shelf: u16,
    pub slot: u8,
    /// Writes are answered with ATA abort.
    pub read_only: bool,
    /// Interfaces the export is visible on.
    pub ifaces: Vec<IfaceId>,
}

/// What the driver must do. Actions come out in the order they must happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `Target::ctl_frame(frame)` (`len` bytes) on `iface`.
    Send {
        iface: IfaceId,
        frame: CtlFrame,
        len: usize,
    },
    /// Read `len` bytes at byte `offset` of the export's store into the reply
    /// frame at offset 36 (where ATA data goes), then call
    /// [`Target::read_done`] with that frame buffer (or
    /// [`Target::drop_request`] if no buffer was free).
    Read {
        req: ReqId,
        export: ExportId,
        offset: u64,
        len: usize,
    },
    /// Write `len` bytes of the request frame's data (frame bytes
    /// `36..36 + len`) at byte `offset`, then call [`Target::write_done`].
    Write {
        req: ReqId,
        export: ExportId,
        offset: u64,
        len: usize,
    },
    /// Make every completed write of the export durable (fdatasync), then
    /// call [`Target::sync_done`]. At most one is outstanding per export.
    /// `flush`: a client's FLUSH CACHE (EXT) is among the requests this sync
    /// answers, so caches below the store must be flushed too; without it the
    /// sync is only the group commit of writes.
    Sync { export: ExportId, flush: bool },
    /// Build the answer for `req` with [`Target::finish_reply`] and send it on
    /// `iface`.
    Reply { req: ReqId, iface: IfaceId },
    /// The export's durable state changed: write
    /// [`Target::shared`]`(export).snapshot()` to the state file (atomically)
    /// before sending the `Send` that follows.
    Persist { export: ExportId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Free,
    Read,
    Write,
    Flush,
}

#[derive(Debug, Clone, Copy)]
struct Req {
    kind: ReqKind,
    export: u16,
    iface: IfaceId,
    client: u16,
    header: Header,
    arg: AtaArg,
    status: u8,
    error: u8,
    /// A write's epoch in the export's write gate while it is on its way
    /// to the store ([`crate::fence`]).
    gate: Option<u64>,
}

/// One client's requests to one export (Buffer Count is per target, so a
/// client may have that many queued at each export it uses).
#[derive(Debug, Clone, Copy)]
struct Client {
    mac: Mac,
    export: u16,
    in_flight: u16,
}

#[derive(Debug)]
pub(crate) struct Iface {
    pub(crate) mac: Mac,
    pub(crate) max_sectors: u8,
    pub(crate) broadcast: TokenBucket,
}

#[derive(Debug)]
pub(crate) struct Export {
    pub(crate) cfg: ExportConfig,
    pub(crate) shared: Arc<SharedExport>,
    /// This worker's copy of the durable state, refreshed when the shared
    /// generation moves.
    pub(crate) cache: ExportState,
    pub(crate) generation: u64,
    pub(crate) sectors: u64,
    iface_bits: u64,
    /// Writes done (and flushes) waiting for the next sync.
    waiting: Vec<ReqId>,
    /// Those covered by the sync in flight.
    batch: Vec<ReqId>,
    sync_in_flight: bool,
    writes_in_store: u32,
    /// Buffer Count advertised and enforced per client for this export.
    pub(crate) buffer_count: u16,
    /// Removed: addressed by no frame; its slot is reused once idle.
    retired: bool,
}

/// The sans-IO AoE target (one per worker thread).
#[derive(Debug)]
pub struct Target {
    pub(crate) cfg: TargetConfig,
    pub(crate) ifaces: Vec<Iface>,
    pub(crate) exports: Vec<Export>,
    reqs: Vec<Req>,
    free: Vec<u32>,
    clients: Vec<Client>,
    pub(crate) ctl: Vec<u8>,
    pub(crate) ctl_used: usize,
    ctl_cap: usize,
    /// Reserve replies waiting for writes checked against an older list.
    pub(crate) held: Vec<HeldReply>,
    /// This worker's bit for the write gates' watchers (0: the only worker).
    pub(crate) fence_worker: u64,
    /// Workers to wake: a write left a gate they watch.
    pub(crate) fence_wakes: u64,
    pub(crate) counters: Counters,
}

/// Why an interface or export could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    TooManyInterfaces,
    UnknownInterface(IfaceId),
    DuplicateExport { shelf: u16, slot: u8 },
    BroadcastAddress { shelf: u16, slot: u8 },
    BufferCount(u16),
    Identify(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::TooManyInterfaces => write!(f, "at most 64 interfaces"),
            SetupError::UnknownInterface(i) => write!(f, "unknown interface {}", i.0),
            SetupError::DuplicateExport { shelf, slot } => {
                write!(f, "export e{shelf}.{slot} defined twice")
            }
            SetupError::BroadcastAddress { shelf, slot } => write!(
                f,
                "e{shelf}.{slot}: shelf 65535/4095 and slot 255 are reserved (Linux ignores them)"
            ),
            SetupError::BufferCount(n) => write!(f, "buffer count {n} must be 2..=4096"),
            SetupError::Identify(e) => write!(f, "IDENTIFY strings: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl Target {
    pub fn new(cfg: TargetConfig) -> Result<Target, SetupError> {
        if !(2..=4096).contains(&cfg.buffer_count) {
            return Err(SetupError::BufferCount(cfg.buffer_count));
        }
        Identify::new("x", &cfg.firmware_rev, &cfg.model, 1)
            .map_err(|e| SetupError::Identify(e.to_string()))?;
        let n = usize::from(cfg.buffer_count) * usize::from(cfg.max_clients.max(1));
        let reqs = vec![
            Req {
                kind: ReqKind::Free,
                export: 0,
                iface: IfaceId(0),
                client: 0,
                header: Header::request(Mac::ZERO, Mac::ZERO, 0, 0, Command::Ata, 0),
                arg: AtaArg::default(),
                status: 0,
                error: 0,
                gate: None,
            };
            n
        ];
        let mut t = Target {
            free: (0..n as u32).rev().collect(),
            reqs,
            clients: Vec::with_capacity(usize::from(cfg.max_clients.max(1))),
            cfg,
            ifaces: Vec::new(),
            exports: Vec::new(),
            ctl: Vec::new(),
            ctl_used: 0,
            ctl_cap: 0,
            held: Vec::new(),
            fence_worker: 0,
            fence_wakes: 0,
            counters: Counters::default(),
        };
        t.grow_ctl();
        Ok(t)
    }

    /// Adds an interface with its MAC and MTU.
    pub fn add_interface(&mut self, mac: Mac, mtu: u32) -> Result<IfaceId, SetupError> {
        if self.ifaces.len() >= 64 {
            return Err(SetupError::TooManyInterfaces);
        }
        let max_sectors = self.sectors_for(mtu);
        self.ifaces.push(Iface {
            mac,
            max_sectors,
            broadcast: TokenBucket::new(self.cfg.broadcast_burst, self.cfg.broadcast_per_sec),
        });
        Ok(IfaceId(self.ifaces.len() as u16 - 1))
    }

    /// Adds an export; its durable state and size live in `shared` (one
    /// `SharedExport` for all workers serving the same export).
    pub fn add_export(
        &mut self,
        cfg: ExportConfig,
        shared: Arc<SharedExport>,
    ) -> Result<ExportId, SetupError> {
        if cfg.shelf == 0xFFFF || cfg.shelf == 0x0FFF || cfg.slot == 0xFF {
            return Err(SetupError::BroadcastAddress {
                shelf: cfg.shelf,
                slot: cfg.slot,
            });
        }
        if self
            .exports
            .iter()
            .any(|e| !e.retired && e.cfg.shelf == cfg.shelf && e.cfg.slot == cfg.slot)
        {
            return Err(SetupError::DuplicateExport {
                shelf: cfg.shelf,
                slot: cfg.slot,
            });
        }
        let iface_bits = self.iface_bits(&cfg.ifaces)?;
        let mut cache = ExportState::default();
        let generation = shared.refresh(&mut cache);
        Identify::new(&cache.serial, &self.cfg.firmware_rev, &self.cfg.model, 1)
            .map_err(|e| SetupError::Identify(e.to_string()))?;
        let n = self.reqs.len();
        let export = Export {
            sectors: shared.sectors(),
            cfg,
            shared,
            cache,
            generation,
            iface_bits,
            waiting: Vec::with_capacity(n),
            batch: Vec::with_capacity(n),
            sync_in_flight: false,
            writes_in_store: 0,
            buffer_count: self.cfg.buffer_count,
            retired: false,
        };
        if let Some(e) = (0..self.exports.len()).find(|&e| self.idle_retired(e)) {
            self.exports[e] = export;
            return Ok(ExportId(e as u16));
        }
        self.exports.push(export);
        self.grow_ctl();
        Ok(ExportId(self.exports.len() as u16 - 1))
    }

    fn iface_bits(&self, ifaces: &[IfaceId]) -> Result<u64, SetupError> {
        let mut bits = 0u64;
        for i in ifaces {
            if usize::from(i.0) >= self.ifaces.len() {
                return Err(SetupError::UnknownInterface(*i));
            }
            bits |= 1 << i.0;
        }
        Ok(bits)
    }

    /// A removed export with nothing of it left in flight: its slot (and
    /// its [`ExportId`]) may serve a new export.
    fn idle_retired(&self, e: usize) -> bool {
        let ex = &self.exports[e];
        ex.retired
            && !ex.sync_in_flight
            && ex.writes_in_store == 0
            && ex.waiting.is_empty()
            && !self
                .reqs
                .iter()
                .any(|r| r.kind != ReqKind::Free && usize::from(r.export) == e)
    }

    /// Stops serving `export`: no frame reaches it any more, while what it
    /// has in flight completes and is answered as usual. Its [`ExportId`]
    /// stays valid for those completions until [`Target::export_idle`]; a
    /// later [`Target::add_export`] may then reuse it.
    pub fn remove_export(&mut self, export: ExportId) {
        if let Some(ex) = self.exports.get_mut(usize::from(export.0)) {
            ex.retired = true;
            ex.iface_bits = 0;
            ex.cfg.ifaces.clear();
        }
    }

    /// True once a removed export has nothing in flight (its store may be
    /// closed). False for a live export.
    pub fn export_idle(&self, export: ExportId) -> bool {
        usize::from(export.0) < self.exports.len() && self.idle_retired(usize::from(export.0))
    }

    /// The interfaces `export` is served on from now on (an interface that
    /// came up, or a changed list).
    pub fn set_export_interfaces(
        &mut self,
        export: ExportId,
        ifaces: &[IfaceId],
    ) -> Result<(), SetupError> {
        let bits = self.iface_bits(ifaces)?;
        if let Some(ex) = self.exports.get_mut(usize::from(export.0)) {
            if !ex.retired {
                ex.iface_bits = bits;
                ex.cfg.ifaces = ifaces.to_vec();
            }
        }
        Ok(())
    }

    /// The Buffer Count `export` advertises and allows each client (at most
    /// the target's, which sizes the request slots).
    pub fn set_buffer_count(&mut self, export: ExportId, n: u16) -> Result<(), SetupError> {
        if !(2..=self.cfg.buffer_count).contains(&n) {
            return Err(SetupError::BufferCount(n));
        }
        if let Some(ex) = self.exports.get_mut(usize::from(export.0)) {
            ex.buffer_count = n;
        }
        Ok(())
    }

    /// An interface came back (possibly with another MAC or MTU): its
    /// replies carry the new MAC, its Sector Count follows the new MTU.
    pub fn set_interface(&mut self, iface: IfaceId, mac: Mac, mtu: u32) {
        let max_sectors = self.sectors_for(mtu);
        if let Some(i) = self.ifaces.get_mut(usize::from(iface.0)) {
            i.mac = mac;
            i.max_sectors = max_sectors;
        }
    }

    fn sectors_for(&self, mtu: u32) -> u8 {
        let by_frame = self.cfg.max_frame.saturating_sub(ATA_DATA_OFFSET) / SECTOR_SIZE;
        sectors_per_frame(mtu).min(by_frame.min(255) as u8)
    }

    /// Room for one reply per export (broadcast query) or one announcement
    /// per mask entry, whichever is more.
    fn grow_ctl(&mut self) {
        let need = self.exports.len().max(crate::state::MASK_CAPACITY) + 4;
        if need > self.ctl_cap {
            self.ctl.resize(need * CTL_FRAME_LEN, 0);
            self.ctl_cap = need;
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The shared state of an export (to persist it, or to resize).
    pub fn shared(&self, export: ExportId) -> &Arc<SharedExport> {
        &self.exports[usize::from(export.0)].shared
    }

    pub fn export_count(&self) -> usize {
        self.exports.len()
    }

    /// Sectors per frame the target accepts and advertises on `iface`.
    pub fn max_sectors(&self, iface: IfaceId) -> u8 {
        self.ifaces[usize::from(iface.0)].max_sectors
    }

    /// Buffer Count advertised (= requests queued per client).
    pub fn buffer_count(&self) -> u16 {
        self.cfg.buffer_count
    }

    /// Request slots: the most requests that can be in flight at once.
    pub fn request_capacity(&self) -> usize {
        self.reqs.len()
    }

    /// Requests in flight (issued to the store or waiting for a reply buffer).
    pub fn requests_in_flight(&self) -> usize {
        self.reqs.len() - self.free.len()
    }

    /// The interface a pending request arrived on (its reply goes there).
    pub fn request_iface(&self, req: ReqId) -> Option<IfaceId> {
        self.reqs
            .get(req.0 as usize)
            .filter(|r| r.kind != ReqKind::Free)
            .map(|r| r.iface)
    }

    /// Bytes of a control frame named by [`Action::Send`].
    pub fn ctl_frame(&self, frame: CtlFrame, len: usize) -> &[u8] {
        let at = usize::from(frame.0) * CTL_FRAME_LEN;
        &self.ctl[at..at + len.min(CTL_FRAME_LEN)]
    }

    pub(crate) fn take_ctl(&mut self) -> Option<(CtlFrame, &mut [u8])> {
        let f = self.ctl_slot()?;
        Some((f, ctl_buf(&mut self.ctl, f)))
    }

    /// Reserves the next control frame of this call (see [`CtlFrame`]).
    pub(crate) fn ctl_slot(&mut self) -> Option<CtlFrame> {
        if self.ctl_used >= self.ctl_cap {
            return None;
        }
        self.ctl_used += 1;
        Some(CtlFrame(self.ctl_used as u16 - 1))
    }

    // ---- frames -------------------------------------------------------------------

    /// Handles one received frame from `iface`. `now` paces the broadcast
    /// limiter. Never panics on any input; bad frames are dropped and counted.
    pub fn handle_frame(
        &mut self,
        iface: IfaceId,
        frame: &[u8],
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.ctl_used = 0;
        self.counters.frames += 1;
        if !self.held.is_empty() {
            self.release_held(out);
        }
        if usize::from(iface.0) >= self.ifaces.len() {
            self.counters.not_addressed += 1;
            return;
        }
        let pkt = match parse(frame) {
            Ok(p) => p,
            Err(_) => {
                // A later version may lay its messages out differently: its
                // frames are answered "unsupported version", not dropped.
                match Header::parse(frame) {
                    Ok(h) if h.version != AOE_VERSION => {
                        if self.acceptable(iface, &h, frame) {
                            self.unsupported_version(iface, &h, now, out)
                        }
                    }
                    Ok(h) => {
                        self.counters.malformed += 1;
                        if self.acceptable(iface, &h, frame) {
                            self.malformed(iface, &h, frame, out)
                        }
                    }
                    Err(_) => self.counters.malformed += 1,
                }
                return;
            }
        };
        let h = pkt.header;
        if !self.acceptable(iface, &h, frame) {
            return;
        }
        if h.version != AOE_VERSION {
            self.unsupported_version(iface, &h, now, out);
            return;
        }
        let broadcast = h.shelf == aoe_wire::BROADCAST_SHELF || h.slot == aoe_wire::BROADCAST_SLOT;
        let mut matched = false;
        for e in 0..self.exports.len() {
            if !self.addressed(iface, e, &h) {
                continue;
            }
            matched = true;
            let to = ReplyTo {
                iface,
                export: ExportId(e as u16),
                h: &h,
            };
            if !self.admits(iface, e, &h) {
                // Only the allow list may change reservations: say so rather
                // than stay silent, so a fence agent fails at once.
                if let Message::Reserve(r) = &pkt.message {
                    if matches!(r.rcmd, aoe_wire::RCmd::Set | aoe_wire::RCmd::ForceSet) {
                        self.refuse_reserve_outsider(to, r.rcmd, out);
                    }
                }
                continue;
            }
            match pkt.message {
                Message::Ata(a) => self.handle_ata(to, a.arg, a.data, out),
                Message::QueryConfig(q) => {
                    if broadcast && !self.ifaces[usize::from(iface.0)].broadcast.take(now) {
                        self.counters.broadcast_limited += 1;
                        continue;
                    }
                    self.handle_config(to, &q, out)
                }
                Message::MacMask(m) => self.handle_mask(to, &m, out),
                Message::Reserve(r) => self.handle_reserve(to, &r, out),
                Message::Other(_) | Message::Bare(_) => match h.command {
                    Command::Vendor(_) => self.counters.vendor_ignored += 1,
                    _ => {
                        self.counters.unknown_command += 1;
                        self.reply_error_bare(to, ErrorCode::UnrecognizedCommand, out);
                    }
                },
            }
        }
        if !matched {
            self.counters.not_addressed += 1;
        }
    }

    /// The header checks every request passes before its command is looked
    /// at: R clear (replies of other targets are ignored), sent to this
    /// interface's MAC or to broadcast (a promiscuous interface also hands us
    /// frames for other targets, which may share our shelf.slot), from a
    /// unicast MAC (a reply could not go back), E clear (a request carries
    /// no error). Reserved flag bits, and the error byte without E, are
    /// ignored as the spec asks of receivers, but counted.
    fn acceptable(&mut self, iface: IfaceId, h: &Header, frame: &[u8]) -> bool {
        let c = &mut self.counters;
        if h.response {
            c.responses_ignored += 1;
            return false;
        }
        let own = self.ifaces[usize::from(iface.0)].mac;
        if h.dst != own && !h.dst.is_broadcast() {
            c.wrong_destination += 1;
            return false;
        }
        if !h.src.is_unicast() {
            c.bad_source += 1;
            return false;
        }
        if h.error.is_some() {
            c.error_flag_requests += 1;
            return false;
        }
        if aoe_wire::reserved_header_bits(frame) {
            c.reserved_bits += 1;
        }
        true
    }

    /// True if export `e` is on `iface` and named by `h`'s shelf.slot.
    fn addressed(&self, iface: IfaceId, e: usize, h: &Header) -> bool {
        let ex = &self.exports[e];
        ex.iface_bits & (1 << iface.0) != 0 && h.addresses(ex.cfg.shelf, ex.cfg.slot)
    }

    /// True if export `e` takes `h`: addressed, and the sender passes its
    /// mask list (refreshed first; a refused sender is counted).
    fn admits(&mut self, iface: IfaceId, e: usize, h: &Header) -> bool {
        if !self.addressed(iface, e, h) {
            return false;
        }
        self.refresh(e);
        let ex = &self.exports[e];
        if !ex.cache.mask.is_empty() && !ex.cache.mask.contains(&h.src) {
            self.counters.masked += 1;
            return false;
        }
        true
    }

    /// A request whose version is not 1: every export it reaches answers
    /// with the header alone, E + error 5 (broadcasts under the same storm
    /// limit as Query Config).
    fn unsupported_version(
        &mut self,
        iface: IfaceId,
        h: &Header,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let broadcast = h.shelf == aoe_wire::BROADCAST_SHELF || h.slot == aoe_wire::BROADCAST_SLOT;
        let mut matched = false;
        for e in 0..self.exports.len() {
            if !self.admits(iface, e, h) {
                matched |= self.addressed(iface, e, h);
                continue;
            }
            matched = true;
            if broadcast && !self.ifaces[usize::from(iface.0)].broadcast.take(now) {
                self.counters.broadcast_limited += 1;
                continue;
            }
            self.counters.unsupported_version += 1;
            let to = ReplyTo {
                iface,
                export: ExportId(e as u16),
                h,
            };
            self.reply_error_bare(to, ErrorCode::UnsupportedVersion, out);
        }
        if !matched {
            self.counters.not_addressed += 1;
        }
    }

    /// A frame that did not parse. Query Config *requests* whose config
    /// length is over 1024 (or past the frame) get E + error 2 from the
    /// addressed export, as the spec asks; everything else is dropped.
    fn malformed(&mut self, iface: IfaceId, h: &Header, frame: &[u8], out: &mut Vec<Action>) {
        if h.command != Command::QueryConfig || frame.len() < 32 {
            return;
        }
        for e in 0..self.exports.len() {
            if !self.admits(iface, e, h) {
                continue;
            }
            let ccmd = aoe_wire::CCmd::from_nibble(frame[29]);
            let to = ReplyTo {
                iface,
                export: ExportId(e as u16),
                h,
            };
            self.reply_config(to, ccmd, Some(ErrorCode::BadArgument), out);
        }
    }

    /// Picks up durable-state changes made by other workers: one atomic load
    /// when nothing changed.
    fn refresh(&mut self, e: usize) {
        let ex = &mut self.exports[e];
        if ex.shared.generation() != ex.generation {
            ex.generation = ex.shared.refresh(&mut ex.cache);
        }
        ex.sectors = ex.shared.sectors();
    }

    // ---- ATA ----------------------------------------------------------------------

    fn handle_ata(&mut self, to: ReplyTo<'_>, arg: AtaArg, data: &[u8], out: &mut Vec<Action>) {
        let ex = &self.exports[usize::from(to.export.0)];
        let cmd = arg.cmd_status;
        if cmd != ata::IDENTIFY && excluded(&ex.cache.reserve, &to.h.src) {
            self.refuse_fenced(to, &arg, out);
            return;
        }
        match cmd {
            ata::READ | ata::READ_EXT | ata::WRITE | ata::WRITE_EXT => {
                self.read_write(to, arg, data, out)
            }
            ata::IDENTIFY => self.reply_identify(to, &arg, out),
            ata::CHECK_POWER => {
                let mut r = arg.reply(ata::STATUS_OK, 0);
                r.sector_count = 0xFF;
                self.reply_ata(to, &r, out);
            }
            ata::FLUSH | ata::FLUSH_EXT => {
                if let Some(req) = self.alloc(ReqKind::Flush, to, arg) {
                    self.exports[usize::from(to.export.0)].waiting.push(req);
                    self.maybe_sync(to.export, out);
                }
            }
            _ => self.reply_ata_fail(to, &arg, ata::ERROR_ABRT, out),
        }
    }

    fn read_write(&mut self, to: ReplyTo<'_>, arg: AtaArg, data: &[u8], out: &mut Vec<Action>) {
        let export = to.export;
        let ex = &self.exports[usize::from(export.0)];
        let write = ata::is_write(arg.cmd_status);
        let n = u64::from(arg.sector_count);
        let lba = arg.effective_lba();
        let len = n as usize * SECTOR_SIZE;
        let max = self.ifaces[usize::from(to.iface.0)].max_sectors;
        let err = if n == 0 || arg.sector_count > max {
            // A count the frame cannot carry: abort rather than AoE error 2,
            // which Linux would ignore and retransmit forever.
            Some(ata::ERROR_ABRT)
        } else if lba.checked_add(n).is_none_or(|end| end > ex.sectors) {
            Some(ata::ERROR_IDNF)
        } else if write && (ex.cfg.read_only || data.len() < len) {
            Some(ata::ERROR_ABRT)
        } else {
            None
        };
        if let Some(e) = err {
            self.reply_ata_fail(to, &arg, e, out);
            return;
        }
        let gate = if write {
            // Enter the gate, then check the list again: a reservation change
            // either sees this write in flight or this write sees the change.
            let e = usize::from(export.0);
            let epoch = self.exports[e].shared.gate.enter();
            self.refresh(e);
            if excluded(&self.exports[e].cache.reserve, &to.h.src) {
                self.fence_wakes |= self.exports[e].shared.gate.leave(epoch);
                self.refuse_fenced(to, &arg, out);
                return;
            }
            Some(epoch)
        } else {
            None
        };
        let kind = if write { ReqKind::Write } else { ReqKind::Read };
        let Some(req) = self.alloc(kind, to, arg) else {
            if let Some(epoch) = gate {
                self.fence_wakes |= self.exports[usize::from(export.0)].shared.gate.leave(epoch);
            }
            return;
        };
        self.reqs[req.0 as usize].gate = gate;
        let offset = lba * SECTOR_SIZE as u64;
        if write {
            self.counters.writes += 1;
            self.exports[usize::from(export.0)].writes_in_store += 1;
            out.push(Action::Write {
                req,
                export,
                offset,
                len,
            });
        } else {
            self.counters.reads += 1;
            out.push(Action::Read {
                req,
                export,
                offset,
                len,
            });
        }
    }

    /// Takes a request slot, enforcing the per-client queue (Buffer Count).
    fn alloc(&mut self, kind: ReqKind, to: ReplyTo<'_>, arg: AtaArg) -> Option<ReqId> {
        let mut free_client = None;
        let mut client = None;
        for (i, c) in self.clients.iter().enumerate() {
            if c.mac == to.h.src && c.export == to.export.0 {
                client = Some(i);
                break;
            }
            if c.in_flight == 0 && free_client.is_none() {
                free_client = Some(i);
            }
        }
        let ci = match client {
            Some(i) => i,
            None if self.clients.len() < self.clients.capacity() => {
                self.clients.push(Client {
                    mac: to.h.src,
                    export: to.export.0,
                    in_flight: 0,
                });
                self.clients.len() - 1
            }
            None => match free_client {
                Some(i) => {
                    self.clients[i].mac = to.h.src;
                    self.clients[i].export = to.export.0;
                    i
                }
                None => {
                    self.counters.target_queue_full += 1;
                    return None;
                }
            },
        };
        if self.clients[ci].in_flight >= self.exports[usize::from(to.export.0)].buffer_count {
            self.counters.client_queue_full += 1;
            return None;
        }
        let Some(idx) = self.free.pop() else {
            self.counters.target_queue_full += 1;
            return None;
        };
        self.clients[ci].in_flight += 1;
        self.reqs[idx as usize] = Req {
            kind,
            export: to.export.0,
            iface: to.iface,
            client: ci as u16,
            header: *to.h,
            arg,
            status: ata::STATUS_OK,
            error: 0,
            gate: None,
        };
        Some(ReqId(idx))
    }

    fn release(&mut self, req: ReqId) -> Option<Req> {
        let r = self.reqs.get_mut(req.0 as usize)?;
        if r.kind == ReqKind::Free {
            return None;
        }
        let copy = *r;
        r.kind = ReqKind::Free;
        if let Some(c) = self.clients.get_mut(usize::from(copy.client)) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        self.free.push(req.0);
        Some(copy)
    }

    fn maybe_sync(&mut self, export: ExportId, out: &mut Vec<Action>) {
        let ex = &mut self.exports[usize::from(export.0)];
        if ex.sync_in_flight || ex.waiting.is_empty() {
            return;
        }
        // Wait for writes still on their way to the store so one sync covers
        // them too, unless the batch is already big.
        if ex.writes_in_store > 0 && ex.waiting.len() < GROUP_MAX {
            return;
        }
        std::mem::swap(&mut ex.waiting, &mut ex.batch);
        ex.sync_in_flight = true;
        let flush = ex
            .batch
            .iter()
            .any(|r| self.reqs[r.0 as usize].kind == ReqKind::Flush);
        self.counters.syncs += 1;
        out.push(Action::Sync { export, flush });
    }

    // ---- store completions --------------------------------------------------------

    /// A store read for `req` finished; its data is in `buf[36..36 + len]`.
    /// Writes the reply header (or an ATA UNC error) into `buf` and returns
    /// the frame length to send (0 if `req` is not a pending read).
    pub fn read_done(&mut self, req: ReqId, ok: bool, buf: &mut [u8]) -> usize {
        match self.reqs.get(req.0 as usize) {
            Some(r) if r.kind == ReqKind::Read => {}
            _ => return 0,
        }
        let Some(r) = self.release(req) else { return 0 };
        let (arg, end) = if ok {
            (
                r.arg.reply(ata::STATUS_OK, 0),
                ATA_DATA_OFFSET + usize::from(r.arg.sector_count) * SECTOR_SIZE,
            )
        } else {
            self.counters.io_errors += 1;
            self.counters.ata_errors += 1;
            (
                r.arg.reply(ata::STATUS_FAILED, ata::ERROR_UNC),
                ATA_DATA_OFFSET,
            )
        };
        self.write_reply(&r, &arg, end, buf)
    }

    /// Writes the ATA reply `arg` to the released request `r` into `buf`,
    /// from the export's own address, padded to `end`; returns the frame's
    /// length (0 if it does not fit).
    fn write_reply(&self, r: &Req, arg: &AtaArg, end: usize, buf: &mut [u8]) -> usize {
        let (mac, shelf, slot) = self.own(r.iface, ExportId(r.export));
        if write_ata_response(buf, &r.header, mac, shelf, slot, arg).is_err() {
            return 0;
        }
        finish_frame(buf, end).unwrap_or(0)
    }

    /// A store write for `req` finished. Successful writes wait for the next
    /// sync; failed ones are answered at once with ATA ERR/UNC.
    pub fn write_done(&mut self, req: ReqId, ok: bool, out: &mut Vec<Action>) {
        self.finish_write(req, ok, false, out);
    }

    /// A store write for `req` finished that the store made durable by
    /// itself (a write with `O_DSYNC` semantics): answered at once, with no
    /// sync; failed ones with ATA ERR/UNC.
    pub fn durable_write_done(&mut self, req: ReqId, ok: bool, out: &mut Vec<Action>) {
        self.finish_write(req, ok, true, out);
    }

    /// Writes of `export` handed to the store and not finished yet.
    pub fn writes_in_store(&self, export: ExportId) -> u32 {
        self.exports
            .get(usize::from(export.0))
            .map_or(0, |ex| ex.writes_in_store)
    }

    fn finish_write(&mut self, req: ReqId, ok: bool, durable: bool, out: &mut Vec<Action>) {
        self.ctl_used = 0;
        let Some(r) = self.reqs.get_mut(req.0 as usize) else {
            return;
        };
        if r.kind != ReqKind::Write {
            return;
        }
        let export = ExportId(r.export);
        let iface = r.iface;
        let gate = r.gate.take();
        if !ok {
            r.status = ata::STATUS_FAILED;
            r.error = ata::ERROR_UNC;
            self.counters.io_errors += 1;
            self.counters.ata_errors += 1;
        }
        let ex = &mut self.exports[usize::from(export.0)];
        ex.writes_in_store = ex.writes_in_store.saturating_sub(1);
        if let Some(epoch) = gate {
            self.fence_wakes |= ex.shared.gate.leave(epoch);
        }
        if ok && !durable {
            ex.waiting.push(req);
        } else {
            if ok {
                self.counters.durable_writes += 1;
            }
            out.push(Action::Reply { req, iface });
        }
        self.maybe_sync(export, out);
        if !self.held.is_empty() {
            self.release_held(out);
        }
    }

    /// The sync of `export` finished: every write and flush it covered is
    /// answered (ATA ERR/UNC if the sync failed).
    pub fn sync_done(&mut self, export: ExportId, ok: bool, out: &mut Vec<Action>) {
        self.ctl_used = 0;
        let Some(ex) = self.exports.get_mut(usize::from(export.0)) else {
            return;
        };
        if !ex.sync_in_flight {
            return;
        }
        ex.sync_in_flight = false;
        if !ok {
            self.counters.io_errors += 1;
        }
        let mut batch = std::mem::take(&mut ex.batch);
        for &req in &batch {
            let r = &mut self.reqs[req.0 as usize];
            if !ok {
                r.status = ata::STATUS_FAILED;
                r.error = ata::ERROR_UNC;
                self.counters.ata_errors += 1;
            }
            self.counters.synced_acks += 1;
            out.push(Action::Reply {
                req,
                iface: r.iface,
            });
        }
        batch.clear();
        self.exports[usize::from(export.0)].batch = batch;
        self.maybe_sync(export, out);
    }

    /// The sync of `export` will never be carried out (the store behind it was
    /// taken away, e.g. another appliance took its blades over): every write and
    /// flush it or the next one would cover is forgotten without an answer, so the
    /// client retransmits them (to another target of the shelf.slot) instead of
    /// failing them, as an ATA error would make the Linux driver do.
    pub fn abandon_sync(&mut self, export: ExportId) {
        let Some(ex) = self.exports.get_mut(usize::from(export.0)) else {
            return;
        };
        if !ex.sync_in_flight {
            return;
        }
        ex.sync_in_flight = false;
        let mut reqs = std::mem::take(&mut ex.batch);
        reqs.append(&mut ex.waiting);
        for req in reqs {
            self.drop_request(req);
        }
    }

    /// Writes the reply for a write or flush named by [`Action::Reply`] into
    /// `buf` and returns its length (60); frees the request. 0 if `req` is
    /// not awaiting a reply.
    pub fn finish_reply(&mut self, req: ReqId, buf: &mut [u8]) -> usize {
        match self.reqs.get(req.0 as usize) {
            Some(r) if matches!(r.kind, ReqKind::Write | ReqKind::Flush) => {}
            _ => return 0,
        }
        let Some(r) = self.release(req) else { return 0 };
        let arg = r.arg.reply(r.status, r.error);
        self.write_reply(&r, &arg, ATA_DATA_OFFSET, buf)
    }

    /// The driver could not carry out `req` (no buffer, submission failed):
    /// forget it; the client retransmits.
    pub fn drop_request(&mut self, req: ReqId) {
        let kind = self
            .reqs
            .get_mut(req.0 as usize)
            .map(|r| (r.kind, r.export, r.gate.take()));
        if let Some((ReqKind::Write, e, gate)) = kind {
            let ex = &mut self.exports[usize::from(e)];
            ex.writes_in_store = ex.writes_in_store.saturating_sub(1);
            if let Some(epoch) = gate {
                self.fence_wakes |= ex.shared.gate.leave(epoch);
            }
        }
        if self.release(req).is_some() {
            self.counters.driver_dropped += 1;
        }
    }

    // ---- announcements and size ---------------------------------------------------

    /// Sends an unsolicited config reply for `export` on each of its
    /// interfaces: to broadcast, or to every MAC of a non-empty mask list.
    pub fn announce(&mut self, export: ExportId, out: &mut Vec<Action>) {
        self.ctl_used = 0;
        let e = usize::from(export.0);
        if e >= self.exports.len() {
            return;
        }
        self.refresh(e);
        let bits = self.exports[e].iface_bits;
        let dsts: Vec<Mac> = if self.exports[e].cache.mask.is_empty() {
            vec![Mac::BROADCAST]
        } else {
            self.exports[e].cache.mask.clone()
        };
        for i in 0..self.ifaces.len() {
            if bits & (1 << i) == 0 {
                continue;
            }
            for &dst in &dsts {
                let req = Header::request(Mac::ZERO, dst, 0xFFFF, 0xFF, Command::QueryConfig, 0);
                self.counters.announcements += 1;
                let to = ReplyTo {
                    iface: IfaceId(i as u16),
                    export,
                    h: &req,
                };
                self.reply_config(to, aoe_wire::CCmd::Read, None, out);
            }
        }
    }

    /// Records the export's new size (all workers see it); if it changed,
    /// announces it so clients re-identify.
    pub fn resize(&mut self, export: ExportId, sectors: u64, out: &mut Vec<Action>) -> bool {
        let e = usize::from(export.0);
        if e >= self.exports.len() {
            return false;
        }
        let changed = self.exports[e].shared.set_sectors(sectors);
        self.exports[e].sectors = sectors;
        if changed {
            self.announce(export, out);
        }
        changed
    }

    // ---- reply builders -------------------------------------------------------------

    pub(crate) fn own(&self, iface: IfaceId, export: ExportId) -> (Mac, u16, u8) {
        let ex = &self.exports[usize::from(export.0)];
        (
            self.ifaces[usize::from(iface.0)].mac,
            ex.cfg.shelf,
            ex.cfg.slot,
        )
    }

    pub(crate) fn push_ctl(
        &mut self,
        iface: IfaceId,
        frame: CtlFrame,
        len: usize,
        out: &mut Vec<Action>,
    ) {
        self.counters.control_replies += 1;
        out.push(Action::Send { iface, frame, len });
    }

    /// Writes one reply from this export's own address into a free control frame
    /// and queues it. `write` gets the frame buffer and the export's MAC, shelf and
    /// slot and returns the frame's length; a reply that does not fit is dropped, as
    /// is the whole reply when no control frame is free in this call.
    pub(crate) fn reply_ctl(
        &mut self,
        to: ReplyTo<'_>,
        out: &mut Vec<Action>,
        write: impl FnOnce(&mut [u8], Mac, u16, u8) -> Result<usize, WireError>,
    ) {
        let (mac, shelf, slot) = self.own(to.iface, to.export);
        let Some((f, buf)) = self.take_ctl() else {
            return;
        };
        let len = write(buf, mac, shelf, slot).unwrap_or(0);
        if len > 0 {
            self.push_ctl(to.iface, f, len, out);
        }
    }

    fn reply_ata(&mut self, to: ReplyTo<'_>, arg: &AtaArg, out: &mut Vec<Action>) {
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            write_ata_response(buf, to.h, mac, shelf, slot, arg)
                .and_then(|end| finish_frame(buf, end))
        });
    }

    fn reply_ata_fail(&mut self, to: ReplyTo<'_>, arg: &AtaArg, error: u8, out: &mut Vec<Action>) {
        self.counters.ata_errors += 1;
        self.reply_ata(to, &arg.reply(ata::STATUS_FAILED, error), out);
    }

    /// An ATA command from a MAC the reserve list excludes: refused like a
    /// drive refuses (ERR + ABRT), which the Linux driver fails at once with
    /// EIO; an AoE error it would drop and retransmit for `aoe_deadsecs`.
    fn refuse_fenced(&mut self, to: ReplyTo<'_>, arg: &AtaArg, out: &mut Vec<Action>) {
        self.counters.reservation_conflicts += 1;
        self.exports[usize::from(to.export.0)].shared.count_fenced();
        self.reply_ata_fail(to, arg, ata::ERROR_ABRT, out);
    }

    fn reply_identify(&mut self, to: ReplyTo<'_>, arg: &AtaArg, out: &mut Vec<Action>) {
        let ex = &self.exports[usize::from(to.export.0)];
        let mut id = match Identify::new(
            &ex.cache.serial,
            &self.cfg.firmware_rev,
            &self.cfg.model,
            ex.sectors,
        ) {
            Ok(id) => id,
            Err(_) => return self.reply_ata_fail(to, arg, ata::ERROR_ABRT, out),
        };
        id.flush = true;
        id.flush_ext = true;
        let mut block = [0u8; IDENTIFY_LEN];
        if id.emit(&mut block).is_err() {
            return self.reply_ata_fail(to, arg, ata::ERROR_ABRT, out);
        }
        let reply = arg.reply(ata::STATUS_OK, 0);
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            write_ata_response(buf, to.h, mac, shelf, slot, &reply).map(|at| {
                buf[at..at + IDENTIFY_LEN].copy_from_slice(&block);
                at + IDENTIFY_LEN
            })
        });
    }

    /// Bare header with the E flag and `code`, padded (unknown commands).
    fn reply_error_bare(&mut self, to: ReplyTo<'_>, code: ErrorCode, out: &mut Vec<Action>) {
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            let hdr = to.h.response_to(mac, shelf, slot).with_error(code);
            hdr.emit(buf).and_then(|end| finish_frame(buf, end))
        });
    }
}

/// The bytes of control frame `f` in the pool `ctl`.
pub(crate) fn ctl_buf(ctl: &mut [u8], f: CtlFrame) -> &mut [u8] {
    let at = usize::from(f.0) * CTL_FRAME_LEN;
    &mut ctl[at..at + CTL_FRAME_LEN]
}
