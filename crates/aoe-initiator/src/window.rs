//! Frames a blade may have outstanding: AIMD counted in frames, bounded by
//! the blade's advertised Buffer Count (its receive queue depth).
//!
//! Like Linux (§7.4 of the protocol notes) it starts at half the Buffer
//! Count, grows by one per reply below the threshold (slow start) and by one
//! per window's worth of replies above it. Unlike Linux it does not fall to 1
//! on every timeout: a loss episode (all timeouts within one RTO of the
//! first) halves the window once, the way TCP reacts once per window. A
//! blade queue overflow shows up as a burst of timeouts; cutting to 1 on each
//! would stall a lossy-but-idle link for no gain.

use std::time::Instant;

/// AIMD window state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    cwnd: u32,
    ssthresh: u32,
    max: u32,
    acked: u32,
    recover_until: Option<Instant>,
    /// (cwnd, ssthresh) before the last cut, until a reply proves the cut
    /// spurious or the next cut replaces it.
    before_cut: Option<(u32, u32)>,
}

/// Why a Buffer Count was not used as advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowNote {
    /// 0 or 1: the blade can queue at most one request; window fixed at 1.
    TinyBufferCount(u16),
    /// Above the configured cap.
    Capped { advertised: u16, cap: u16 },
}

impl Window {
    /// Window for a blade advertising `buffer_count`, capped at `cap`.
    pub(crate) fn new(buffer_count: u16, cap: u16) -> (Window, Option<WindowNote>) {
        let (max, note) = Self::limit(buffer_count, cap);
        let start = (max / 2).max(1);
        (
            Window {
                cwnd: start,
                ssthresh: start,
                max,
                acked: 0,
                recover_until: None,
                before_cut: None,
            },
            note,
        )
    }

    fn limit(buffer_count: u16, cap: u16) -> (u32, Option<WindowNote>) {
        let cap = cap.max(1);
        if buffer_count <= 1 {
            (1, Some(WindowNote::TinyBufferCount(buffer_count)))
        } else if buffer_count > cap {
            (
                u32::from(cap),
                Some(WindowNote::Capped {
                    advertised: buffer_count,
                    cap,
                }),
            )
        } else {
            (u32::from(buffer_count), None)
        }
    }

    /// A new Buffer Count from a later config reply. A smaller one pulls
    /// the window down at once.
    pub(crate) fn set_buffer_count(&mut self, buffer_count: u16, cap: u16) -> Option<WindowNote> {
        let (max, note) = Self::limit(buffer_count, cap);
        self.max = max;
        self.cwnd = self.cwnd.min(max);
        self.ssthresh = self.ssthresh.min(max).max(1);
        note
    }

    /// Frames that may be outstanding now.
    pub(crate) fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// Upper bound from the Buffer Count.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// A reply matched.
    pub(crate) fn on_reply(&mut self) {
        if self.cwnd >= self.max {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.acked += 1;
            if self.acked >= self.cwnd {
                self.acked = 0;
                self.cwnd += 1;
            }
        }
    }

    /// The last cut was spurious (the timed-out send was answered after
    /// all): restores the window it cut, at most once per cut. True if a cut
    /// was undone.
    pub(crate) fn undo_cut(&mut self) -> bool {
        match self.before_cut.take() {
            Some((cwnd, ssthresh)) => {
                self.cwnd = self.cwnd.max(cwnd).min(self.max);
                self.ssthresh = self.ssthresh.max(ssthresh).min(self.max);
                true
            }
            None => false,
        }
    }

    /// A frame timed out at `now`; `rto` is the current timeout, which
    /// bounds one loss episode.
    pub(crate) fn on_timeout(&mut self, now: Instant, rto: std::time::Duration) {
        if self.recover_until.is_some_and(|t| now < t) {
            return;
        }
        self.before_cut = Some((self.cwnd, self.ssthresh));
        self.ssthresh = (self.cwnd / 2).max(1);
        self.cwnd = self.ssthresh;
        self.acked = 0;
        self.recover_until = Some(now + rto);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The window after `n` more replies.
    fn cwnd_after_replies(w: &mut Window, n: usize) -> u32 {
        for _ in 0..n {
            w.on_reply();
        }
        w.cwnd()
    }

    #[test]
    fn starts_at_half_and_grows_to_max() {
        let (mut w, note) = Window::new(16, 64);
        assert!(note.is_none());
        assert_eq!(w.cwnd(), 8);
        assert_eq!(cwnd_after_replies(&mut w, 1000), 16);
    }

    #[test]
    fn congestion_avoidance_is_additive() {
        let (mut w, _) = Window::new(64, 64);
        assert_eq!(w.cwnd(), 32);
        // At the threshold: +1 only after cwnd replies.
        assert_eq!(cwnd_after_replies(&mut w, 31), 32);
        assert_eq!(cwnd_after_replies(&mut w, 1), 33);
    }

    #[test]
    fn timeout_halves_once_per_episode() {
        let t0 = Instant::now();
        let (mut w, _) = Window::new(32, 64);
        assert_eq!(w.cwnd(), 16);
        w.on_timeout(t0, Duration::from_millis(10));
        assert_eq!(w.cwnd(), 8);
        w.on_timeout(t0 + Duration::from_millis(5), Duration::from_millis(10));
        assert_eq!(w.cwnd(), 8, "same episode");
        w.on_timeout(t0 + Duration::from_millis(11), Duration::from_millis(10));
        assert_eq!(w.cwnd(), 4);
        // Slow start back up to ssthresh is not possible (cwnd == ssthresh), growth is additive.
        assert_eq!(cwnd_after_replies(&mut w, 4), 5);
    }

    #[test]
    fn undo_restores_the_last_cut_once() {
        let t0 = Instant::now();
        let (mut w, _) = Window::new(32, 64);
        assert!(!w.undo_cut(), "nothing to undo before a cut");
        w.on_timeout(t0, Duration::from_millis(10));
        assert_eq!((w.cwnd(), w.ssthresh), (8, 8));
        assert!(w.undo_cut());
        assert_eq!((w.cwnd(), w.ssthresh), (16, 16));
        assert!(!w.undo_cut(), "one undo per cut");
        assert_eq!(w.cwnd(), 16);
    }

    #[test]
    fn tiny_and_huge_buffer_counts() {
        for bc in [0u16, 1] {
            let (mut w, note) = Window::new(bc, 64);
            assert_eq!(note, Some(WindowNote::TinyBufferCount(bc)));
            assert_eq!(w.cwnd(), 1);
            assert_eq!(cwnd_after_replies(&mut w, 1), 1);
            w.on_timeout(Instant::now(), Duration::from_millis(1));
            assert_eq!(w.cwnd(), 1);
        }
        let (w, note) = Window::new(1000, 64);
        assert_eq!(
            note,
            Some(WindowNote::Capped {
                advertised: 1000,
                cap: 64
            })
        );
        assert_eq!(w.max(), 64);
        assert_eq!(w.cwnd(), 32);
    }

    #[test]
    fn shrinking_buffer_count_pulls_window_down() {
        let (mut w, _) = Window::new(32, 64);
        w.set_buffer_count(4, 64);
        assert_eq!(w.cwnd(), 4);
        assert_eq!(w.max(), 4);
    }
}
