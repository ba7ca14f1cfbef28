//! The whole-appliance deterministic simulator, in the style of the RAID simulator
//! (`raid_engine::sim`) and TigerBeetle's VOPR: the real appliance core
//! ([`crate::core::Core`]: initiator pool, RAID engines, AoE target, policy) between
//! virtual AoE clients and virtual blades, on two virtual Ethernet segments, in
//! virtual time. A seed fixes everything: the configuration, the traffic, the faults
//! and their moments. See README.md next to this file.
//!
//! * clients (`client.rs`) speak AoE in real frames and keep several commands in
//!   flight, retransmitting on timeout; a reference model (`model.rs`) of the volume
//!   checks every read, exactly under concurrency and retransmission;
//! * blades (`blades.rs`) are the initiator's simulated blade with a disk that keeps
//!   what was written, media errors and silent bit flips;
//! * the segments (`wire.rs`) lose, duplicate, reorder and corrupt frames;
//! * the world (`world.rs`) draws faults and operator commands: blade death and
//!   return, media errors, bit flips, slow blades, frame-fault bursts, appliance
//!   crash and restart by assembly from the members' superblocks, fail + re-add,
//!   replacement (add, spare group), scrub, grow.
//!
//! Checked after every step: every read returns what the model allows, every
//! acknowledged write survives (crashes included), errors only beyond redundancy,
//! no array fails within redundancy, no command stays unanswered; at the end every
//! array settles, a scrub finds copies and parity consistent and the whole volume
//! reads back as the model says.

mod blades;
pub(crate) mod boot;
mod client;
mod model;
mod wire;
mod world;

pub use raid_engine::sim::cli::{Options, ALL_LAYOUTS};
pub use raid_engine::sim::{ClientOps, SimConfig, SimLayout};

use crate::events::EventKind;

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    pub client: ClientOps,
    pub crashes: u64,
    pub commands: u64,
    pub media_errors: u64,
    pub bit_flips: u64,
    pub grows: u64,
    pub member_failures: u64,
    /// RAID 6: two blades of one array died for good at once.
    pub double_failures: u64,
    pub blades_gone: u64,
    pub blades_back: u64,
    pub re_adds: u64,
    /// Appliance stops with the arrays marked clean, then a restart.
    pub clean_restarts: u64,
    /// A member's blade away when the appliance started (it shows up later).
    pub absent_at_start: u64,
    /// A RAID 5/6 member's blade missing (back later or dead for good) when the
    /// appliance starts after a crash: the write hole the partial-parity log closes.
    pub crash_losses: u64,
    /// Sectors of interrupted (never acknowledged) writes the log replay reported lost.
    pub interrupted_lost_sectors: u64,
    /// Blades back with another array's superblock.
    pub foreign_returns: u64,
    /// Blades back holding an old copy of themselves.
    pub stale_returns: u64,
    /// Returning blades refused (and left untouched).
    pub refused: u64,
    pub spares_moved: u64,
    pub rebuilds_finished: u64,
    pub resyncs_finished: u64,
    pub scrubs_finished: u64,
    pub corrected_read_errors: u64,
    pub checksum_repairs: u64,
    /// HA pair: the standby took the blades over (Force Set)…
    pub takeovers: u64,
    /// … of them while the old active still ran (split brain).
    pub split_brains: u64,
    /// Old actives that found themselves fenced at the blades and stopped.
    pub fenced_stops: u64,
    /// Plain starts of the appliance that lost the blades, refused as they must be.
    pub plain_starts_refused: u64,
    /// Clean stops after which the other appliance started plainly.
    pub switchovers: u64,
    /// Writes a blade accepted from an appliance not holding it (a failed run).
    pub non_holder_writes: u64,
    /// ATA commands the blades refused for a reservation.
    pub reservation_refusals: u64,
    /// Client request copies the target refused (queues full).
    pub target_drops: u64,
    pub frames: u64,
    pub frames_lost: u64,
    pub frames_duplicated: u64,
    pub frames_reordered: u64,
    pub frames_corrupted: u64,
    pub client_retransmits: u64,
    pub virtual_ns: u64,
}

impl SimStats {
    fn event(&mut self, kind: EventKind) {
        match kind {
            EventKind::Fail => self.member_failures += 1,
            EventKind::DeviceDisappeared => self.blades_gone += 1,
            EventKind::DeviceReappeared => self.blades_back += 1,
            EventKind::ReAdded => self.re_adds += 1,
            EventKind::MemberRefused => self.refused += 1,
            EventKind::MoveSpare => self.spares_moved += 1,
            EventKind::RebuildFinished => self.rebuilds_finished += 1,
            EventKind::ResyncFinished => self.resyncs_finished += 1,
            EventKind::ScrubFinished => self.scrubs_finished += 1,
            EventKind::CorrectedReadError => self.corrected_read_errors += 1,
            EventKind::ChecksumRepaired => self.checksum_repairs += 1,
            _ => {}
        }
    }
}

/// A failed run: what went wrong, the seed's command line and the schedule of
/// faults and commands up to the failure.
#[derive(Debug)]
pub struct SimFailure {
    pub message: String,
    pub schedule: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(
            f,
            "schedule (last {} entries):",
            self.schedule.len().min(40)
        )?;
        for l in self.schedule.iter().rev().take(40).rev() {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

/// Runs one simulation of one appliance; on success the stats and the fault schedule.
pub fn run(cfg: &SimConfig) -> Result<(SimStats, Vec<String>), SimFailure> {
    run_world(cfg, false)
}

/// Runs one simulation of the HA pair (`--takeover`): two appliances on the same
/// blades holding them by reservation, takeovers after a crash and in split
/// brain, plain starts that must refuse, switchovers (`src/sim/world/pair.rs`).
pub fn run_pair(cfg: &SimConfig) -> Result<(SimStats, Vec<String>), SimFailure> {
    run_world(cfg, true)
}

fn run_world(cfg: &SimConfig, pair: bool) -> Result<(SimStats, Vec<String>), SimFailure> {
    let fail = |w: Option<&world::World>, e: String| SimFailure {
        message: format!(
            "appliance sim failed: layout={} seed={} after {} ops: {e}\n  reproduce: \
             cargo run --profile ci --example appliance_sim -- {}{}",
            cfg.layout,
            cfg.seed,
            w.map_or(0, |w| w.stats.client.ops),
            cfg.args(),
            if pair { " --takeover" } else { "" }
        ),
        schedule: w.map_or_else(Vec::new, |w| w.log.clone()),
    };
    let mut w = world::World::new(cfg.clone(), pair).map_err(|e| fail(None, e))?;
    match w.run() {
        Ok(()) => {
            let mut st = w.stats.clone();
            w.finish_stats(&mut st);
            Ok((st, w.log.clone()))
        }
        Err(e) => Err(fail(Some(&w), e)),
    }
}
