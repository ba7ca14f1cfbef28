//! Simulation support (feature `sim`): a tiny sans-IO AoE blade over a `Vec<u8>`
//! disk ([`SimBlade`], with media errors and silence on demand) and a virtual
//! network with seeded loss, duplication and reordering driving a [`Pool`] in
//! virtual time ([`Sim`]). Deterministic for a given seed. The pool's tests and
//! the appliance's whole-appliance simulator both use it.

use std::time::{Duration, Instant};

use crate::{
    BladeId, IoCompletion, IoRequest, Op, Pool, PoolConfig, ReserveCmd, ReserveCompletion,
    ReserveRequest,
};
use aoe_wire::{
    ata, parse, respond_in_place, write_ata_response, AtaArg, CCmd, Command, ErrorCode, Header,
    Identify, Mac, MacList, Message, QueryConfig, RCmd, Reserve, ATA_DATA_OFFSET, IDENTIFY_LEN,
    SECTOR_SIZE,
};

/// A blade answering like vblade (plus FLUSH and optional error injection),
/// reserve list included: Set only from a listed MAC or onto an empty list,
/// Force Set always, and while the list is non-empty every ATA command but
/// IDENTIFY from an unlisted MAC gets AoE error 6. Like vblade it keeps the
/// list in memory only: [`SimBlade::restart`] empties it.
pub struct SimBlade {
    pub shelf: u16,
    pub slot: u8,
    pub mac: Mac,
    pub disk: Vec<u8>,
    pub buffer_count: u16,
    pub sector_count: u8,
    pub firmware: u16,
    pub config: Vec<u8>,
    /// Capacity IDENTIFY reports (defaults to the disk size).
    pub identify_sectors: Option<u64>,
    /// Answer every ATA command with this AoE error.
    pub aoe_error: Option<ErrorCode>,
    /// Stops answering anything.
    pub dead: bool,
    /// Media errors: sector ranges `[start, end)` whose reads fail with ATA
    /// ERR/UNC; a write covering a whole range remaps it (as a disk does).
    pub bad: Vec<(u64, u64)>,
    /// The reserve list (Reserve/Release).
    pub reserve: Vec<Mac>,
    pub requests: u64,
    pub writes: u64,
    /// ATA commands refused because the reserve list excludes their sender.
    pub reserved_refusals: u64,
}

impl SimBlade {
    pub fn new(shelf: u16, slot: u8, sectors: u64) -> SimBlade {
        SimBlade {
            shelf,
            slot,
            mac: Mac([0x02, 0, 0, shelf as u8, slot, 0x01]),
            disk: vec![0; sectors as usize * SECTOR_SIZE],
            buffer_count: 16,
            sector_count: 2,
            firmware: 0x4019,
            config: b"sim blade".to_vec(),
            identify_sectors: None,
            aoe_error: None,
            dead: false,
            bad: Vec::new(),
            reserve: Vec::new(),
            requests: 0,
            writes: 0,
            reserved_refusals: 0,
        }
    }

    /// The blade process restarts: the disk stays, the reserve list (kept in
    /// memory by vblade) is gone.
    pub fn restart(&mut self) {
        self.reserve.clear();
    }

    /// May `src` send ATA commands other than IDENTIFY?
    fn admits(&self, src: Mac) -> bool {
        self.reserve.is_empty() || self.reserve.contains(&src)
    }

    /// An AoE error reply to `req`, its argument echoed (as vblade does).
    fn aoe_error_reply(&self, req: &[u8], code: ErrorCode) -> Option<Vec<u8>> {
        let mut out = req[..req.len().min(ATA_DATA_OFFSET)].to_vec();
        respond_in_place(&mut out, self.mac, self.shelf, self.slot).ok()?;
        out[14] |= 0x04;
        out[15] = code.into();
        Some(out)
    }

    /// vblade's `aoesrr`: the reply carries the list that stands afterwards.
    fn reserve_reply(&mut self, h: &Header, r: &Reserve<'_>) -> Option<Vec<u8>> {
        let mut error = None;
        match r.rcmd {
            RCmd::Read => {}
            RCmd::Set if !self.admits(h.src) => error = Some(ErrorCode::TargetReserved),
            RCmd::Set | RCmd::ForceSet => self.reserve = r.macs.iter().collect(),
            RCmd::Unknown(_) => error = Some(ErrorCode::BadArgument),
        }
        let mut rh = h.response_to(self.mac, self.shelf, self.slot);
        rh.error = error;
        let reply = Reserve {
            rcmd: r.rcmd,
            macs: MacList::from_slice(&self.reserve),
        };
        let mut out = vec![0u8; 1600];
        let n = reply.emit(&rh, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    pub fn sectors(&self) -> u64 {
        (self.disk.len() / SECTOR_SIZE) as u64
    }

    /// The unsolicited Query Config response a blade sends at start-up.
    pub fn announce(&self) -> Vec<u8> {
        let h = Header {
            dst: Mac::BROADCAST,
            src: self.mac,
            version: 1,
            response: true,
            error: None,
            shelf: self.shelf,
            slot: self.slot,
            command: Command::QueryConfig,
            tag: 0,
        };
        let mut out = vec![0u8; 1200];
        let qc = self.config_arg();
        let n = qc.emit(&h, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn config_arg(&self) -> QueryConfig<'_> {
        QueryConfig {
            buffer_count: self.buffer_count,
            firmware: self.firmware,
            sector_count: self.sector_count,
            version: 1,
            ccmd: CCmd::Read,
            config: &self.config,
        }
    }

    /// The reply to `req`, if the blade answers it.
    pub fn respond(&mut self, req: &[u8]) -> Option<Vec<u8>> {
        if self.dead {
            return None;
        }
        let pkt = parse(req).ok()?;
        let h = pkt.header;
        if h.response || !h.addresses(self.shelf, self.slot) {
            return None;
        }
        if !(h.dst == self.mac || h.dst.is_broadcast()) {
            return None;
        }
        self.requests += 1;
        match pkt.message {
            Message::QueryConfig(_) => {
                let rh = h.response_to(self.mac, self.shelf, self.slot);
                let mut out = vec![0u8; 1200];
                let n = self.config_arg().emit(&rh, &mut out).ok()?;
                out.truncate(n);
                Some(out)
            }
            Message::Ata(a) => {
                if let Some(code) = self.aoe_error {
                    return self.aoe_error_reply(req, code);
                }
                if a.arg.cmd_status != ata::IDENTIFY && !self.admits(h.src) {
                    self.reserved_refusals += 1;
                    return self.aoe_error_reply(req, ErrorCode::TargetReserved);
                }
                Some(self.ata(&h, &a.arg, a.data))
            }
            Message::Reserve(r) => self.reserve_reply(&h, &r),
            _ => None,
        }
    }

    fn ata(&mut self, h: &Header, arg: &AtaArg, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 9216];
        let (mac, shelf, slot) = (self.mac, self.shelf, self.slot);
        // The reply header with `status` and `err`; returns where its data goes.
        let reply = |out: &mut Vec<u8>, status: u8, err: u8| {
            write_ata_response(out, h, mac, shelf, slot, &arg.reply(status, err)).unwrap()
        };
        let fail = |out: &mut Vec<u8>, err: u8| {
            let n = reply(out, ata::STATUS_FAILED, err);
            out.truncate(n.max(60));
        };
        match arg.cmd_status {
            ata::IDENTIFY => {
                let sectors = self.identify_sectors.unwrap_or(self.sectors());
                let mut id = Identify::new("SIM", "V25", "sim blade", sectors).unwrap();
                id.flush = true;
                let mut block = [0u8; IDENTIFY_LEN];
                id.emit(&mut block).unwrap();
                let off = reply(&mut out, ata::STATUS_OK, 0);
                out[off..off + IDENTIFY_LEN].copy_from_slice(&block);
                out.truncate(off + IDENTIFY_LEN);
            }
            ata::READ | ata::READ_EXT | ata::WRITE | ata::WRITE_EXT => {
                let lba = arg.effective_lba();
                let n = u64::from(arg.sector_count);
                if n > u64::from(aoe_wire::effective_sector_count(self.sector_count)) {
                    fail(&mut out, ata::ERROR_ABRT);
                    return out;
                }
                if lba + n > self.sectors() {
                    fail(&mut out, ata::ERROR_IDNF);
                    return out;
                }
                let (a, b) = (lba as usize * SECTOR_SIZE, (lba + n) as usize * SECTOR_SIZE);
                let off = reply(&mut out, ata::STATUS_OK, 0);
                let end = lba + n;
                if ata::is_write(arg.cmd_status) {
                    if data.len() < b - a {
                        fail(&mut out, ata::ERROR_ABRT);
                        return out;
                    }
                    self.bad.retain(|&(s, e)| !(lba <= s && e <= end));
                    self.disk[a..b].copy_from_slice(&data[..b - a]);
                    self.writes += 1;
                    out.truncate(off.max(60));
                } else if self.bad.iter().any(|&(s, e)| s < end && lba < e) {
                    fail(&mut out, ata::ERROR_UNC);
                } else {
                    out[off..off + (b - a)].copy_from_slice(&self.disk[a..b]);
                    out.truncate((off + b - a).max(60));
                }
            }
            ata::FLUSH | ata::FLUSH_EXT => {
                let off = reply(&mut out, ata::STATUS_OK, 0);
                out.truncate(off.max(60));
            }
            _ => fail(&mut out, ata::ERROR_ABRT),
        }
        out
    }
}

/// Seeded xorshift64* (tests need determinism, not quality).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Link impairments applied to every frame in both directions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impair {
    pub loss: f64,
    pub dup: f64,
    /// Fraction of frames delayed by an extra `reorder_delay`.
    pub reorder: f64,
}

struct InFlight {
    at: Instant,
    to_blade: bool,
    iface: usize,
    frame: Vec<u8>,
}

/// A blade attached to the pool through some of its interfaces.
pub struct Attached {
    pub blade: SimBlade,
    pub ifaces: Vec<usize>,
    /// Blade MAC per interface (a dual-port blade has one per port).
    pub macs: Vec<Mac>,
}

pub struct Sim {
    pub pool: Pool,
    pub blades: Vec<Attached>,
    pub now: Instant,
    pub start: Instant,
    pub rng: Rng,
    pub impair: Impair,
    pub delay: Duration,
    pub reorder_delay: Duration,
    /// Interfaces whose link is down (frames vanish).
    pub link_down: Vec<usize>,
    wire: Vec<InFlight>,
    pub completions: Vec<IoCompletion>,
    pub reserve_done: Vec<ReserveCompletion>,
    pub sent: Vec<(usize, Vec<u8>)>,
    pub record_sent: bool,
    /// ATA frames (requests or replies) the impairment dropped: each one leaves a
    /// request unanswered, so the pool must retransmit it.
    pub lost_ata: u64,
    buf: Vec<u8>,
}

impl Sim {
    /// A pool with `ifaces` interfaces of the given MTU and no blades.
    pub fn new(cfg: PoolConfig, ifaces: usize, mtu: u32, seed: u64) -> Sim {
        let mut pool = Pool::new(cfg);
        for i in 0..ifaces {
            pool.add_interface(&format!("sim{i}"), Mac([0x02, 0xAA, 0, 0, 0, i as u8]), mtu);
        }
        let now = Instant::now();
        Sim {
            pool,
            blades: Vec::new(),
            now,
            start: now,
            rng: Rng::new(seed),
            impair: Impair::default(),
            delay: Duration::from_micros(50),
            reorder_delay: Duration::from_micros(700),
            link_down: Vec::new(),
            wire: Vec::new(),
            completions: Vec::new(),
            reserve_done: Vec::new(),
            sent: Vec::new(),
            record_sent: false,
            lost_ata: 0,
            buf: vec![0; 9216],
        }
    }

    pub fn attach(&mut self, blade: SimBlade, ifaces: &[usize]) -> usize {
        let macs = ifaces
            .iter()
            .enumerate()
            .map(|(k, _)| {
                let mut m = blade.mac;
                m.0[5] = m.0[5].wrapping_add(k as u8);
                m
            })
            .collect();
        self.blades.push(Attached {
            blade,
            ifaces: ifaces.to_vec(),
            macs,
        });
        self.blades.len() - 1
    }

    fn schedule(&mut self, to_blade: bool, iface: usize, frame: Vec<u8>) {
        if self.link_down.contains(&iface) {
            return;
        }
        if self.rng.chance(self.impair.loss) {
            if frame.get(19) == Some(&0) {
                self.lost_ata += 1;
            }
            return;
        }
        let copies = if self.rng.chance(self.impair.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = self.now + self.delay;
            if self.rng.chance(self.impair.reorder) {
                at += self.reorder_delay;
            }
            self.wire.push(InFlight {
                at,
                to_blade,
                iface,
                frame: frame.clone(),
            });
        }
    }

    /// Sends everything the pool wants to send now.
    pub fn flush(&mut self) {
        while let Some(t) = self.pool.poll_transmit(self.now, &mut self.buf) {
            let frame = self.buf[..t.len].to_vec();
            if self.record_sent {
                self.sent.push((t.iface, frame.clone()));
            }
            self.schedule(true, t.iface, frame);
        }
        while let Some(c) = self.pool.poll_completion() {
            self.completions.push(c);
        }
        while let Some(c) = self.pool.poll_reserve() {
            self.reserve_done.push(c);
        }
    }

    fn deliver(&mut self, f: InFlight) {
        if f.to_blade {
            for bi in 0..self.blades.len() {
                let Some(port) = self.blades[bi].ifaces.iter().position(|&i| i == f.iface) else {
                    continue;
                };
                let mac = self.blades[bi].macs[port];
                let b = &mut self.blades[bi].blade;
                let saved = b.mac;
                b.mac = mac;
                let reply = b.respond(&f.frame);
                b.mac = saved;
                if let Some(r) = reply {
                    self.schedule(false, f.iface, r);
                }
            }
        } else {
            self.pool.handle_frame(self.now, f.iface, &f.frame);
        }
    }

    /// Advances virtual time to the next event and handles it. False when
    /// nothing is pending at all.
    pub fn step(&mut self) -> bool {
        self.flush();
        let next_wire = self.wire.iter().map(|f| f.at).min();
        let next_timer = self.pool.poll_timeout();
        let next = match (next_wire, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return false,
        };
        if next > self.now {
            self.now = next;
        }
        let mut i = 0;
        while i < self.wire.len() {
            if self.wire[i].at <= self.now {
                let f = self.wire.swap_remove(i);
                self.deliver(f);
            } else {
                i += 1;
            }
        }
        if self.pool.poll_timeout().is_some_and(|t| t <= self.now) {
            self.pool.handle_timeout(self.now);
        }
        self.flush();
        true
    }

    /// Steps until `done` or `limit` of virtual time passes. True if `done`.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.now >= end || !self.step() {
                return done(self);
            }
        }
    }

    /// Lets virtual time pass (handling whatever happens meanwhile).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.flush();
            let next_wire = self.wire.iter().map(|f| f.at).min();
            let next_timer = self.pool.poll_timeout();
            let next = [next_wire, next_timer, Some(end)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            if next > end {
                self.now = end;
                break;
            }
            self.step();
            if next_wire.is_none() && next_timer.is_none_or(|t| t > end) {
                self.now = end;
            }
        }
        self.flush();
    }

    /// Discovers and waits until every attached blade is up.
    pub fn discover_all(&mut self) -> Vec<BladeId> {
        self.pool.discover();
        let want = self.blades.len();
        let ok = self.run_until(Duration::from_secs(2), |s| {
            s.pool
                .blade_ids()
                .filter(|&b| s.pool.blade_state(b) == Some(crate::BladeState::Up))
                .count()
                == want
        });
        assert!(ok, "not every blade came up");
        self.blades
            .iter()
            .map(|a| self.pool.find(a.blade.shelf, a.blade.slot).unwrap())
            .collect()
    }

    pub fn submit(
        &mut self,
        blade: BladeId,
        op: Op,
        lba: u64,
        sectors: u32,
        buf: Vec<u8>,
        user: u64,
    ) {
        self.pool
            .submit(
                self.now,
                IoRequest {
                    blade,
                    op,
                    lba,
                    sectors,
                    buf,
                    user,
                },
            )
            .unwrap_or_else(|r| panic!("submit refused: {r}"));
    }

    /// Sends a Reserve/Release request and waits up to `limit` for its completion.
    pub fn reserve(
        &mut self,
        blade: BladeId,
        cmd: ReserveCmd,
        macs: &[Mac],
        limit: Duration,
    ) -> ReserveCompletion {
        let user = u64::MAX - self.reserve_done.len() as u64;
        let req = ReserveRequest {
            blade,
            cmd,
            macs: macs.to_vec(),
            user,
        };
        self.pool
            .reserve(self.now, req)
            .unwrap_or_else(|e| panic!("reserve refused: {e}"));
        self.take_when(limit, |s| &mut s.reserve_done, |c| c.user == user)
            .unwrap_or_else(|| panic!("{cmd:?} did not complete within {limit:?}"))
    }

    /// Waits for the completion with token `user`.
    pub fn wait_for(&mut self, user: u64, limit: Duration) -> IoCompletion {
        self.take_when(limit, |s| &mut s.completions, |c| c.user == user)
            .unwrap_or_else(|| panic!("I/O {user} did not complete within {limit:?}"))
    }

    /// Steps until `list` holds an entry that `wanted` picks (or `limit` of
    /// virtual time passes), then takes that entry out of the list.
    fn take_when<T>(
        &mut self,
        limit: Duration,
        list: fn(&mut Sim) -> &mut Vec<T>,
        wanted: impl Fn(&T) -> bool,
    ) -> Option<T> {
        self.run_until(limit, |s| list(s).iter().any(&wanted));
        let i = list(self).iter().position(wanted)?;
        Some(list(self).swap_remove(i))
    }
}

/// Deterministic content for a sector: any misplaced sector is caught.
pub fn pattern(seed: u64, lba: u64, out: &mut [u8]) {
    for (k, sector) in out.chunks_mut(SECTOR_SIZE).enumerate() {
        let mut r = Rng::new(seed ^ (lba + k as u64).wrapping_mul(0x1000_0000_01B3));
        for w in sector.chunks_mut(8) {
            let v = r.next_u64().to_le_bytes();
            w.copy_from_slice(&v[..w.len()]);
        }
    }
}
