//! Token bucket that bounds how many broadcast Query Config replies one
//! interface sends, so a storm of broadcast queries (or a loop on a bridge)
//! cannot turn the target into an amplifier.

use std::time::Instant;

#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: u32,
    burst: u32,
    per_sec: u32,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(burst: u32, per_sec: u32) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            burst,
            per_sec,
            last: None,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        match self.last {
            None => self.last = Some(now),
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                let earned =
                    elapsed.as_micros().saturating_mul(u128::from(self.per_sec)) / 1_000_000;
                if earned > 0 {
                    let earned = u32::try_from(earned).unwrap_or(u32::MAX);
                    self.tokens = self.tokens.saturating_add(earned).min(self.burst);
                    self.last = Some(now);
                }
            }
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 10);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(110)));
        assert!(!b.take(t0 + Duration::from_millis(111)));
        // Long idle refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        assert!((0..3).all(|_| b.take(later)));
        assert!(!b.take(later));
    }
}
