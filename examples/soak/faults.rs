//! The fault driver: one fault at a time on the appliance under soak, each followed by
//! a wait until every array is clean and idle again, so no fault ever takes an array
//! past the redundancy it has left (what the clients must then survive is the fault
//! itself, its rebuild or resync, and the next one).

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use aoeraid_lab::{Appliance, Blade, Direction, Impairment};

use crate::rss::Sampler;

/// One array of the soak and the volume over it.
pub(crate) struct ArrayDef {
    pub(crate) name: &'static str,
    pub(crate) level: aoeraid_lab::Level,
    pub(crate) members: &'static [&'static str],
    pub(crate) spares: &'static [&'static str],
    pub(crate) chunk: &'static str,
    /// Columns holding data in a stripe (for where a client's span lies on a member).
    pub(crate) data_columns: u64,
    /// The volume's slot on shelf 7.
    pub(crate) slot: u8,
}

/// xorshift-multiply, seeded: the same seed picks the same faults in the same order.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// How long a fault's rebuild, resync or scrub may take before the soak fails.
const QUIET_LIMIT: Duration = Duration::from_secs(240);

pub(crate) struct Driver<'a> {
    pub(crate) app: &'a mut Appliance,
    pub(crate) arrays: &'a [ArrayDef],
    pub(crate) rng: Rng,
    pub(crate) sampler: &'a Sampler,
    pub(crate) span_mib: u64,
    /// When the soak started (the time stamp of each line it prints).
    pub(crate) t0: Instant,
    /// Arrays keep checksums: a flipped bit must be caught.
    pub(crate) integrity: bool,
    pub(crate) flips: u64,
    /// Faults injected, by kind.
    pub(crate) counts: BTreeMap<&'static str, u64>,
    /// Per SIGKILL: seconds from the kill until the new daemon answered.
    pub(crate) restarts: Vec<f64>,
}

impl Driver<'_> {
    fn say(&self, what: &str) {
        println!("soak: t={:.0}s {what}", self.t0.elapsed().as_secs_f64());
    }

    fn count(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_default() += 1;
    }

    fn status(&self) -> Option<serde_json::Value> {
        self.app.status_json()
    }

    /// Active member blades of `array` now (spares replace members as faults go on).
    fn active(&self, array: &str) -> Vec<String> {
        self.app
            .array_state(array)
            .map(|(_, m)| {
                m.into_iter()
                    .filter(|(_, s)| s == "active")
                    .map(|(b, _)| b)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn blade(&self, name: &str) -> &Blade {
        let (s, l) = name
            .trim_start_matches('e')
            .split_once('.')
            .expect("blade eS.L");
        self.app
            .lab
            .blade(s.parse().expect("shelf"), l.parse().expect("slot"))
    }

    /// A random active member: (array, blade).
    fn pick_member(&mut self) -> (String, String) {
        let a = self.arrays[self.rng.below(self.arrays.len() as u64) as usize].name;
        let m = self.active(a);
        let b = m[self.rng.below(m.len() as u64) as usize].clone();
        (a.to_string(), b)
    }

    /// Waits until every array is clean with no sync running; Err says which is not.
    pub(crate) fn wait_quiet(&self, after: &str) -> Result<(), String> {
        let t = Instant::now();
        let mut last = String::new();
        while t.elapsed() < QUIET_LIMIT {
            if let Some(s) = self.status() {
                let arrays = s["arrays"].as_array().cloned().unwrap_or_default();
                let busy: Vec<String> = arrays
                    .iter()
                    .filter(|a| a["state"] != "clean" || a["rebuild"]["action"] != "idle")
                    .map(|a| format!("{} {} ({})", a["name"], a["state"], a["rebuild"]["action"]))
                    .collect();
                if busy.is_empty() && !arrays.is_empty() {
                    return Ok(());
                }
                last = busy.join(", ");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "after {after}: arrays not clean and idle within {QUIET_LIMIT:?}: {last}"
        ))
    }

    /// One fault, picked at random, and the wait for quiet after it.
    pub(crate) fn random_fault(&mut self) -> Result<(), String> {
        let kind = match self.rng.below(12) {
            0 | 1 => self.pause_blade(),
            2 | 3 => self.link_flap(),
            4 | 5 => self.impair(),
            6 | 7 => self.kill_blades(None)?,
            8 => self.kill_blades(Some("r6"))?,
            _ => self.flip_bit()?,
        };
        self.count(kind);
        self.wait_quiet(kind)
    }

    /// SIGSTOP a member's vblade for less than the dead time: retransmits only.
    fn pause_blade(&mut self) -> &'static str {
        let (_, b) = self.pick_member();
        let pause = self.rng.millis(300, 1500);
        self.say(&format!("pause {b} for {pause:?}"));
        let blade = self.blade(&b);
        blade.stop().expect("SIGSTOP blade");
        std::thread::sleep(pause);
        blade.cont().expect("SIGCONT blade");
        "blade_pause"
    }

    /// A member's link down for less than the dead time, then up.
    fn link_flap(&mut self) -> &'static str {
        let (_, b) = self.pick_member();
        let down = self.rng.millis(300, 1500);
        self.say(&format!("link of {b} down for {down:?}"));
        let blade = self.blade(&b);
        blade.link_down(0).expect("link down");
        std::thread::sleep(down);
        blade.link_up(0).expect("link up");
        "link_flap"
    }

    /// Loss, reordering and duplication on a member's link (the lab's relay) for a while.
    fn impair(&mut self) -> &'static str {
        let (_, b) = self.pick_member();
        let hold = self.rng.millis(5000, 12000);
        self.say(&format!(
            "drop/reorder/duplicate frames of {b} for {hold:?}"
        ));
        let blade = self.blade(&b);
        blade
            .impair(
                Direction::Both,
                &Impairment::loss_reorder_dup(2.0, 10.0, 1.0),
            )
            .expect("impair");
        std::thread::sleep(hold);
        blade.clear_impairment().expect("clear impairment");
        "drop_reorder_dup"
    }

    /// Kills one member blade (two on RAID 6 when `array` is r6): the appliance fails
    /// it, a spare takes its slot and is rebuilt; the blade restarts and is added back
    /// to the array as its spare.
    fn kill_blades(&mut self, array: Option<&str>) -> Result<&'static str, String> {
        let (a, victims, kind) = match array {
            Some(a) => {
                let mut m = self.active(a);
                let first = m.remove(self.rng.below(m.len() as u64) as usize);
                let second = m.remove(self.rng.below(m.len() as u64) as usize);
                (a.to_string(), vec![first, second], "raid6_double_kill")
            }
            None => {
                let (a, b) = self.pick_member();
                (a, vec![b], "blade_kill")
            }
        };
        self.say(&format!("kill {} of {a}", victims.join(" and ")));
        for b in &victims {
            self.blade(b).kill().expect("kill blade");
            std::thread::sleep(self.rng.millis(500, 2500));
        }
        // The appliance fails them after its dead time; the spares rebuild while the
        // victims stay dead.
        let t = Instant::now();
        while victims.iter().any(|v| self.active(&a).contains(v)) {
            if t.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "{kind}: {victims:?} still active 60 s after the kill"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        self.wait_rebuild_or_no_spare(&a, kind)?;
        for b in &victims {
            self.blade(b).restart().expect("restart blade");
        }
        for b in &victims {
            self.add_back(&a, b);
        }
        Ok(kind)
    }

    /// Waits for the spares' rebuilds; an array left degraded with no sync running for
    /// 15 s has no spare: the victims are then added back and rebuilt themselves. (Seen
    /// when run-time spares were forgotten across a restart; they are found again now,
    /// `core/spare_scan.rs`, but every victim here is a configured blade, so the cause
    /// in the soak is not proven gone: kept until a soak without it passes.)
    fn wait_rebuild_or_no_spare(&self, array: &str, kind: &str) -> Result<(), String> {
        let t = Instant::now();
        let mut idle_since: Option<Instant> = None;
        while t.elapsed() < QUIET_LIMIT {
            let (state, action) = self
                .status()
                .and_then(|s| {
                    let a = s["arrays"]
                        .as_array()?
                        .iter()
                        .find(|x| x["name"] == array)?
                        .clone();
                    Some((
                        a["state"].as_str()?.to_string(),
                        a["rebuild"]["action"].as_str()?.to_string(),
                    ))
                })
                .unwrap_or_default();
            if state == "clean" && action == "idle" {
                return self.wait_quiet(kind);
            }
            if state == "degraded" && action == "idle" {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(15) {
                    self.say(&format!(
                        "{array}: degraded with no spare; the victims go back in"
                    ));
                    return Ok(());
                }
            } else {
                idle_since = None;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "after {kind}: {array} not rebuilt within {QUIET_LIMIT:?}"
        ))
    }

    /// `aoeraid add ARRAY BLADE` until the restarted blade is found (or it already
    /// serves: a returning blade the appliance took back by itself).
    fn add_back(&self, array: &str, blade: &str) {
        let t = Instant::now();
        loop {
            let (ok, out) = self
                .app
                .aoeraid(&["add", array, blade, "--config", self.app.cfg()]);
            if ok || out.contains("in use") {
                return;
            }
            if t.elapsed() > Duration::from_secs(30) {
                self.say(&format!("add {blade} back to {array}: {out}"));
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Flips one bit of a member's data area, then scrubs the array with repair.
    /// Every other flip lands inside the span a client verifies (its next read may
    /// meet it, or its next write cover it), the others beyond it, where only the
    /// scrub reads: with integrity on, that scrub must repair the block.
    fn flip_bit(&mut self) -> Result<&'static str, String> {
        let (a, b) = self.pick_member();
        let def = self.arrays.iter().find(|d| d.name == a).expect("array");
        let path = self.blade(&b).path().to_path_buf();
        let (ok, out) =
            self.app
                .aoeraid(&["examine", &format!("file:{}", path.display()), "--json"]);
        let ex: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("examine {b} ({ok}): {e}: {out}"))?;
        let sectors = |k: &str| {
            ex[k]
                .as_u64()
                .map(|s| s * 512)
                .ok_or(format!("examine {b}: no {k}"))
        };
        let (data, size) = (
            sectors("data_offset_sectors")?,
            sectors("data_size_sectors")?,
        );
        let reach = ((self.span_mib << 20) / def.data_columns).min(size);
        self.flips += 1;
        let outside = self.flips.is_multiple_of(2) && reach < size;
        let byte = data
            + if outside {
                reach + self.rng.below(size - reach)
            } else {
                self.rng.below(reach)
            };
        let mask = 1u8 << self.rng.below(8);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let mut v = [0u8; 1];
        f.read_exact_at(&mut v, byte).map_err(|e| e.to_string())?;
        v[0] ^= mask;
        f.write_all_at(&v, byte).map_err(|e| e.to_string())?;
        let place = if outside { "beyond" } else { "inside" };
        self.say(&format!(
            "flipped bit {mask:#04x} at byte {byte} of {b} ({a}, {place} the client's span)"
        ));
        std::thread::sleep(self.rng.millis(1000, 5000));
        let (mismatch, repaired) = self.scrub(&a, true)?;
        self.say(&format!(
            "scrub --repair of {a}: {mismatch} mismatched bytes, {repaired} checksum repairs"
        ));
        if outside && self.integrity && repaired == 0 {
            return Err(format!(
                "a flipped bit beyond every client's span on {b} ({a}) was not repaired by a scrub"
            ));
        }
        Ok("bit_flip")
    }

    fn counters(&self, array: &str) -> Option<serde_json::Value> {
        let s = self.status()?;
        let a = s["arrays"]
            .as_array()?
            .iter()
            .find(|x| x["name"] == array)?;
        Some(a["counters"].clone())
    }

    /// `aoeraid scrub ARRAY [--repair]` to its end: (mismatched bytes, checksum
    /// repairs) it counted.
    pub(crate) fn scrub(&self, array: &str, repair: bool) -> Result<(u64, u64), String> {
        let read = |c: &serde_json::Value| {
            (
                c["mismatch_bytes"].as_u64().unwrap_or(0),
                c["checksum_repairs"].as_u64().unwrap_or(0),
            )
        };
        let before = read(&self.counters(array).ok_or("no status")?);
        let finished = || {
            self.app
                .events()
                .matches(&format!("ScrubFinished {array}"))
                .count()
        };
        let done = finished();
        let mut args = vec!["scrub", array, "--config", self.app.cfg()];
        if repair {
            args.push("--repair");
        }
        let (ok, out) = self.app.aoeraid(&args);
        if !ok {
            return Err(format!("scrub {array}: {}", out.trim()));
        }
        let t = Instant::now();
        while finished() == done {
            if t.elapsed() > QUIET_LIMIT {
                return Err(format!("scrub {array}: not finished in {QUIET_LIMIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let after = read(&self.counters(array).ok_or("no status")?);
        Ok((after.0 - before.0, after.1 - before.1))
    }

    /// SIGKILL the appliance, start it again; the clients retransmit through the gap.
    pub(crate) fn crash(&mut self) -> Result<(), String> {
        self.app.kill();
        self.sampler.follow(0);
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        self.app.start();
        let silent = t.elapsed().as_secs_f64();
        self.sampler.follow(self.app.daemon().proc().pid());
        self.say(&format!("appliance SIGKILLed and back in {silent:.1} s"));
        self.restarts.push(silent);
        self.count("appliance_kill");
        self.wait_quiet("appliance_kill")
    }
}
