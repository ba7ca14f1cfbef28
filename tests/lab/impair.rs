//! Link impairments with `tc`: netem (delay, loss, reorder, duplicate,
//! corrupt) and tbf rate limits, on the egress of one interface.

use std::io;
use std::process::Command;

use super::sh::{err, output, run};

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
        Tbf { rate_bit_per_s: mbit * 1_000_000, burst_bytes: None, latency_ms: 50 }
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
        Impairment { netem: Some(n), tbf: None }
    }
    /// e.g. `Impairment::loss_reorder_dup(5.0, 25.0, 1.0)`
    pub fn loss_reorder_dup(loss: f64, reorder: f64, dup: f64) -> Impairment {
        Impairment::netem(Netem { loss_pct: loss, reorder_pct: reorder, duplicate_pct: dup, ..Netem::default() })
    }
    pub fn rate_mbit(mbit: u64) -> Impairment {
        Impairment { netem: None, tbf: Some(Tbf::mbit(mbit)) }
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

fn pct(v: f64) -> String {
    format!("{v}%")
}

fn netem_args(n: &Netem) -> io::Result<Vec<String>> {
    for (name, v) in [
        ("loss", n.loss_pct),
        ("reorder", n.reorder_pct),
        ("duplicate", n.duplicate_pct),
        ("corrupt", n.corrupt_pct),
    ] {
        if !(0.0..=100.0).contains(&v) {
            return Err(err(format!("netem {name} {v}% is not a percentage")));
        }
    }
    if n.delay_ms < 0.0 || n.jitter_ms < 0.0 {
        return Err(err("netem delay/jitter must not be negative"));
    }
    let mut a = vec!["netem".to_string(), "limit".into(), n.limit.unwrap_or(10_000).to_string()];
    let delay = if n.delay_ms == 0.0 && n.reorder_pct > 0.0 { 1.0 } else { n.delay_ms };
    if delay > 0.0 {
        a.extend(["delay".into(), format!("{delay}ms")]);
        if n.jitter_ms > 0.0 {
            a.push(format!("{}ms", n.jitter_ms));
        }
    }
    if n.loss_pct > 0.0 {
        a.extend(["loss".into(), pct(n.loss_pct)]);
    }
    if n.duplicate_pct > 0.0 {
        a.extend(["duplicate".into(), pct(n.duplicate_pct)]);
    }
    if n.reorder_pct > 0.0 {
        a.extend(["reorder".into(), pct(n.reorder_pct)]);
    }
    if n.corrupt_pct > 0.0 {
        a.extend(["corrupt".into(), pct(n.corrupt_pct)]);
    }
    Ok(a)
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
        return Err(err(format!("tbf burst {burst} is smaller than one {frame}-byte frame")));
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
    tc(ns, &["qdisc".into(), "show".into(), "dev".into(), iface.into()])
}

/// Removes whatever root qdisc the lab put on `iface` (no-op if none).
pub(crate) fn clear(ns: &str, iface: &str) -> io::Result<()> {
    let cur = show(ns, iface)?;
    if cur.contains("netem") || cur.contains("tbf") {
        let out = output(Command::new("tc").args(["-n", ns, "qdisc", "del", "dev", iface, "root"]))?;
        if !out.status.success() {
            return Err(err(format!(
                "tc qdisc del dev {iface} root: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// Replaces the impairment on `iface` egress. With both netem and tbf, tbf is
/// the root (handle 1:) and netem its child, so the rate limit applies to
/// what netem lets through.
pub(crate) fn apply(ns: &str, iface: &str, imp: &Impairment, mtu: u32) -> io::Result<()> {
    clear(ns, iface)?;
    let base = |parent: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["qdisc", "add", "dev", iface].iter().map(|s| s.to_string()).collect();
        v.extend(parent.iter().map(|s| s.to_string()));
        v
    };
    match (&imp.netem, &imp.tbf) {
        (None, None) => Ok(()),
        (Some(n), None) => {
            let mut a = base(&["root", "handle", "1:"]);
            a.extend(netem_args(n)?);
            tc(ns, &a).map(drop)
        }
        (None, Some(t)) => {
            let mut a = base(&["root", "handle", "1:"]);
            a.extend(tbf_args(t, mtu)?);
            tc(ns, &a).map(drop)
        }
        (Some(n), Some(t)) => {
            let mut a = base(&["root", "handle", "1:"]);
            a.extend(tbf_args(t, mtu)?);
            tc(ns, &a)?;
            let mut b = base(&["parent", "1:1", "handle", "10:"]);
            b.extend(netem_args(n)?);
            tc(ns, &b).map(drop)
        }
    }
}
