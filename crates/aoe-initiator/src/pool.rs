//! The initiator pool: every blade seen on the pool's interfaces, the frames
//! in flight to them and the block I/Os those frames carry.
//!
//! Sans-IO: the caller feeds received frames ([`Pool::handle_frame`]) and
//! time ([`Pool::handle_timeout`]), and drains frames to send
//! ([`Pool::poll_transmit`], written straight into the caller's send
//! buffer), I/O completions ([`Pool::poll_completion`]) and events
//! ([`Pool::poll_event`]). After any `handle_*` or `submit` call, drain
//! `poll_transmit` until it returns `None` and re-read [`Pool::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use aoe_wire::{
    ata, finish_frame, parse, sectors_per_frame, write_ata_request, AoeAddr, AtaArg, CCmd, Command,
    ErrorCode, Header, Identify, Mac, MacList, Message, Packet, QueryConfig, Reserve,
    ATA_DATA_OFFSET, BROADCAST_MAC, BROADCAST_SHELF, BROADCAST_SLOT, SECTOR_SIZE,
};

use crate::blade::{
    ActiveWrite, Blade, BladeId, BladeInfo, BladeState, BladeStats, Lingering, Path,
};
use crate::frames::{Frame, FrameKind, FrameSlab};
use crate::io::{IoCompletion, IoError, IoRequest, Op, Rejected, SubmitError};
use crate::reserve::{ReserveCompletion, ReserveError, ReserveOps, ReserveRequest};
use crate::window::{Window, WindowNote};
use crate::PoolConfig;

/// Tag of our Query Config requests (as Linux; unsolicited announcements use it too).
const CONFIG_TAG: u32 = 0;

/// A local interface the pool sends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Mac,
    pub mtu: u32,
}

/// Something the pool's owner should know (and usually log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new shelf.slot answered Query Config.
    BladeFound {
        blade: BladeId,
        shelf: u16,
        slot: u8,
    },
    /// Another (interface, blade MAC) pair answered for a known blade.
    PathAdded {
        blade: BladeId,
        iface: usize,
        mac: Mac,
    },
    /// IDENTIFY answered: the blade accepts I/O (first time or after being down).
    BladeUp { blade: BladeId, sectors: u64 },
    /// No answer within the dead time: every outstanding I/O failed.
    BladeDown { blade: BladeId, failed_ios: usize },
    /// A later IDENTIFY reported a different capacity.
    CapacityChanged { blade: BladeId, old: u64, new: u64 },
    /// A condition handled with a safe choice (odd Buffer Count, capacity 0,
    /// failed IDENTIFY, …), worth a log line.
    Notice {
        blade: Option<BladeId>,
        message: String,
    },
}

/// A frame written by [`Pool::poll_transmit`]: send `buf[..len]` on interface `iface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub iface: usize,
    pub len: usize,
}

/// Pool-wide counters of frames that belong to no blade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Frames that do not parse as AoE.
    pub malformed: u64,
    /// Requests (R clear) and commands we never send.
    pub ignored: u64,
    /// Replies for a shelf.slot we do not know, with no live tag.
    pub unknown_blade: u64,
    pub config_replies: u64,
    /// Config replies with the E flag.
    pub config_errors: u64,
    /// Config replies with a broadcast/reserved address or source MAC.
    pub bad_address: u64,
}

struct Io {
    blade: u32,
    op: Op,
    lba: u64,
    sectors: u32,
    /// Sectors (or, for Flush, the single command) already cut into frames.
    issued: u32,
    frames_out: u32,
    error: Option<IoError>,
    buf: Vec<u8>,
    user: u64,
    /// Unanswered earlier sends of its finished frames (see [`Lingering`]).
    copies: Vec<u32>,
    /// Latest send of a finished frame that has such copies.
    last_copied_send: Option<Instant>,
}

impl Io {
    fn units(&self) -> u32 {
        if self.op == Op::Flush {
            1
        } else {
            self.sectors
        }
    }
    fn end(&self) -> u64 {
        self.lba + u64::from(self.sectors)
    }
}

#[derive(Debug, Clone, Copy)]
struct ConfigQuery {
    iface: usize,
    shelf: u16,
    slot: u8,
}

/// The initiator pool.
pub struct Pool {
    cfg: PoolConfig,
    ifaces: Vec<Interface>,
    blades: Vec<Blade>,
    by_addr: HashMap<(u16, u8), u32>,
    frames: FrameSlab,
    ios: Vec<Option<Io>>,
    free_ios: Vec<u32>,
    control: VecDeque<ConfigQuery>,
    completions: VecDeque<IoCompletion>,
    reserves: ReserveOps,
    events: VecDeque<Event>,
    next_blade: usize,
    scratch: Vec<u16>,
    ios_outstanding: usize,
    stats: PoolStats,
    /// No frame or probe is due before this (see [`Pool::poll_timeout`]).
    timer_floor: Option<Instant>,
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Pool {
        Pool {
            cfg,
            ifaces: Vec::new(),
            blades: Vec::new(),
            by_addr: HashMap::new(),
            frames: FrameSlab::new(),
            ios: Vec::new(),
            free_ios: Vec::new(),
            control: VecDeque::new(),
            completions: VecDeque::new(),
            reserves: ReserveOps::default(),
            events: VecDeque::new(),
            next_blade: 0,
            scratch: Vec::new(),
            ios_outstanding: 0,
            stats: PoolStats::default(),
            timer_floor: None,
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    /// Adds a local interface; returns its index (used in [`Transmit`] and
    /// [`Pool::handle_frame`]).
    pub fn add_interface(&mut self, name: &str, mac: Mac, mtu: u32) -> usize {
        self.ifaces.push(Interface {
            name: name.to_string(),
            mac,
            mtu,
        });
        self.ifaces.len() - 1
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    /// Queues a broadcast Query Config on every interface.
    pub fn discover(&mut self) {
        for iface in 0..self.ifaces.len() {
            self.control.push_back(ConfigQuery {
                iface,
                shelf: BROADCAST_SHELF,
                slot: BROADCAST_SLOT,
            });
        }
    }

    /// Queues a Query Config for one shelf.slot on every interface.
    pub fn query(&mut self, shelf: u16, slot: u8) {
        for iface in 0..self.ifaces.len() {
            self.control.push_back(ConfigQuery { iface, shelf, slot });
        }
    }

    /// Sends IDENTIFY again (capacity refresh). False if the blade is
    /// unknown or down, or an IDENTIFY is already outstanding.
    pub fn reidentify(&mut self, now: Instant, blade: BladeId) -> bool {
        match self.blades.get(blade.index()) {
            Some(b) if b.state != BladeState::Down && b.identify_frame.is_none() => {
                self.queue_identify(now, blade.0);
                true
            }
            _ => false,
        }
    }

    pub fn blade_ids(&self) -> impl Iterator<Item = BladeId> {
        (0..self.blades.len() as u32).map(BladeId)
    }

    pub fn find(&self, shelf: u16, slot: u8) -> Option<BladeId> {
        self.by_addr.get(&(shelf, slot)).map(|&i| BladeId(i))
    }

    pub fn blade_state(&self, id: BladeId) -> Option<BladeState> {
        self.blades.get(id.index()).map(|b| b.state)
    }

    /// Capacity in sectors (0 until identified).
    pub fn capacity(&self, id: BladeId) -> Option<u64> {
        self.blades.get(id.index()).map(|b| b.sectors)
    }

    pub fn sectors_per_frame(&self, id: BladeId) -> Option<u8> {
        self.blades.get(id.index()).map(|b| b.sectors_per_frame)
    }

    pub fn blade_stats(&self, id: BladeId) -> Option<BladeStats> {
        self.blades
            .get(id.index())
            .map(|b| b.snapshot_stats(&self.cfg))
    }

    pub fn blade_info(&self, id: BladeId) -> Option<BladeInfo> {
        let b = self.blades.get(id.index())?;
        Some(BladeInfo {
            id,
            shelf: b.shelf,
            slot: b.slot,
            state: b.state,
            sectors: b.sectors,
            lba48: b.identify.is_some_and(|i| i.lba48),
            buffer_count: b.buffer_count,
            sectors_per_frame: b.sectors_per_frame,
            firmware: b.firmware,
            config: b.config.clone(),
            model: b
                .identify
                .map(|i| i.model_str().to_string())
                .unwrap_or_default(),
            serial: b
                .identify
                .map(|i| i.serial_str().to_string())
                .unwrap_or_default(),
            paths: b.paths.clone(),
            stats: b.snapshot_stats(&self.cfg),
        })
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// I/Os submitted and not yet completed (completions not yet polled
    /// are not counted).
    pub fn ios_outstanding(&self) -> usize {
        self.ios_outstanding
    }

    /// Frames in flight or waiting for a resend, over all blades.
    pub fn frames_in_flight(&self) -> usize {
        self.frames.live()
    }

    pub fn poll_completion(&mut self) -> Option<IoCompletion> {
        self.completions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next finished Reserve/Release request.
    pub fn poll_reserve(&mut self) -> Option<ReserveCompletion> {
        self.reserves.poll_done()
    }

    /// Reserve/Release requests queued and not completed yet.
    pub fn reserves_outstanding(&self) -> usize {
        self.reserves.outstanding()
    }

    /// Queues a Reserve/Release request: one frame to each of the blade's
    /// paths, retransmitted like any frame (read and set are idempotent, so a
    /// resend after a lost reply does no harm); it completes when every path
    /// answered, or with [`ReserveError::BladeDown`] once the blade is declared
    /// dead. The blade must have answered Query Config (it need not be
    /// identified: a reservation is taken before the first read).
    pub fn reserve(&mut self, now: Instant, req: ReserveRequest) -> Result<(), SubmitError> {
        let bi = req.blade.0;
        let Some(b) = self.blades.get(req.blade.index()) else {
            return Err(SubmitError::UnknownBlade);
        };
        if b.state == BladeState::Down {
            return Err(SubmitError::Down);
        }
        let paths = b.paths.len() as u16;
        if paths == 0 {
            return Err(SubmitError::NotReady);
        }
        let idx = self.reserves.start(req, u32::from(paths));
        for p in 0..paths {
            let mut frame = Frame::unsent(bi, FrameKind::Reserve, idx, (0, 0), 0, now);
            frame.pin = Some(p);
            match self.frames.insert(frame) {
                Some(fi) => {
                    let b = &mut self.blades[bi as usize];
                    b.in_flight += 1;
                    b.resend.push_back(fi);
                }
                None => self
                    .reserves
                    .path_done(idx, Err(ReserveError::Encode("no frame slot".into()))),
            }
        }
        Ok(())
    }

    // ---- submitting I/O -------------------------------------------------------------

    /// Queues a block I/O. Large I/Os are cut into frames of the blade's
    /// sectors-per-frame, spread over its paths; the completion comes when
    /// every frame is done. A write overlapping a write still in flight (or
    /// queued earlier) waits for it.
    pub fn submit(&mut self, _now: Instant, req: IoRequest) -> Result<(), Rejected> {
        let reject = |error, req: IoRequest| {
            Err(Rejected {
                error,
                buf: req.buf,
                user: req.user,
            })
        };
        let Some(b) = self.blades.get(req.blade.index()) else {
            return reject(SubmitError::UnknownBlade, req);
        };
        match b.state {
            BladeState::Up => {}
            BladeState::Identifying => return reject(SubmitError::NotReady, req),
            BladeState::Down => return reject(SubmitError::Down, req),
        }
        if req.op != Op::Flush {
            if req.sectors == 0 {
                return reject(SubmitError::Empty, req);
            }
            let need = req.sectors as usize * SECTOR_SIZE;
            if req.buf.len() < need {
                let have = req.buf.len();
                return reject(SubmitError::BufferTooSmall { need, have }, req);
            }
            if req
                .lba
                .checked_add(u64::from(req.sectors))
                .is_none_or(|end| end > b.sectors)
            {
                let e = SubmitError::OutOfRange {
                    lba: req.lba,
                    sectors: req.sectors,
                    capacity: b.sectors,
                };
                return reject(e, req);
            }
        } else if !b.identify.is_some_and(|i| i.flush || i.flush_ext) {
            // Nothing to flush: the blade declares no volatile cache command.
            self.completions.push_back(IoCompletion {
                user: req.user,
                blade: req.blade,
                op: Op::Flush,
                lba: 0,
                sectors: 0,
                buf: req.buf,
                result: Ok(()),
            });
            return Ok(());
        }
        let bi = req.blade.0;
        let io = Io {
            blade: bi,
            op: req.op,
            lba: req.lba,
            sectors: if req.op == Op::Flush { 0 } else { req.sectors },
            issued: 0,
            frames_out: 0,
            error: None,
            buf: req.buf,
            user: req.user,
            copies: Vec::new(),
            last_copied_send: None,
        };
        let (lba, end, write) = (io.lba, io.end(), io.op == Op::Write);
        let idx = match self.free_ios.pop() {
            Some(i) => {
                self.ios[i as usize] = Some(io);
                i
            }
            None => {
                self.ios.push(Some(io));
                (self.ios.len() - 1) as u32
            }
        };
        self.ios_outstanding += 1;
        let b = &mut self.blades[bi as usize];
        if write {
            let ios = &self.ios;
            let overlaps = b.write_overlaps(lba, end)
                || b.blocked.iter().any(|&j| {
                    ios[j as usize]
                        .as_ref()
                        .is_some_and(|o| o.lba < end && lba < o.end())
                });
            if overlaps {
                b.blocked.push_back(idx);
                return Ok(());
            }
            b.active_writes.push(ActiveWrite { lba, end, io: idx });
        }
        b.ready.push_back(idx);
        Ok(())
    }

    // ---- sending --------------------------------------------------------------------

    /// Writes the next frame to send into `buf` (a send slot of at least the
    /// largest interface MTU + 14 bytes). `None` when nothing may be sent now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(q) = self.control.pop_front() {
            if let Some(t) = self.emit_query(q, buf) {
                return Some(t);
            }
        }
        let n = self.blades.len();
        for k in 0..n {
            let bi = (self.next_blade + k) % n;
            if let Some(t) = self.transmit_blade(now, bi, buf) {
                self.next_blade = bi + 1;
                return Some(t);
            }
        }
        None
    }

    /// True if `poll_transmit` may have something (cheap pre-check).
    pub fn has_transmit(&self) -> bool {
        !self.control.is_empty()
            || self.blades.iter().any(|b| {
                !b.resend.is_empty()
                    || (b.state == BladeState::Up
                        && !b.ready.is_empty()
                        && b.in_flight < b.window.cwnd())
            })
    }

    fn emit_query(&mut self, q: ConfigQuery, buf: &mut [u8]) -> Option<Transmit> {
        let iface = self.ifaces.get(q.iface)?;
        let header = Header::request(
            BROADCAST_MAC,
            iface.mac,
            q.shelf,
            q.slot,
            Command::QueryConfig,
            CONFIG_TAG,
        );
        let len = QueryConfig::request(CCmd::Read, &[])
            .emit(&header, buf)
            .ok()?;
        Some(Transmit {
            iface: q.iface,
            len,
        })
    }

    fn transmit_blade(&mut self, now: Instant, bi: usize, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let b = &mut self.blades[bi];
            if b.state == BladeState::Down {
                return None;
            }
            if let Some(fi) = b.resend.pop_front() {
                match self.send_frame(now, fi, buf) {
                    Some(t) => return Some(t),
                    None => continue,
                }
            }
            if b.state != BladeState::Up || b.in_flight >= b.window.cwnd() {
                return None;
            }
            let &io_idx = b.ready.front()?;
            let Some(io) = self.ios[io_idx as usize].as_mut() else {
                b.ready.pop_front();
                continue;
            };
            if io.error.is_some() {
                // A frame of it failed: cut no more, finish what is out.
                b.ready.pop_front();
                continue;
            }
            let room = buf.len().saturating_sub(ATA_DATA_OFFSET) / SECTOR_SIZE;
            let spf = u32::from(b.sectors_per_frame).min(room as u32).max(1);
            let n = if io.op == Op::Flush {
                1
            } else {
                spf.min(io.sectors - io.issued)
            };
            let sectors = if io.op == Op::Flush { 0 } else { n as u8 };
            let frame = Frame::unsent(
                bi as u32,
                FrameKind::Data,
                io_idx,
                (io.lba + u64::from(io.issued), sectors),
                io.issued as usize * SECTOR_SIZE,
                now,
            );
            let fi = self.frames.insert(frame)?;
            io.issued += n;
            io.frames_out += 1;
            if io.issued >= io.units() {
                b.ready.pop_front();
            }
            b.in_flight += 1;
            if let Some(t) = self.send_frame(now, fi, buf) {
                return Some(t);
            }
        }
    }

    /// Emits the next send of frame `fi`. On an encoding failure the frame
    /// completes with the error and `None` is returned.
    fn send_frame(&mut self, now: Instant, fi: u16, buf: &mut [u8]) -> Option<Transmit> {
        let f = self.frames.get(fi)?;
        let bi = f.blade as usize;
        let b = &mut self.blades[bi];
        let retry = f.first_sent.is_some();
        let pick = match f.pin {
            Some(p) => Some(p).filter(|&p| usize::from(p) < b.paths.len()),
            None => b.pick_path(
                now,
                self.cfg.path_loss_limit,
                self.cfg.probe_interval,
                if retry { f.path } else { None },
            ),
        };
        let Some(pi) = pick else {
            self.frame_done(now, fi, Err(IoError::BladeDown));
            return None;
        };
        let path = &b.paths[usize::from(pi)];
        let iface = path.iface;
        let src = self.ifaces[iface].mac;
        let lba48 = b.identify.is_some_and(|i| i.lba48);
        let (arg, data): (Result<AtaArg, _>, &[u8]) = match f.kind {
            FrameKind::Reserve => {
                let Some(op) = self.reserves.get(f.io) else {
                    self.frame_done(now, fi, Err(IoError::Encode("request vanished".into())));
                    return None;
                };
                let tag = self.frames.next_tag(fi);
                let header =
                    Header::request(path.mac, src, b.shelf, b.slot, Command::ReserveRelease, tag);
                let msg = Reserve {
                    rcmd: op.cmd.rcmd(),
                    macs: MacList::from_slice(&op.macs),
                };
                return match msg.emit(&header, buf) {
                    Ok(len) => self.sent(now, fi, pi, tag, retry, Transmit { iface, len }),
                    Err(e) => {
                        self.frame_done(now, fi, Err(IoError::Encode(e.to_string())));
                        None
                    }
                };
            }
            FrameKind::Identify => (Ok(AtaArg::identify()), &[]),
            FrameKind::Data => {
                let Some(io) = self.ios[f.io as usize].as_ref() else {
                    self.frame_done(now, fi, Err(IoError::Encode("I/O vanished".into())));
                    return None;
                };
                match io.op {
                    Op::Read => (AtaArg::read_write(false, f.lba, f.sectors, lba48), &[]),
                    Op::Write => {
                        let len = usize::from(f.sectors) * SECTOR_SIZE;
                        (
                            AtaArg::read_write(true, f.lba, f.sectors, lba48),
                            &io.buf[f.buf_off..f.buf_off + len],
                        )
                    }
                    Op::Flush => {
                        let flush_ext_only = b.identify.is_some_and(|i| i.flush_ext && !i.flush);
                        let cmd = if flush_ext_only {
                            ata::FLUSH_EXT
                        } else {
                            ata::FLUSH
                        };
                        (Ok(AtaArg::no_data(cmd)), &[])
                    }
                }
            }
        };
        let tag = self.frames.next_tag(fi);
        let header = Header::request(path.mac, src, b.shelf, b.slot, Command::Ata, tag);
        let written = arg.and_then(|arg| {
            let off = write_ata_request(buf, &header, &arg)?;
            let end = off + data.len();
            if buf.len() < end {
                return Err(aoe_wire::WireError::BufferTooSmall {
                    need: end,
                    have: buf.len(),
                });
            }
            buf[off..end].copy_from_slice(data);
            finish_frame(buf, end)
        });
        let len = match written {
            Ok(len) => len,
            Err(e) => {
                self.frame_done(now, fi, Err(IoError::Encode(e.to_string())));
                return None;
            }
        };
        self.sent(now, fi, pi, tag, retry, Transmit { iface, len })
    }

    /// Records a send of frame `fi` on path `pi` with `tag`: its timeout, the
    /// counters, the timer.
    fn sent(
        &mut self,
        now: Instant,
        fi: u16,
        pi: u16,
        tag: u32,
        retry: bool,
        t: Transmit,
    ) -> Option<Transmit> {
        let b = &mut self.blades[self.frames.get(fi)?.blade as usize];
        let timeout = b
            .rtt
            .backoff(&self.cfg, self.frames.get(fi).map_or(0, |f| f.retries));
        b.stats.frames_sent += 1;
        if retry {
            b.stats.retransmits += 1;
        }
        let f = self.frames.get_mut(fi)?;
        if retry {
            f.superseded = Some((f.tag, f.sent_at));
        }
        f.tag = tag;
        f.path = Some(pi);
        f.on_wire = true;
        f.sent_at = now;
        let first = *f.first_sent.get_or_insert(now);
        f.deadline = now + timeout;
        let due = f.deadline.min(first + self.cfg.dead_time);
        self.lower_timer_floor(due);
        Some(t)
    }

    fn queue_identify(&mut self, now: Instant, bi: u32) {
        let b = &mut self.blades[bi as usize];
        if b.identify_frame.is_some() {
            return;
        }
        // `sent_at`/`deadline` are set again by the first send.
        let frame = Frame::unsent(bi, FrameKind::Identify, u32::MAX, (0, 1), 0, now);
        if let Some(fi) = self.frames.insert(frame) {
            b.identify_frame = Some(fi);
            b.in_flight += 1;
            b.resend.push_back(fi);
        }
    }

    // ---- receiving ------------------------------------------------------------------

    /// Handles one frame received on interface `iface` at `now`. Anything
    /// that is not a valid reply to us is counted and dropped; never panics.
    pub fn handle_frame(&mut self, now: Instant, iface: usize, frame: &[u8]) {
        let pkt = match parse(frame) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if !pkt.header.response || iface >= self.ifaces.len() {
            self.stats.ignored += 1;
            return;
        }
        match pkt.header.command {
            Command::Ata => self.on_ata(now, iface, &pkt),
            Command::QueryConfig => self.on_config(now, iface, &pkt),
            Command::ReserveRelease => self.on_reserve(now, iface, &pkt),
            _ => {
                if !self.drop_if_live_tag(pkt.header.tag) {
                    self.stats.ignored += 1;
                }
            }
        }
    }

    /// A reply of the wrong kind carrying a live ATA tag is a forgery (or a
    /// confused peer): count it on the tag's blade. True if it was one.
    fn drop_if_live_tag(&mut self, tag: u32) -> bool {
        match self.frames.lookup(tag).and_then(|fi| self.frames.get(fi)) {
            Some(f) => {
                self.blades[f.blade as usize].stats.forged_drops += 1;
                true
            }
            None => false,
        }
    }

    /// A reply to the send a timeout superseded. Its data is not used (the
    /// retransmission may still land, and only the current tag completes a
    /// frame), but its round trip is real: without it the estimator would
    /// learn only from sends that were quick, and keep timing out the slow
    /// ones. If the frame had timed out once, the timeout was spurious and
    /// the window cut is undone.
    fn late_reply(&mut self, now: Instant, iface: usize, bi: usize, h: &Header) {
        let Some(fi) = self.frames.lookup_superseded(h.tag) else {
            return;
        };
        let Some(f) = self.frames.get_mut(fi) else {
            return;
        };
        if f.blade as usize != bi {
            return;
        }
        let b = &mut self.blades[bi];
        let Some(path) = b
            .paths
            .iter_mut()
            .find(|p| p.mac == h.src && p.iface == iface)
        else {
            return;
        };
        path.losses = 0;
        let Some((_, sent)) = f.superseded.take() else {
            return;
        };
        b.rtt.sample(now.saturating_duration_since(sent));
        if f.retries == 1 && b.window.undo_cut() {
            b.stats.spurious_timeouts += 1;
        }
    }

    /// A reply to an earlier send of a write frame: that copy has landed and
    /// cannot land again, so it no longer holds back overlapping writes.
    fn copy_answered(&mut self, iface: usize, bi: usize, h: &Header) {
        let b = &mut self.blades[bi];
        if !b.paths.iter().any(|p| p.mac == h.src && p.iface == iface) {
            return;
        }
        // The low 16 bits of a tag are its frame's slot.
        if let Some(f) = self.frames.get_mut(h.tag as u16) {
            if f.blade as usize == bi {
                f.copies.retain(|&t| t != h.tag);
            }
        }
        let Some(k) = b.lingering.iter().position(|l| l.copies.contains(&h.tag)) else {
            return;
        };
        b.lingering[k].copies.retain(|&t| t != h.tag);
        if b.lingering[k].copies.is_empty() {
            b.lingering.swap_remove(k);
            self.unblock_writes(bi);
        }
    }

    /// The frame a reply answers, if it matches that frame's current send in
    /// tag, source MAC, interface, shelf.slot and command; the reply's round
    /// trip, window credit and path health are taken in. Anything else is
    /// counted (stale, forged, unknown) and `None`.
    fn match_reply(&mut self, now: Instant, iface: usize, h: &Header) -> Option<u16> {
        let Some(fi) = self.frames.lookup(h.tag) else {
            match self.by_addr.get(&(h.shelf, h.slot)) {
                Some(&bi) => {
                    self.blades[bi as usize].stats.stale_drops += 1;
                    self.copy_answered(iface, bi as usize, h);
                    self.late_reply(now, iface, bi as usize, h);
                }
                None => self.stats.unknown_blade += 1,
            }
            return None;
        };
        let f = self.frames.get(fi)?;
        let b = &mut self.blades[f.blade as usize];
        let Some(pi) = f.path.map(usize::from) else {
            b.stats.forged_drops += 1;
            return None;
        };
        let path = &b.paths[pi];
        let reserve = f.kind == FrameKind::Reserve;
        if h.shelf != b.shelf
            || h.slot != b.slot
            || h.src != path.mac
            || iface != path.iface
            || (h.command == Command::ReserveRelease) != reserve
        {
            b.stats.forged_drops += 1;
            return None;
        }
        b.stats.frames_received += 1;
        b.rtt.sample(now.saturating_duration_since(f.sent_at));
        b.window.on_reply();
        b.paths[pi].losses = 0;
        Some(fi)
    }

    fn on_reserve(&mut self, now: Instant, iface: usize, pkt: &Packet<'_>) {
        let h = &pkt.header;
        let Some(fi) = self.match_reply(now, iface, h) else {
            return;
        };
        let list = match &pkt.message {
            Message::Reserve(r) => r.macs.iter().collect(),
            _ => Vec::new(),
        };
        let result = match h.error {
            None => Ok(list),
            // vblade answers a refused Set with the list that stands.
            Some(ErrorCode::TargetReserved) => Err(ReserveError::Held(list)),
            Some(code) => Err(ReserveError::Aoe(code)),
        };
        if let Some(f) = self.retire_frame(fi) {
            if result.is_err() {
                self.blades[f.blade as usize].stats.aoe_errors += 1;
            }
            self.reserves.path_done(f.io, result);
        }
    }

    fn on_ata(&mut self, now: Instant, iface: usize, pkt: &Packet<'_>) {
        let h = &pkt.header;
        let Some(fi) = self.match_reply(now, iface, h) else {
            return;
        };
        let Some(f) = self.frames.get(fi) else {
            return;
        };
        let bi = f.blade as usize;
        let b = &mut self.blades[bi];
        let result = if let Some(code) = h.error {
            b.stats.aoe_errors += 1;
            Err(IoError::Aoe(code))
        } else {
            match &pkt.message {
                Message::Ata(a) if a.arg.is_failed() => {
                    b.stats.ata_errors += 1;
                    Err(IoError::Ata {
                        status: a.arg.cmd_status,
                        error: a.arg.err_feature,
                    })
                }
                Message::Ata(a) => match f.kind {
                    FrameKind::Identify => match Identify::parse(a.data) {
                        Ok(id) => {
                            self.identified(bi, id);
                            Ok(())
                        }
                        Err(_) => Err(IoError::Runt {
                            got: a.data.len(),
                            need: aoe_wire::IDENTIFY_LEN,
                        }),
                    },
                    FrameKind::Data => {
                        let need = usize::from(f.sectors) * SECTOR_SIZE;
                        match self.ios[f.io as usize].as_mut() {
                            Some(io) if io.op == Op::Read => {
                                if a.data.len() < need {
                                    Err(IoError::Runt {
                                        got: a.data.len(),
                                        need,
                                    })
                                } else {
                                    io.buf[f.buf_off..f.buf_off + need]
                                        .copy_from_slice(&a.data[..need]);
                                    Ok(())
                                }
                            }
                            _ => Ok(()),
                        }
                    }
                    // `match_reply` never pairs an ATA reply with a Reserve frame.
                    FrameKind::Reserve => Ok(()),
                },
                _ => Err(IoError::Runt { got: 0, need: 0 }),
            }
        };
        self.frame_done(now, fi, result);
    }

    fn identified(&mut self, bi: usize, id: Identify) {
        let blade = BladeId(bi as u32);
        let b = &mut self.blades[bi];
        let old = b.identify.map(|i| i.sectors);
        b.sectors = id.sectors;
        b.identify = Some(id);
        if let Some(old) = old.filter(|&o| o != id.sectors) {
            self.events.push_back(Event::Notice {
                blade: Some(blade),
                message: format!(
                    "e{}.{} capacity changed from {old} to {} sectors",
                    b.shelf, b.slot, id.sectors
                ),
            });
            self.events.push_back(Event::CapacityChanged {
                blade,
                old,
                new: id.sectors,
            });
        }
        if id.sectors == 0 {
            self.events.push_back(Event::Notice {
                blade: Some(blade),
                message: format!(
                    "e{}.{} reports capacity 0: every read/write to it will be refused",
                    b.shelf, b.slot
                ),
            });
        }
        if b.state != BladeState::Up {
            b.state = BladeState::Up;
            b.next_probe = None;
            self.events.push_back(Event::BladeUp {
                blade,
                sectors: id.sectors,
            });
        }
    }

    fn on_config(&mut self, now: Instant, iface: usize, pkt: &Packet<'_>) {
        let h = &pkt.header;
        if h.tag != CONFIG_TAG && self.drop_if_live_tag(h.tag) {
            return;
        }
        let Message::QueryConfig(qc) = &pkt.message else {
            self.stats.config_errors += 1;
            return;
        };
        if h.error.is_some() {
            self.stats.config_errors += 1;
            return;
        }
        // A broadcast value or shelf 4095 cannot name a blade (Linux refuses them too).
        if AoeAddr::new(h.shelf, h.slot).is_err() || !h.src.is_unicast() {
            self.stats.bad_address += 1;
            return;
        }
        self.stats.config_replies += 1;
        let bi = match self.by_addr.get(&(h.shelf, h.slot)) {
            Some(&bi) => bi,
            None => {
                let (window, _) = Window::new(qc.buffer_count, self.cfg.max_window);
                self.blades.push(Blade::new(h.shelf, h.slot, window));
                let bi = (self.blades.len() - 1) as u32;
                self.by_addr.insert((h.shelf, h.slot), bi);
                self.events.push_back(Event::BladeFound {
                    blade: BladeId(bi),
                    shelf: h.shelf,
                    slot: h.slot,
                });
                bi
            }
        };
        let blade = BladeId(bi);
        let local = sectors_per_frame(self.ifaces[iface].mtu);
        let limit = aoe_wire::effective_sector_count(local)
            .min(aoe_wire::effective_sector_count(qc.sector_count));
        if qc.sector_count == 0 {
            let b = &self.blades[bi as usize];
            if b.paths.iter().all(|p| p.iface != iface || p.mac != h.src) {
                self.events.push_back(Event::Notice {
                    blade: Some(blade),
                    message: format!(
                        "e{}.{} advertises Sector Count 0 on {}: using 2 sectors per frame",
                        h.shelf, h.slot, self.ifaces[iface].name
                    ),
                });
            }
        }
        let b = &mut self.blades[bi as usize];
        match b
            .paths
            .iter_mut()
            .find(|p| p.iface == iface && p.mac == h.src)
        {
            Some(p) => {
                p.buffer_count = qc.buffer_count;
                p.sector_limit = limit;
            }
            None => {
                b.paths.push(Path {
                    iface,
                    mac: h.src,
                    buffer_count: qc.buffer_count,
                    sector_limit: limit,
                    losses: 0,
                    last_loss: None,
                });
                self.events.push_back(Event::PathAdded {
                    blade,
                    iface,
                    mac: h.src,
                });
            }
        }
        b.recompute_sectors_per_frame();
        let bufcnt = b.paths.iter().map(|p| p.buffer_count).max().unwrap_or(0);
        let first = b.stats.frames_sent == 0 && b.buffer_count == 0 && b.identify.is_none();
        if bufcnt != b.buffer_count || first {
            let note = b.window.set_buffer_count(bufcnt, self.cfg.max_window);
            b.buffer_count = bufcnt;
            if let Some(WindowNote::TinyBufferCount(n)) = note {
                self.events.push_back(Event::Notice {
                    blade: Some(blade),
                    message: format!(
                        "e{}.{} advertises Buffer Count {n}: keeping at most 1 frame outstanding",
                        b.shelf, b.slot
                    ),
                });
            }
        }
        b.firmware = qc.firmware;
        if b.config.as_slice() != qc.config {
            b.config.clear();
            b.config.extend_from_slice(qc.config);
        }
        match b.state {
            BladeState::Up => {}
            BladeState::Identifying => {
                if b.identify_frame.is_none() {
                    self.queue_identify(now, bi);
                }
            }
            BladeState::Down => {
                // It answers again: start over from a fresh window and identify.
                b.state = BladeState::Identifying;
                b.next_probe = None;
                let (window, _) = Window::new(b.buffer_count, self.cfg.max_window);
                b.window = window;
                b.rtt = Default::default();
                for p in &mut b.paths {
                    p.losses = 0;
                    p.last_loss = None;
                }
                self.queue_identify(now, bi);
            }
        }
    }

    // ---- completing -----------------------------------------------------------------

    /// Frees frame `fi` and its place in its blade's window.
    fn retire_frame(&mut self, fi: u16) -> Option<Frame> {
        let f = self.frames.remove(fi)?;
        let b = &mut self.blades[f.blade as usize];
        b.in_flight = b.in_flight.saturating_sub(1);
        b.resend.retain(|&x| x != fi);
        Some(f)
    }

    fn frame_done(&mut self, now: Instant, fi: u16, result: Result<(), IoError>) {
        let Some(mut f) = self.retire_frame(fi) else {
            return;
        };
        let bi = f.blade as usize;
        let b = &mut self.blades[bi];
        match f.kind {
            FrameKind::Reserve => {
                let e = match result {
                    Ok(()) => None,
                    Err(IoError::BladeDown) => Some(ReserveError::BladeDown),
                    Err(IoError::Aoe(code)) => Some(ReserveError::Aoe(code)),
                    Err(other) => Some(ReserveError::Encode(other.to_string())),
                };
                self.reserves
                    .path_done(f.io, e.map_or_else(|| Ok(Vec::new()), Err));
            }
            FrameKind::Identify => {
                b.identify_frame = None;
                if let Err(e) = result {
                    let msg = format!("e{}.{} IDENTIFY failed: {e}", b.shelf, b.slot);
                    self.events.push_back(Event::Notice {
                        blade: Some(BladeId(bi as u32)),
                        message: msg,
                    });
                    if b.state == BladeState::Identifying {
                        self.blade_down(now, bi);
                    }
                }
            }
            FrameKind::Data => {
                if let Some(io) = self.ios[f.io as usize].as_mut() {
                    io.frames_out -= 1;
                    if !f.copies.is_empty() {
                        io.copies.append(&mut f.copies);
                        let last = io.last_copied_send.map_or(f.sent_at, |t| t.max(f.sent_at));
                        io.last_copied_send = Some(last);
                    }
                    if let Err(e) = result {
                        io.error.get_or_insert(e);
                    }
                    self.maybe_complete(f.io);
                }
            }
        }
    }

    fn maybe_complete(&mut self, idx: u32) {
        let Some(io) = self.ios[idx as usize].as_ref() else {
            return;
        };
        if io.frames_out > 0 || (io.error.is_none() && io.issued < io.units()) {
            return;
        }
        let Some(mut io) = self.ios[idx as usize].take() else {
            return;
        };
        self.free_ios.push(idx);
        self.ios_outstanding -= 1;
        let bi = io.blade as usize;
        let b = &mut self.blades[bi];
        if io.error.is_some() {
            b.ready.retain(|&i| i != idx);
        }
        if io.op == Op::Write {
            b.active_writes.retain(|w| w.io != idx);
            if let Some(last) = io.last_copied_send {
                let until = last + self.cfg.copy_lifetime();
                b.lingering.push(Lingering {
                    lba: io.lba,
                    end: io.end(),
                    copies: std::mem::take(&mut io.copies),
                    until,
                });
                self.lower_timer_floor(until);
            }
            self.unblock_writes(bi);
        }
        let b = &mut self.blades[bi];
        b.stats.ios_completed += 1;
        if io.error.is_some() {
            b.stats.ios_failed += 1;
        }
        self.completions.push_back(IoCompletion {
            user: io.user,
            blade: BladeId(io.blade),
            op: io.op,
            lba: io.lba,
            sectors: io.sectors,
            result: io.error.map_or(Ok(()), Err),
            buf: io.buf,
        });
    }

    fn unblock_writes(&mut self, bi: usize) {
        let b = &mut self.blades[bi];
        let ios = &self.ios;
        let range = |j: u32| ios[j as usize].as_ref().map(|o| (o.lba, o.end()));
        let mut i = 0;
        while i < b.blocked.len() {
            let idx = b.blocked[i];
            let Some((lba, end)) = range(idx) else {
                b.blocked.remove(i);
                continue;
            };
            let hit = |(l, e): (u64, u64)| l < end && lba < e;
            let busy = b.write_overlaps(lba, end)
                || b.blocked.iter().take(i).any(|&j| range(j).is_some_and(hit));
            if busy {
                i += 1;
            } else {
                b.blocked.remove(i);
                b.active_writes.push(ActiveWrite { lba, end, io: idx });
                b.ready.push_back(idx);
            }
        }
    }

    // ---- time -----------------------------------------------------------------------

    /// When [`Pool::handle_timeout`] must run next. It may be early: it is a floor
    /// kept as frames are sent, not recomputed as they complete (a scan of every
    /// live frame on each call cost the data path a few per cent of its CPU), so
    /// `handle_timeout` may find nothing due; it then computes the exact next time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_floor
    }

    /// Changes the dead time (a config reload). Frames already out are judged by the
    /// new value from `now` on: the timer is pulled in so that a shorter dead time
    /// is noticed at once.
    pub fn set_dead_time(&mut self, now: Instant, dead_time: Duration) {
        self.cfg.dead_time = dead_time;
        self.lower_timer_floor(now);
    }

    fn lower_timer_floor(&mut self, t: Instant) {
        self.timer_floor = Some(self.timer_floor.map_or(t, |f| f.min(t)));
    }

    /// The exact time the next frame times out or is declared dead, or a probe is due.
    fn next_due(&self) -> Option<Instant> {
        let dead = self.cfg.dead_time;
        let frames = self.frames.live_indices().filter_map(|fi| {
            let f = self.frames.get(fi)?;
            if !f.on_wire {
                return None;
            }
            let d = f
                .first_sent
                .map_or(f.deadline, |t| f.deadline.min(t + dead));
            Some(d)
        });
        let probes = self.blades.iter().filter_map(|b| b.next_probe);
        let lingering = self
            .blades
            .iter()
            .flat_map(|b| b.lingering.iter().map(|l| l.until));
        frames.chain(probes).chain(lingering).min()
    }

    /// Retransmits frames whose timeout passed (new tag, next path), declares
    /// blades down whose frames waited past the dead time, probes down blades.
    pub fn handle_timeout(&mut self, now: Instant) {
        let dead = self.cfg.dead_time;
        let mut expired = std::mem::take(&mut self.scratch);
        expired.clear();
        expired.extend(self.frames.live_indices().filter(|&fi| {
            self.frames.get(fi).is_some_and(|f| {
                f.on_wire && (f.deadline <= now || f.first_sent.is_some_and(|t| now >= t + dead))
            })
        }));
        for &fi in &expired {
            let Some(f) = self.frames.get_mut(fi) else {
                continue; // its blade went down earlier in this loop
            };
            let bi = f.blade as usize;
            if f.first_sent.is_some_and(|t| now >= t + dead) {
                self.blade_down(now, bi);
                continue;
            }
            f.retries += 1;
            f.on_wire = false;
            f.copies.push(f.tag);
            let path = f.path;
            self.frames.retire_tag(fi);
            let b = &mut self.blades[bi];
            b.stats.timeouts += 1;
            if let Some(p) = path.and_then(|p| b.paths.get_mut(usize::from(p))) {
                p.losses += 1;
                p.last_loss = Some(now);
            }
            let rto = b.rtt.rto(&self.cfg);
            b.window.on_timeout(now, rto);
            b.resend.push_back(fi);
        }
        self.scratch = expired;
        for bi in 0..self.blades.len() {
            let b = &mut self.blades[bi];
            if b.lingering.iter().any(|l| l.until <= now) {
                b.lingering.retain(|l| l.until > now);
                self.unblock_writes(bi);
            }
            let b = &mut self.blades[bi];
            if b.state == BladeState::Down && b.next_probe.is_some_and(|t| t <= now) {
                b.next_probe = Some(now + self.cfg.probe_interval);
                let (shelf, slot) = (b.shelf, b.slot);
                self.query(shelf, slot);
            }
        }
        self.timer_floor = self.next_due();
    }

    fn blade_down(&mut self, now: Instant, bi: usize) {
        let mut mine = std::mem::take(&mut self.scratch);
        let start = mine.len();
        mine.extend(
            self.frames
                .live_indices()
                .filter(|&fi| self.frames.get(fi).is_some_and(|f| f.blade as usize == bi)),
        );
        for &fi in &mine[start..] {
            self.frames.remove(fi);
        }
        mine.truncate(start);
        self.scratch = mine;
        let probe = now + self.cfg.probe_interval;
        self.lower_timer_floor(probe);
        let b = &mut self.blades[bi];
        b.state = BladeState::Down;
        b.stats.downs += 1;
        b.next_probe = Some(probe);
        b.in_flight = 0;
        b.resend.clear();
        b.ready.clear();
        b.blocked.clear();
        b.active_writes.clear();
        b.lingering.clear();
        b.identify_frame = None;
        let mut failed = 0;
        for idx in 0..self.ios.len() {
            if let Some(io) = self.ios[idx].take_if(|io| io.blade as usize == bi) {
                self.free_ios.push(idx as u32);
                self.ios_outstanding -= 1;
                failed += 1;
                let b = &mut self.blades[bi];
                b.stats.ios_completed += 1;
                b.stats.ios_failed += 1;
                self.completions.push_back(IoCompletion {
                    user: io.user,
                    blade: BladeId(bi as u32),
                    op: io.op,
                    lba: io.lba,
                    sectors: io.sectors,
                    buf: io.buf,
                    result: Err(IoError::BladeDown),
                });
            }
        }
        self.reserves.fail_blade(bi as u32);
        self.events.push_back(Event::BladeDown {
            blade: BladeId(bi as u32),
            failed_ios: failed,
        });
    }
}
