//! What both veth benchmarks read from the environment, and how they summarise runs.

use aoe_uring::RingConfig;

/// A number from the environment, or `default`.
pub(crate) fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Comma-separated numbers from the environment, or the defaults.
pub(crate) fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// `cfg` with [`RingConfig::single_issuer`] as `SINGLE_ISSUER` says (set, not `0`).
pub(crate) fn with_single_issuer_from_env(cfg: RingConfig) -> RingConfig {
    RingConfig {
        single_issuer: std::env::var("SINGLE_ISSUER").is_ok_and(|v| !v.is_empty() && v != "0"),
        ..cfg
    }
}

/// One measured run: items (frames, requests) per second on the wall clock, CPU ns per
/// item, items lost.
pub(crate) struct Run {
    pub(crate) per_s: f64,
    pub(crate) cpu_ns: f64,
    pub(crate) lost: u64,
}

/// The table both benchmarks print: for every length in `LENS` and every value of the
/// second parameter (`param`: its column name and values), the medians over `runs` of
/// the ring side and the syscall side, as `measure(ring_side, len, value)` measures
/// them, their ratios, and the items lost. `ONLY=ring|sys` runs one side (profiling).
pub(crate) fn compare(
    runs: usize,
    len_name: &str,
    param: (&str, Vec<u64>),
    unit: &str,
    mut measure: impl FnMut(bool, usize, u64) -> Run,
) {
    let (param_name, values) = param;
    println!(
        "{len_name:>6} {param_name:>6} {:>10} {:>8} {:>10} {:>8} {:>7} {:>7} {:>5}",
        format!("ring {unit}"),
        "cpu",
        format!("sys {unit}"),
        "cpu",
        format!("{unit} x"),
        "cpu x",
        "lost"
    );
    let only = std::env::var("ONLY").unwrap_or_default();
    for len in env_list("LENS", &[60, 1514, 9014]) {
        for &value in &values {
            let (mut rr, mut rc, mut sr, mut sc, mut lost) = (vec![], vec![], vec![], vec![], 0);
            for _ in 0..runs {
                for (ring_side, rates, cpus) in
                    [(true, &mut rr, &mut rc), (false, &mut sr, &mut sc)]
                {
                    if only == if ring_side { "sys" } else { "ring" } {
                        continue;
                    }
                    let r = measure(ring_side, len as usize, value);
                    rates.push(r.per_s);
                    cpus.push(r.cpu_ns);
                    lost += r.lost;
                }
            }
            let (rr, rc, sr, sc) = (median(rr), median(rc), median(sr), median(sc));
            println!(
                "{len:>6} {value:>6} {rr:>10.0} {rc:>8.0} {sr:>10.0} {sc:>8.0} {:>7.2} {:>7.2} {lost:>5}",
                rr / sr,
                sc / rc
            );
        }
    }
}

/// The median of `v` (NaN for no runs).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
