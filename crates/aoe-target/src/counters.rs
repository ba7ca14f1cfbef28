//! Counters kept by one target worker (cumulative, never reset).

/// What happened to received frames and requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to the target.
    pub frames: u64,
    /// Frames that failed to parse (truncated, lying lengths, wrong EtherType…): dropped.
    pub malformed: u64,
    /// Frames with the R flag set (other targets' replies): ignored.
    pub responses_ignored: u64,
    /// Frames for a shelf.slot not exported on the receiving interface.
    pub not_addressed: u64,
    /// Frames from a MAC outside a non-empty mask list: ignored.
    pub masked: u64,
    /// Vendor-specific commands (0xF0–0xFF): ignored.
    pub vendor_ignored: u64,
    /// Unknown AoE commands answered with E + error 1.
    pub unknown_command: u64,
    /// Requests dropped because the client already had Buffer Count requests queued.
    pub client_queue_full: u64,
    /// Requests dropped because every request slot or client slot was busy.
    pub target_queue_full: u64,
    /// Requests dropped by the driver (no buffer to build the reply).
    pub driver_dropped: u64,
    /// Broadcast Query Config replies suppressed by the storm limiter.
    pub broadcast_limited: u64,
    /// ATA commands refused with ATA ERR/ABRT because a non-empty reserve
    /// list excludes their sender (IDENTIFY is never refused).
    pub reservation_conflicts: u64,
    /// Reserve Set/Force Set refused with E + error 6: the sender was outside
    /// the allow (mask) list, or (Set) outside a non-empty reserve list.
    pub reserve_refused: u64,
    /// Reserve replies held until the writes in flight when their list was
    /// made had reached the store.
    pub reserve_replies_held: u64,
    /// Reads issued to the store.
    pub reads: u64,
    /// Writes issued to the store.
    pub writes: u64,
    /// Syncs issued to the store (each covers a batch of writes/flushes).
    pub syncs: u64,
    /// Writes and flushes acknowledged after a sync.
    pub synced_acks: u64,
    /// ATA commands answered with ERR (ABRT, IDNF or UNC).
    pub ata_errors: u64,
    /// Store operations that failed (reported as ATA ERR/UNC).
    pub io_errors: u64,
    /// Control replies (config, mask, reserve, identify, errors) built.
    pub control_replies: u64,
    /// Unsolicited config announcements built.
    pub announcements: u64,
}
