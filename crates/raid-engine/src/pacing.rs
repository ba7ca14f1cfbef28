//! Rebuild/resync/scrub pacing with md's semantics: `min` KiB/s per member is always
//! granted; up to `max` KiB/s when the volume has been idle; foreground I/O in the recent
//! past pulls the rate down to `min`.

#[derive(Clone, Debug)]
pub(crate) struct Pacer {
    pub min_kib_s: u64,
    pub max_kib_s: u64,
    window_start: u64,
    window_bytes: u64,
}

impl Default for Pacer {
    /// md's defaults: speed_limit_min 1,000 KiB/s, speed_limit_max 200,000 KiB/s.
    fn default() -> Self {
        Pacer {
            min_kib_s: 1_000,
            max_kib_s: 200_000,
            window_start: 0,
            window_bytes: 0,
        }
    }
}

const WINDOW_NS: u64 = 1_000_000_000;

impl Pacer {
    pub(crate) fn set(&mut self, min_kib_s: u64, max_kib_s: u64) {
        self.min_kib_s = min_kib_s.max(1);
        self.max_kib_s = max_kib_s.max(self.min_kib_s);
    }

    /// May the next `bytes` (per member) go out now?
    pub(crate) fn allow(&mut self, now: u64, busy: bool) -> bool {
        if now.saturating_sub(self.window_start) >= WINDOW_NS {
            self.window_start = now;
            self.window_bytes = 0;
        }
        let rate = if busy { self.min_kib_s } else { self.max_kib_s } * 1024;
        let elapsed = now.saturating_sub(self.window_start);
        let budget = (rate as u128 * elapsed as u128 / WINDOW_NS as u128) as u64;
        self.window_bytes <= budget
    }

    pub(crate) fn consume(&mut self, bytes: u64) {
        self.window_bytes += bytes;
    }

    pub(crate) fn rate_kib_s(&self, busy: bool) -> u64 {
        if busy {
            self.min_kib_s
        } else {
            self.max_kib_s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_gets_min_idle_gets_max() {
        for (busy, kib) in [(true, 1_000u64), (false, 8_000)] {
            let mut p = Pacer::default();
            p.set(1_000, 8_000);
            let mut sent = 0u64;
            let mut now = 0;
            while now < 10 * WINDOW_NS {
                while p.allow(now, busy) {
                    p.consume(64 * 1024);
                    sent += 64 * 1024;
                }
                now += 1_000_000;
            }
            let rate = sent / 10 / 1024;
            assert!(
                rate >= kib && rate <= kib + kib / 5 + 64,
                "busy={busy}: {rate} KiB/s"
            );
        }
    }
}
