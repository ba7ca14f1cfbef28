//! Per-blade session state: paths, capacity, window, RTT, counters.

use std::collections::VecDeque;
use std::time::Instant;

use aoe_wire::{Identify, Mac};

use crate::rtt::RttEstimator;
use crate::window::Window;

/// Index of a blade in its pool (stable for the pool's lifetime: a blade
/// that goes down and comes back keeps its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BladeId(pub u32);

impl BladeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Life cycle of a blade session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BladeState {
    /// Answered Query Config; IDENTIFY outstanding.
    Identifying,
    /// Capacity known; accepts I/O.
    Up,
    /// Stopped answering; probed until it answers again.
    Down,
}

/// One way to reach a blade: a local interface and the blade MAC that
/// answered on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Index of the local interface in the pool.
    pub iface: usize,
    pub mac: Mac,
    /// Buffer Count this MAC advertised.
    pub buffer_count: u16,
    /// min(local MTU limit, advertised Sector Count), 0 → 2.
    pub sector_limit: u8,
    /// Timeouts in a row (reset by any matched reply on this path).
    pub losses: u32,
    pub last_loss: Option<Instant>,
}

/// Counters of one blade (cumulative) plus its current RTT and window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BladeStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Sends that were retransmissions.
    pub retransmits: u64,
    /// Frame timeouts.
    pub timeouts: u64,
    /// Replies to a tag not outstanding: late (superseded by a
    /// retransmission), duplicated, or for a frame already failed.
    pub stale_drops: u64,
    /// Timeouts a late reply to the timed-out send proved spurious (the
    /// window cut they caused was undone).
    pub spurious_timeouts: u64,
    /// Replies carrying a live tag but the wrong source MAC, interface,
    /// shelf.slot or command.
    pub forged_drops: u64,
    /// AoE error replies.
    pub aoe_errors: u64,
    /// ATA status failures.
    pub ata_errors: u64,
    /// I/Os completed (ok or failed).
    pub ios_completed: u64,
    pub ios_failed: u64,
    /// Times the blade was declared down.
    pub downs: u64,
    pub srtt_us: u64,
    pub rttvar_us: u64,
    pub rto_us: u64,
    pub window: u32,
    pub window_max: u32,
    pub in_flight: u32,
}

/// A write range `[lba, end)` issued to the blade and not yet complete.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActiveWrite {
    pub lba: u64,
    pub end: u64,
    pub io: u32,
}

/// A write completed to its user while a copy of one of its frames (a send
/// that timed out and was resent) may still land on the blade: its range keeps
/// later overlapping writes back until every such copy was answered or `until`.
#[derive(Debug, Clone)]
pub(crate) struct Lingering {
    pub lba: u64,
    pub end: u64,
    /// Tags of the copies not answered yet.
    pub copies: Vec<u32>,
    pub until: Instant,
}

pub(crate) struct Blade {
    pub shelf: u16,
    pub slot: u8,
    pub state: BladeState,
    pub paths: Vec<Path>,
    pub identify: Option<Identify>,
    pub sectors: u64,
    pub firmware: u16,
    pub config: Vec<u8>,
    pub buffer_count: u16,
    pub sectors_per_frame: u8,
    pub window: Window,
    pub rtt: RttEstimator,
    /// Frames in the slab for this blade (sent or waiting for a resend).
    pub in_flight: u32,
    /// I/Os with sectors not yet cut into frames, in submission order.
    pub ready: VecDeque<u32>,
    /// Frames (slab indices) to send again, before any new frame.
    pub resend: VecDeque<u16>,
    /// Writes held back because they overlap an active (or earlier held) write.
    pub blocked: VecDeque<u32>,
    pub active_writes: Vec<ActiveWrite>,
    pub lingering: Vec<Lingering>,
    /// Slab index of the outstanding IDENTIFY, if any.
    pub identify_frame: Option<u16>,
    pub next_path: usize,
    pub next_probe: Option<Instant>,
    pub stats: BladeStats,
}

impl Blade {
    pub(crate) fn new(shelf: u16, slot: u8, window: Window) -> Blade {
        Blade {
            shelf,
            slot,
            state: BladeState::Identifying,
            paths: Vec::new(),
            identify: None,
            sectors: 0,
            firmware: 0,
            config: Vec::new(),
            buffer_count: 0,
            sectors_per_frame: aoe_wire::DEFAULT_SECTOR_COUNT,
            window,
            rtt: RttEstimator::default(),
            in_flight: 0,
            ready: VecDeque::new(),
            resend: VecDeque::new(),
            blocked: VecDeque::new(),
            active_writes: Vec::new(),
            lingering: Vec::new(),
            identify_frame: None,
            next_path: 0,
            next_probe: None,
            stats: BladeStats::default(),
        }
    }

    /// True if `[lba, end)` overlaps a write in flight or one whose copies may still land.
    pub(crate) fn write_overlaps(&self, lba: u64, end: u64) -> bool {
        let hit = |l: u64, e: u64| l < end && lba < e;
        self.active_writes.iter().any(|w| hit(w.lba, w.end))
            || self.lingering.iter().any(|w| hit(w.lba, w.end))
    }

    /// Blade-wide frame size: the smallest limit over all paths (as Linux).
    pub(crate) fn recompute_sectors_per_frame(&mut self) {
        let min = self.paths.iter().map(|p| p.sector_limit).min().unwrap_or(0);
        self.sectors_per_frame = aoe_wire::effective_sector_count(min);
    }

    /// Picks a path for a send: round robin over healthy paths, falling back
    /// to all paths when none is healthy. `avoid` is the path of the previous
    /// send of the same frame (a retransmission rotates away from it).
    pub(crate) fn pick_path(
        &mut self,
        now: Instant,
        limit: u32,
        retry: std::time::Duration,
        avoid: Option<u16>,
    ) -> Option<u16> {
        let n = self.paths.len();
        if n == 0 {
            return None;
        }
        let healthy = |p: &Path| {
            p.losses < limit
                || p.last_loss
                    .is_none_or(|t| now.saturating_duration_since(t) >= retry)
        };
        let start = self.next_path % n;
        let mut fallback = None;
        for k in 0..n {
            let i = (start + k) % n;
            if n > 1 && avoid == Some(i as u16) {
                fallback.get_or_insert(i);
                continue;
            }
            if healthy(&self.paths[i]) {
                self.next_path = i + 1;
                return Some(i as u16);
            }
            fallback.get_or_insert(i);
        }
        let i = fallback.unwrap_or(start);
        self.next_path = i + 1;
        Some(i as u16)
    }

    pub(crate) fn snapshot_stats(&self, cfg: &crate::PoolConfig) -> BladeStats {
        let mut s = self.stats;
        s.srtt_us = self.rtt.srtt().as_micros() as u64;
        s.rttvar_us = self.rtt.rttvar().as_micros() as u64;
        s.rto_us = self.rtt.rto(cfg).as_micros() as u64;
        s.window = self.window.cwnd();
        s.window_max = self.window.max();
        s.in_flight = self.in_flight;
        s
    }
}

/// What a caller may know about a blade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BladeInfo {
    pub id: BladeId,
    pub shelf: u16,
    pub slot: u8,
    pub state: BladeState,
    /// Capacity in 512-byte sectors (0 until identified).
    pub sectors: u64,
    pub lba48: bool,
    /// Buffer Count as advertised (largest over paths).
    pub buffer_count: u16,
    pub sectors_per_frame: u8,
    pub firmware: u16,
    pub config: Vec<u8>,
    pub model: String,
    pub serial: String,
    pub paths: Vec<Path>,
    pub stats: BladeStats,
}
