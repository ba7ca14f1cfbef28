//! The back-end blades: the initiator's simulated blade (`aoe_initiator::sim::SimBlade`,
//! a disk that keeps what was written, superblocks included) plus what the
//! simulator needs to damage it fairly: which 4 KiB blocks carry a checksum that
//! matches their data (only there must a silent bit flip be caught), the flips not
//! yet overwritten, and a latency multiplier.

use crate::config::MemberAddr;
use aoe_initiator::sim::SimBlade;
use aoe_wire::{ata, parse, Message, SECTOR_SIZE};
use raid_engine::sim::Rng;
use std::collections::VecDeque;

/// Sectors per integrity block (4 KiB).
const BLOCK: u64 = 8;

pub(crate) struct Blade {
    pub(crate) disk: SimBlade,
    pub(crate) addr: MemberAddr,
    /// Blocks last written whole by one frame while the appliance ran normally.
    sealed: Vec<bool>,
    /// Silent corruptions not yet overwritten: (byte, xor mask).
    flipped: Vec<(usize, u8)>,
    /// Writes that landed recently: (time, lba, sectors).
    recent: VecDeque<(u64, u64, u64)>,
    /// Latency multiplier (a slow blade).
    pub(crate) slow: u64,
    /// Dead and never coming back (its slot goes to a spare).
    pub(crate) gone: bool,
}

impl Blade {
    pub(crate) fn new(addr: MemberAddr, sectors: u64) -> Blade {
        let MemberAddr::Blade { shelf, slot } = addr else {
            unreachable!("the simulator only builds blades")
        };
        let mut disk = SimBlade::new(shelf, slot, sectors);
        disk.sector_count = 16;
        disk.buffer_count = 32;
        Blade {
            disk,
            addr,
            sealed: vec![false; sectors.div_ceil(BLOCK) as usize],
            flipped: Vec::new(),
            recent: VecDeque::new(),
            slow: 1,
            gone: false,
        }
    }

    pub(crate) fn healthy(&self) -> bool {
        !self.disk.dead && self.disk.bad.is_empty() && self.flipped.is_empty() && self.slow == 1
    }

    /// Carries out `frame`; its reply, if the blade answers. `trusted`: the
    /// appliance is running normally (its checksums follow its writes).
    pub(crate) fn deliver(&mut self, now: u64, frame: &[u8], trusted: bool) -> Option<Vec<u8>> {
        let write = match parse(frame) {
            Ok(p) => match p.message {
                Message::Ata(a) if ata::is_write(a.arg.cmd_status) && !p.header.response => {
                    Some((a.arg.effective_lba(), u64::from(a.arg.sector_count)))
                }
                _ => None,
            },
            Err(_) => None,
        };
        let reply = self.disk.respond(frame)?;
        if let Some((lba, n)) = write {
            let failed = parse(&reply)
                .ok()
                .and_then(|p| match p.message {
                    Message::Ata(a) => Some(ata::is_failed_status(a.arg.cmd_status)),
                    _ => None,
                })
                .unwrap_or(true);
            if !failed {
                self.landed(now, lba, n, trusted);
            }
        }
        Some(reply)
    }

    fn landed(&mut self, now: u64, lba: u64, n: u64, trusted: bool) {
        let end = lba + n;
        let (a, b) = (lba as usize * SECTOR_SIZE, end as usize * SECTOR_SIZE);
        self.flipped.retain(|&(byte, _)| byte < a || byte >= b);
        let (first, last) = (lba.div_ceil(BLOCK), end / BLOCK);
        for blk in first..last {
            self.sealed[blk as usize] = trusted;
        }
        for blk in [lba / BLOCK, end.saturating_sub(1) / BLOCK] {
            if blk < first || blk >= last {
                self.sealed[blk as usize] = false;
            }
        }
        self.recent.push_back((now, lba, n));
        while self.recent.front().is_some_and(|r| r.0 + RECENT_NS < now) {
            self.recent.pop_front();
        }
    }

    /// The appliance crashed at `now`: a member write it had in progress may have
    /// landed without its checksum (or the checksum without it).
    pub(crate) fn crashed(&mut self, now: u64) {
        for &(t, lba, n) in &self.recent {
            if t + RECENT_NS >= now {
                for blk in lba / BLOCK..(lba + n).div_ceil(BLOCK) {
                    self.sealed[blk as usize] = false;
                }
            }
        }
        self.recent.clear();
    }

    /// Flips one bit of a sealed sector in `[lo, hi)`; false if none was found.
    pub(crate) fn flip(&mut self, rng: &mut Rng, lo: u64, hi: u64) -> bool {
        for _ in 0..8 {
            let s = lo + rng.below(hi - lo);
            if !self.sealed[(s / BLOCK) as usize] {
                continue;
            }
            let byte = s as usize * SECTOR_SIZE + rng.below(SECTOR_SIZE as u64) as usize;
            let mask = 1u8 << rng.below(8);
            self.disk.disk[byte] ^= mask;
            self.flipped.push((byte, mask));
            return true;
        }
        false
    }

    /// The operator replaced the damaged parts: flips undone, media errors gone.
    pub(crate) fn repair(&mut self) {
        for (byte, mask) in self.flipped.drain(..) {
            self.disk.disk[byte] ^= mask;
        }
        self.disk.bad.clear();
    }

    pub(crate) fn damaged(&self) -> bool {
        !self.disk.bad.is_empty() || !self.flipped.is_empty()
    }
}

/// How far back a crash can leave a member write half done: the longest a member
/// I/O lives (the back end's dead time) plus the retransmits around it.
const RECENT_NS: u64 = 5_000_000_000;
