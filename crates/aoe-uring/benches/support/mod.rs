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

/// `ONLY=ring|sys`: the one side to run (for profiling), empty for both.
pub(crate) fn only() -> String {
    std::env::var("ONLY").unwrap_or_default()
}

/// `cfg` with [`RingConfig::single_issuer`] as `SINGLE_ISSUER` says (set, not `0`).
pub(crate) fn with_single_issuer_from_env(cfg: RingConfig) -> RingConfig {
    RingConfig {
        single_issuer: std::env::var("SINGLE_ISSUER").is_ok_and(|v| !v.is_empty() && v != "0"),
        ..cfg
    }
}

/// The median of `v` (NaN for no runs).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
