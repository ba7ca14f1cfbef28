//! The human view of a status snapshot, as `aoeraid status` prints it.

use super::status::{ArrayStatus, MemberRole, Status, SyncAction, SyncProgress};
use std::fmt::Write;

const BAR_WIDTH: usize = 30;

/// Formats bytes with binary units, one decimal.
pub fn human_bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[0])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Formats a duration as `1h02m`, `4m05s` or `12s`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `[#########.....]  45.2%  120.0 MiB/s  ETA 1h02m` on a terminal, the
/// same without the bar otherwise.
pub fn progress_line(p: &SyncProgress, terminal: bool) -> String {
    let ratio = p.done_ratio.clamp(0.0, 1.0);
    let mut s = String::new();
    if terminal {
        let filled = (ratio * BAR_WIDTH as f64).round() as usize;
        s.push('[');
        s.push_str(&"#".repeat(filled));
        s.push_str(&".".repeat(BAR_WIDTH - filled));
        s.push_str("] ");
    }
    let _ = write!(
        s,
        "{:5.1}%  {}/{}",
        ratio * 100.0,
        human_bytes(p.done_bytes as f64),
        human_bytes(p.total_bytes as f64)
    );
    if p.rate_bytes_per_second > 0.0 {
        let _ = write!(s, "  {}/s", human_bytes(p.rate_bytes_per_second));
    }
    match p.eta_seconds {
        Some(eta) => {
            let _ = write!(s, "  ETA {}", human_duration(eta));
        }
        None if p.rate_bytes_per_second > 0.0 && p.total_bytes > p.done_bytes => {
            let eta = (p.total_bytes - p.done_bytes) as f64 / p.rate_bytes_per_second;
            let _ = write!(s, "  ETA {}", human_duration(eta));
        }
        None => {}
    }
    s
}

fn array(out: &mut String, a: &ArrayStatus, terminal: bool) {
    let active = a
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Data && m.state == super::status::MemberState::Active)
        .count();
    let _ = writeln!(
        out,
        "array {}  {}  {}  {}  chunk {}  [{}/{} active]",
        a.name,
        a.level,
        a.state.as_str(),
        human_bytes(a.size_bytes as f64),
        human_bytes(a.chunk_bytes as f64),
        active,
        a.members_required
    );
    if !a.uuid.is_empty() {
        let _ = writeln!(
            out,
            "  uuid {}  events {}  {}  bitmap {} dirty",
            a.uuid,
            a.events,
            if a.clean_on_disk {
                "clean on disk"
            } else {
                "writes in flight"
            },
            a.bitmap_dirty_regions
        );
    }
    if a.rebuild.action != SyncAction::Idle {
        let _ = writeln!(
            out,
            "  {:<8} {}",
            a.rebuild.action.as_str(),
            progress_line(&a.rebuild, terminal)
        );
    }
    let _ = writeln!(
        out,
        "  {:<4} {:<22} {:<6} {:<11}",
        "#", "member", "role", "state"
    );
    for m in &a.members {
        let idx = m.index.map_or("-".to_string(), |i| i.to_string());
        let role = match m.role {
            MemberRole::Data => "data",
            MemberRole::Spare => "spare",
            MemberRole::None => "-",
        };
        let _ = writeln!(
            out,
            "  {idx:<4} {:<22} {role:<6} {:<11}{}",
            m.blade,
            m.state.as_str(),
            match m.origin.as_deref() {
                None | Some("config") => String::new(),
                Some(o) => format!(" ({o})"),
            }
        );
    }
    let c = &a.counters;
    let mut extra = Vec::new();
    if let Some(g) = &a.spare_group {
        extra.push(format!(
            "spare group {g}, {} spare(s) available",
            a.spares_available
        ));
    } else if a.spares_available > 0 {
        extra.push(format!("{} spare(s) available", a.spares_available));
    }
    if c.mismatch_bytes + c.corrected_errors + c.checksum_repairs > 0 {
        extra.push(format!(
            "mismatches {}, corrected errors {}, checksum repairs {}",
            human_bytes(c.mismatch_bytes as f64),
            c.corrected_errors,
            c.checksum_repairs
        ));
    }
    if let Some(p) = &a.consistency_policy {
        extra.push(format!(
            "consistency policy {p}{}",
            if c.ppl_bytes > 0 {
                format!(", {} logged", human_bytes(c.ppl_bytes as f64))
            } else {
                String::new()
            }
        ));
    }
    if c.ppl_replayed_stripes + c.ppl_refused_entries + c.ppl_stale_entries > 0 {
        extra.push(format!(
            "log replay at start: {} stripes replayed; entries refused {}, stale {}",
            c.ppl_replayed_stripes, c.ppl_refused_entries, c.ppl_stale_entries
        ));
    }
    for e in extra {
        let _ = writeln!(out, "  {e}");
    }
}

/// MACs joined by commas, or `none` for an empty list.
fn list_or(macs: &[String], none: &str) -> String {
    if macs.is_empty() {
        none.to_string()
    } else {
        macs.join(",")
    }
}

/// The whole status report.
pub fn render(s: &Status, terminal: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  (aoeraid {}, up {})",
        s.appliance,
        s.version,
        human_duration(s.uptime_seconds)
    );
    for a in &s.arrays {
        out.push('\n');
        array(&mut out, a, terminal);
    }
    if !s.volumes.is_empty() {
        let _ = writeln!(out, "\nvolumes");
        for v in &s.volumes {
            let _ = writeln!(
                out,
                "  {:<12} e{}.{:<5} {:>14} sectors ({})  {}  {}  arrays {}  allow {}  reserved {}{}{}",
                v.name,
                v.shelf,
                v.slot,
                v.sectors,
                human_bytes((v.sectors * 512) as f64),
                if v.read_only { "ro" } else { "rw" },
                if v.exported {
                    "exported"
                } else {
                    "not exported"
                },
                v.arrays.join("+"),
                list_or(&v.allow, "any"),
                list_or(&v.reserved, "none"),
                if v.fenced_commands + v.reserve_refused > 0 {
                    format!(
                        " (fenced {} commands, refused {} reserve changes)",
                        v.fenced_commands, v.reserve_refused
                    )
                } else {
                    String::new()
                },
                if v.reservation_lost {
                    "  STOPPED: another appliance took its blades (reservation lost)"
                } else {
                    ""
                }
            );
        }
    }
    if !s.blades.is_empty() {
        let _ = writeln!(
            out,
            "\nblades\n  {:<12} {:<5} {:>10} {:>11} {:>9} {:>11}  reservation",
            "blade", "state", "rtt", "retransmits", "timeouts", "outstanding"
        );
        for b in &s.blades {
            let _ = writeln!(
                out,
                "  {:<12} {:<5} {:>8.3}ms {:>11} {:>9} {:>5}/{:<5}  {}{}",
                b.blade,
                b.state.as_str(),
                b.rtt_seconds * 1000.0,
                b.retransmits,
                b.timeouts,
                b.outstanding,
                b.window,
                b.reservation.map_or("-", |r| r.as_str()),
                if b.reserved_by.is_empty() {
                    String::new()
                } else {
                    format!(" (held by {})", b.reserved_by.join(", "))
                }
            );
            if let Some(why) = &b.refused {
                let _ = writeln!(out, "    refused, left untouched: {why}");
            }
        }
    }
    for g in &s.spare_groups {
        let _ = writeln!(
            out,
            "\nspare group {}: available [{}]{}",
            g.name,
            g.available
                .iter()
                .enumerate()
                .map(|(i, a)| match g.origins.get(i).map(String::as_str) {
                    None | Some("config") => a.clone(),
                    Some(o) => format!("{a} ({o})"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            if g.missing.is_empty() {
                String::new()
            } else {
                format!(", missing [{}]", g.missing.join(" "))
            }
        );
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings");
        for w in &s.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_with_and_without_bar() {
        let p = SyncProgress {
            action: SyncAction::Rebuild,
            done_ratio: 0.5,
            done_bytes: 512 << 20,
            total_bytes: 1 << 30,
            rate_bytes_per_second: (64 << 20) as f64,
            eta_seconds: None,
        };
        let bar = progress_line(&p, true);
        assert!(
            bar.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))),
            "{bar}"
        );
        assert!(
            bar.contains(" 50.0%  512.0 MiB/1.0 GiB  64.0 MiB/s  ETA 8s"),
            "{bar}"
        );
        let plain = progress_line(&p, false);
        assert!(!plain.contains('['));
        assert!(plain.contains("ETA 8s"));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(human_duration(3725.0), "1h02m");
        assert_eq!(human_duration(245.0), "4m05s");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(100.0), "100 B");
    }
}
