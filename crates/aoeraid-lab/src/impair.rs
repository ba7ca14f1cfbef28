//! Link impairments: netem-style delay, loss, reorder, duplicate, corrupt
//! (done by a relay thread, see relay.rs: this host kernel has no sch_netem)
//! and `tc tbf` rate limits, per direction of a veth port.

use std::io;
use std::process::Command;

use super::relay::Relays;
use super::sh::{err, output, run};
use super::Port;

/// netem parameters; zero means "off". Percentages are 0..=100.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Netem {
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub loss_pct: f64,
    /// netem only reorders packets that it delays: when this is set and
    /// `delay_ms` is 0, a 1 ms delay is added so the reordering happens.
    pub reorder_pct: f64,
    pub duplicate_pct: f64,
    pub corrupt_pct: f64,
    /// Queue length in packets (netem's default of 1000 tail-drops jumbo
    /// bursts at high rates; the lab uses 10000 unless told otherwise).
    pub limit: Option<u32>,
    /// Drop every AoE ATA WRITE request (ATA commands 0x30/0x34), counted in
    /// `dropped`, and let every other frame through: a member that stops
    /// storing writes while still answering reads, so a crash can tear a
    /// stripe (not netem's; no kernel qdisc does this either).
    pub drop_ata_writes: bool,
}

/// Token bucket rate limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Tbf {
    pub rate_bit_per_s: u64,
    /// Bucket size; default: 20 ms worth of rate, at least 4 full frames.
    pub burst_bytes: Option<u32>,
    /// Longest a packet may wait in the queue.
    pub latency_ms: u32,
}

impl Tbf {
    pub fn mbit(mbit: u64) -> Tbf {
        Tbf {
            rate_bit_per_s: mbit * 1_000_000,
            burst_bytes: None,
            latency_ms: 50,
        }
    }
}

/// What to do to one direction of a link. `Impairment::default()` = nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    pub netem: Option<Netem>,
    pub tbf: Option<Tbf>,
}

impl Impairment {
    pub fn netem(n: Netem) -> Impairment {
        Impairment {
            netem: Some(n),
            tbf: None,
        }
    }
    /// e.g. `Impairment::loss_reorder_dup(5.0, 25.0, 1.0)`
    pub fn loss_reorder_dup(loss: f64, reorder: f64, dup: f64) -> Impairment {
        Impairment::netem(Netem {
            loss_pct: loss,
            reorder_pct: reorder,
            duplicate_pct: dup,
            ..Netem::default()
        })
    }
    pub fn rate_mbit(mbit: u64) -> Impairment {
        Impairment {
            netem: None,
            tbf: Some(Tbf::mbit(mbit)),
        }
    }
    pub fn with_rate_mbit(mut self, mbit: u64) -> Impairment {
        self.tbf = Some(Tbf::mbit(mbit));
        self
    }
}

/// Which way frames travel on a blade link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// requests: egress of the bridge-side veth end
    ToBlade,
    /// replies: egress of the blade's own interface
    FromBlade,
    Both,
}

impl Netem {
    pub(crate) fn validate(&self) -> io::Result<()> {
        for (name, v) in [
            ("loss", self.loss_pct),
            ("reorder", self.reorder_pct),
            ("duplicate", self.duplicate_pct),
            ("corrupt", self.corrupt_pct),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(err(format!("netem {name} {v}% is not a percentage")));
            }
        }
        if !(self.delay_ms >= 0.0
            && self.jitter_ms >= 0.0
            && self.delay_ms.is_finite()
            && self.jitter_ms.is_finite())
        {
            return Err(err("netem delay/jitter must be finite and not negative"));
        }
        Ok(())
    }
}

fn tbf_args(t: &Tbf, mtu: u32) -> io::Result<Vec<String>> {
    if t.rate_bit_per_s == 0 {
        return Err(err("tbf rate must be > 0"));
    }
    let frame = u64::from(mtu) + 14;
    let burst = match t.burst_bytes {
        Some(b) => u64::from(b),
        None => (t.rate_bit_per_s / 8 / 50).max(4 * frame),
    };
    if burst < frame {
        return Err(err(format!(
            "tbf burst {burst} is smaller than one {frame}-byte frame"
        )));
    }
    Ok(vec![
        "tbf".into(),
        "rate".into(),
        format!("{}bit", t.rate_bit_per_s),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        format!("{}ms", t.latency_ms.max(1)),
    ])
}

fn tc(ns: &str, args: &[String]) -> io::Result<String> {
    run(Command::new("tc").arg("-n").arg(ns).args(args))
}

/// `tc qdisc show dev IFACE`
pub(crate) fn show(ns: &str, iface: &str) -> io::Result<String> {
    tc(
        ns,
        &["qdisc".into(), "show".into(), "dev".into(), iface.into()],
    )
}

/// Removes the tbf the lab put on `iface` (no-op if none).
pub(crate) fn clear_tbf(ns: &str, iface: &str) -> io::Result<()> {
    let cur = show(ns, iface)?;
    if cur.contains("tbf") {
        let out =
            output(Command::new("tc").args(["-n", ns, "qdisc", "del", "dev", iface, "root"]))?;
        if !out.status.success() {
            return Err(err(format!(
                "tc qdisc del dev {iface} root: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Replaces the rate limit on `iface` egress (None = remove).
pub(crate) fn set_tbf(ns: &str, iface: &str, tbf: Option<&Tbf>, mtu: u32) -> io::Result<()> {
    clear_tbf(ns, iface)?;
    if let Some(t) = tbf {
        let mut a: Vec<String> = ["qdisc", "add", "dev", iface, "root", "handle", "1:"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(tbf_args(t, mtu)?);
        tc(ns, &a)?;
    }
    Ok(())
}

/// Sets one direction of a veth port: `to_port` = frames travelling towards
/// `port.iface` (egress of its bridge-side peer), else frames leaving it.
pub(crate) fn impair_port(
    relays: &Relays,
    ns: &str,
    mtu: u32,
    port: &Port,
    to_port: bool,
    imp: &Impairment,
) -> io::Result<()> {
    if let Some(n) = &imp.netem {
        n.validate()?;
    }
    let dev = if to_port { &port.peer } else { &port.iface };
    set_tbf(ns, dev, imp.tbf.as_ref(), mtu)?;
    relays.set(
        &port.iface,
        &port.peer,
        port.segment.bridge(),
        to_port,
        imp.netem.clone(),
    )
}
