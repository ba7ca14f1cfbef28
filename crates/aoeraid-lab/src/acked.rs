//! A writer that knows what was acknowledged: numbered sector versions written
//! through a raw AoE client, a write counted only once its reply came back, and the
//! read-back that holds the device to it after a crash.
//!
//! Every sector written carries its LBA and a version number, the rest derived from
//! both, so a stale, misplaced or torn sector never passes for another. Writes in
//! flight never overlap, so each sector's history is a sequence: after a crash it
//! must hold its last acknowledged version, or the one version still in flight.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::frames;
use crate::RawClient;

const SECTOR: usize = 512;
/// Sectors per read of the check: 8 KiB, within one jumbo frame.
const READ_SECTORS: u8 = 16;
/// A write with no reply for this long is sent again (same tag, same data).
const RETRY: Duration = Duration::from_secs(1);
const TAG_BASE: u32 = 0x4000_0000;

/// What each sector may hold: its last acknowledged version and, if a write to it
/// got no reply, that write's version.
#[derive(Clone, Copy, Debug, Default)]
struct SectorState {
    acked: Option<u32>,
    in_flight: Option<u32>,
}

#[derive(Clone, Debug)]
struct Pending {
    lba: u64,
    sectors: u8,
    version: u32,
    frame: Vec<u8>,
    sent: Instant,
}

/// Counts from a run of writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteStats {
    pub acked: u64,
    /// Writes whose reply never came (in flight when the target went away).
    pub unanswered: u64,
    pub retries: u64,
}

/// Counts from a read-back.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckStats {
    pub sectors: u64,
    /// Sectors holding an unacknowledged write's data (it landed before the crash).
    pub in_flight_landed: u64,
}

/// The writer and its ledger, for `span` sectors of `shelf`.`slot` from LBA 0.
pub struct AckedWriter {
    client: RawClient,
    shelf: u16,
    slot: u8,
    sectors: Vec<SectorState>,
    pending: HashMap<u32, Pending>,
    next_tag: u32,
    next_version: u32,
    rng: u64,
}

impl AckedWriter {
    pub fn new(
        client: RawClient,
        shelf: u16,
        slot: u8,
        span_sectors: u64,
        seed: u64,
    ) -> AckedWriter {
        AckedWriter {
            client,
            shelf,
            slot,
            sectors: vec![SectorState::default(); span_sectors as usize],
            pending: HashMap::new(),
            next_tag: TAG_BASE,
            next_version: 1,
            rng: seed | 1,
        }
    }

    /// Writes every sector of the span once, `bs` sectors at a time, `qd` in flight;
    /// every write must be acknowledged (what the span held before the test's faults).
    pub fn fill(&mut self, bs: u8, qd: usize) -> io::Result<()> {
        let span = self.sectors.len() as u64;
        let mut next = 0;
        while next < span || !self.pending.is_empty() {
            while next < span && self.pending.len() < qd {
                let n = (span - next).min(u64::from(bs)) as u8;
                self.send(next, n)?;
                next += u64::from(n);
            }
            self.receive(Duration::from_millis(20), true)?;
            if self.pending.values().any(|p| p.sent.elapsed() > 10 * RETRY) {
                return Err(io::Error::other("fill: a write got no reply for 10 s"));
            }
        }
        Ok(())
    }

    /// Writes until `stop` is set, `qd` in flight: each a random extent of `targets`
    /// ((LBA, sectors) pairs) not overlapping a write in flight. Then waits briefly for
    /// the replies still on their way; what stays unanswered may or may not have
    /// landed.
    pub fn run(
        &mut self,
        targets: &[(u64, u8)],
        qd: usize,
        stop: &AtomicBool,
    ) -> io::Result<WriteStats> {
        let mut stats = WriteStats::default();
        while !stop.load(Ordering::SeqCst) {
            while self.pending.len() < qd {
                let (lba, n) = targets[(self.next_random() % targets.len() as u64) as usize];
                if self.busy(lba, n) {
                    // Another extent next round: one in flight overlaps this one.
                    break;
                }
                self.send(lba, n)?;
            }
            stats.acked += self.receive(Duration::from_millis(20), true)?;
            for p in self.pending.values_mut() {
                if p.sent.elapsed() > RETRY {
                    p.sent = Instant::now();
                    self.client.send(&p.frame)?;
                    stats.retries += 1;
                }
            }
        }
        stats.acked += self.receive(Duration::from_millis(300), false)?;
        stats.unanswered = self.pending.len() as u64;
        for (_, p) in self.pending.drain() {
            for s in &mut self.sectors[p.lba as usize..][..usize::from(p.sectors)] {
                s.in_flight = Some(p.version);
            }
        }
        Ok(stats)
    }

    /// Reads the whole span back: every sector must hold its last acknowledged
    /// version or its unanswered write's (which then counts as acknowledged: the
    /// next run starts from what the span holds). The first few differences are
    /// named.
    pub fn check(&mut self) -> Result<CheckStats, String> {
        let mut stats = CheckStats::default();
        let mut bad = Vec::new();
        let span = self.sectors.len() as u64;
        let mut lba = 0;
        let mut tag = TAG_BASE - 0x1000_0000;
        while lba < span {
            let n = (span - lba).min(u64::from(READ_SECTORS)) as u8;
            tag += 1;
            let frame = frames::ata_rw(
                self.client.mac,
                self.shelf,
                self.slot,
                tag,
                false,
                lba,
                n,
                &[],
            );
            let reply = self
                .client
                .call(&frame, tag)
                .map_err(|e| format!("read at {lba}: {e}"))?
                .ok_or_else(|| format!("read at {lba}: no reply"))?;
            if !reply_ok(&reply) || reply.len() < 36 + usize::from(n) * SECTOR {
                return Err(format!(
                    "read at {lba}: error reply ({} bytes)",
                    reply.len()
                ));
            }
            for (i, got) in reply[36..].chunks(SECTOR).take(usize::from(n)).enumerate() {
                let at = lba + i as u64;
                let st = &mut self.sectors[at as usize];
                stats.sectors += 1;
                let flight = st.in_flight.take();
                if let Some(v) = flight.filter(|&v| got == sector(at, v)) {
                    st.acked = Some(v);
                    stats.in_flight_landed += 1;
                } else if st.acked.is_none_or(|v| got != sector(at, v)) {
                    bad.push(format!(
                        "sector {at}: holds {} (acknowledged {:?}, in flight {flight:?})",
                        describe(at, got),
                        st.acked,
                    ));
                }
            }
            lba += u64::from(n);
        }
        if bad.is_empty() {
            return Ok(stats);
        }
        let n = bad.len();
        bad.truncate(10);
        Err(format!(
            "{n} sectors wrong of {span}:\n  {}",
            bad.join("\n  ")
        ))
    }

    fn busy(&self, lba: u64, n: u8) -> bool {
        self.pending
            .values()
            .any(|p| lba < p.lba + u64::from(p.sectors) && p.lba < lba + u64::from(n))
    }

    fn send(&mut self, lba: u64, n: u8) -> io::Result<()> {
        let version = self.next_version;
        self.next_version += 1;
        self.next_tag += 1;
        let data: Vec<u8> = (lba..lba + u64::from(n))
            .flat_map(|s| sector(s, version))
            .collect();
        let frame = frames::ata_rw(
            self.client.mac,
            self.shelf,
            self.slot,
            self.next_tag,
            true,
            lba,
            n,
            &data,
        );
        self.client.send(&frame)?;
        self.pending.insert(
            self.next_tag,
            Pending {
                lba,
                sectors: n,
                version,
                frame,
                sent: Instant::now(),
            },
        );
        Ok(())
    }

    /// Takes replies for `wait` (`first_only`: returns after the first one); each
    /// acknowledged write becomes its sectors' version. Returns how many.
    fn receive(&mut self, wait: Duration, first_only: bool) -> io::Result<u64> {
        let deadline = Instant::now() + wait;
        let mut acked = 0;
        while let Some(f) = self
            .client
            .recv(deadline.saturating_duration_since(Instant::now()))?
        {
            if f.len() < 28 || f[14] & 0x08 == 0 {
                continue;
            }
            let tag = u32::from_be_bytes([f[20], f[21], f[22], f[23]]);
            let Some(p) = self.pending.remove(&tag) else {
                continue;
            };
            if !reply_ok(&f) {
                return Err(io::Error::other(format!(
                    "write at {} answered an error (AoE {:#x}, ATA status {:#x})",
                    p.lba, f[15], f[27]
                )));
            }
            for s in &mut self.sectors[p.lba as usize..][..usize::from(p.sectors)] {
                *s = SectorState {
                    acked: Some(p.version),
                    in_flight: None,
                };
            }
            acked += 1;
            if first_only {
                break;
            }
        }
        Ok(acked)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough to spread the extents, reproducible from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// No AoE error, ATA status without ERR or DF.
fn reply_ok(f: &[u8]) -> bool {
    f[14] & 0x04 == 0 && f[27] & 0x21 == 0
}

/// Sector `lba`'s content at `version`: LBA, version, then bytes derived from both.
fn sector(lba: u64, version: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(SECTOR);
    b.extend_from_slice(&lba.to_le_bytes());
    b.extend_from_slice(&version.to_le_bytes());
    let mut x = lba.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(version);
    while b.len() < SECTOR {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        b.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..(SECTOR - b.len()).min(8)]);
    }
    b
}

/// What a wrong sector holds: another version of itself, or something else.
fn describe(lba: u64, got: &[u8]) -> String {
    let at = u64::from_le_bytes(got[..8].try_into().expect("8 bytes"));
    let v = u32::from_le_bytes(got[8..12].try_into().expect("4 bytes"));
    if at == lba && got == sector(lba, v) {
        format!("version {v}")
    } else if got.iter().all(|&b| b == 0) {
        "zeros".into()
    } else {
        format!("no version of it (first bytes {:02x?})", &got[..12])
    }
}
