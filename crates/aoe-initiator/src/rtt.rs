//! Jacobson/Karels round-trip estimator (RFC 6298 gains) giving the
//! retransmit timeout. Each send of a frame carries its own tag, so every
//! matched reply is an unambiguous sample of that send (no Karn problem).

use std::time::Duration;

use crate::PoolConfig;

/// Smoothed RTT and mean deviation, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RttEstimator {
    srtt_ns: u64,
    rttvar_ns: u64,
    samples: u64,
}

/// Granularity added to the variance term so a perfectly steady RTT still
/// leaves headroom for scheduling jitter on the blade host.
const JITTER_NS: u64 = 200_000;

impl RttEstimator {
    /// Feeds one measured round trip.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let r = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX / 4);
        if self.samples == 0 {
            self.srtt_ns = r;
            self.rttvar_ns = r / 2;
        } else {
            let err = r.abs_diff(self.srtt_ns);
            // rttvar += (|err| - rttvar) / 4 ; srtt += (r - srtt) / 8
            self.rttvar_ns = self.rttvar_ns - self.rttvar_ns / 4 + err / 4;
            self.srtt_ns = self.srtt_ns - self.srtt_ns / 8 + r / 8;
        }
        self.samples += 1;
    }

    /// Smoothed RTT (zero before the first sample).
    pub(crate) fn srtt(&self) -> Duration {
        Duration::from_nanos(self.srtt_ns)
    }

    /// Mean deviation (zero before the first sample).
    pub(crate) fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar_ns)
    }

    /// `2·srtt + 8·rttvar` (the Linux driver's formula, twice TCP's) clamped
    /// to the configured floor and ceiling, or the initial timeout before any
    /// sample. TCP's `srtt + 4·rttvar` is too eager here: a blade's or an
    /// appliance's latency swings with queueing behind other writes, and
    /// every spurious timeout resends a write (a stale copy that may land
    /// late) and halves the window.
    pub(crate) fn rto(&self, cfg: &PoolConfig) -> Duration {
        if self.samples == 0 {
            return cfg
                .rto_initial
                .clamp(cfg.rto_min, cfg.rto_max.max(cfg.rto_min));
        }
        let ns = self
            .srtt_ns
            .saturating_mul(2)
            .saturating_add(self.rttvar_ns.saturating_mul(8).max(JITTER_NS));
        Duration::from_nanos(ns).clamp(cfg.rto_min, cfg.rto_max.max(cfg.rto_min))
    }

    /// Timeout of a send that is the `retries`-th retransmission: the RTO
    /// doubled per retry, capped at the ceiling.
    pub(crate) fn backoff(&self, cfg: &PoolConfig, retries: u32) -> Duration {
        let base = self.rto(cfg);
        let factor = 1u32 << retries.min(16);
        base.saturating_mul(factor).min(cfg.rto_max.max(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_and_clamps() {
        let cfg = PoolConfig::default();
        let mut e = RttEstimator::default();
        assert_eq!(e.rto(&cfg), cfg.rto_initial);
        for _ in 0..100 {
            e.sample(Duration::from_micros(100));
        }
        assert!(e.srtt() > Duration::from_micros(95) && e.srtt() < Duration::from_micros(105));
        // 100 µs RTT → floor wins.
        assert_eq!(e.rto(&cfg), cfg.rto_min);
        for _ in 0..100 {
            e.sample(Duration::from_millis(30));
        }
        let rto = e.rto(&cfg);
        assert!(
            rto >= Duration::from_millis(60) && rto < Duration::from_millis(120),
            "{rto:?}"
        );
        assert_eq!(e.backoff(&cfg, 10), cfg.rto_max);
        assert_eq!(e.backoff(&cfg, 1), (rto * 2).min(cfg.rto_max));
    }
}
