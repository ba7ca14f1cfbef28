//! Tunables of the pool. Defaults suit blades on a LAN: RTTs of tens to
//! hundreds of microseconds, so timeouts are milliseconds (Linux starts at
//! 250 ms / 2 s and waits 180 s before failing a device; a RAID member must
//! fail fast instead).

use std::time::Duration;

/// Pool configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// A frame unanswered this long (across all its retransmissions) marks
    /// its blade down and fails every outstanding I/O.
    pub dead_time: Duration,
    /// Retransmit timeout before the first RTT sample.
    pub rto_initial: Duration,
    /// Floor of the adaptive timeout. Keeps spurious retransmits (and with
    /// them stale write copies in flight) rare when the blade host is busy.
    pub rto_min: Duration,
    /// Ceiling of the timeout after exponential backoff.
    pub rto_max: Duration,
    /// How often a down blade is probed with a directed Query Config.
    pub probe_interval: Duration,
    /// Upper bound of the window whatever Buffer Count a blade advertises
    /// (Linux: `aoe_maxout` = 64).
    pub max_window: u16,
    /// Timeouts in a row after which a path is avoided while another path
    /// is healthy; it is tried again after `probe_interval`.
    pub path_loss_limit: u32,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            dead_time: Duration::from_secs(10),
            rto_initial: Duration::from_millis(50),
            rto_min: Duration::from_millis(10),
            rto_max: Duration::from_millis(800),
            probe_interval: Duration::from_secs(1),
            max_window: 64,
            path_loss_limit: 3,
        }
    }
}

impl PoolConfig {
    /// How long after its last send a completed write's unanswered copies are
    /// taken to be gone for good. A copy is unanswered either because it was
    /// lost (the usual reason for the resend) or because it is still queued
    /// somewhere: a NIC or switch queue, the blade's socket, its work queue.
    /// `rto_max` is the longest the pool itself ever waits for one send before
    /// treating it as lost, and every copy was sent before the last send, so
    /// this bound is longer than any wait the pool already relies on; a queue
    /// holding a frame longer than that means a blade stalled past the pool's
    /// longest timeout, which the dead-time countdown is for. It is not
    /// `dead_time`: a lost copy would then hold every later write to its range
    /// (a bitmap or superblock sector) back for seconds.
    pub(crate) fn copy_lifetime(&self) -> Duration {
        self.rto_max
    }
}
