//! Counters kept by one target worker (cumulative, never reset).

/// Declares [`Counters`] once: the struct, its list of (name, value) pairs
/// and the sum of two workers' counters come from the same field list.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// What happened to received frames and requests.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Every counter with its field name, in declaration order (for
            /// logs and summaries).
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }

            /// Adds `other`'s counts to these (totals over workers).
            pub fn add(&mut self, other: &Counters) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

counters! {
    /// Frames handed to the target.
    frames,
    /// Frames that failed to parse (truncated, lying lengths, wrong EtherType…): dropped.
    malformed,
    /// Frames with the R flag set (other targets' replies): ignored.
    responses_ignored,
    /// Requests sent to another unicast MAC than the receiving interface's
    /// (seen when the interface is promiscuous): ignored.
    wrong_destination,
    /// Requests from a broadcast or multicast source MAC: ignored.
    bad_source,
    /// Requests with the E flag set (only responses carry errors): ignored.
    error_flag_requests,
    /// Requests with reserved flag bits, or an error byte without E, set:
    /// served (receivers ignore those bits), counted.
    reserved_bits,
    /// Requests of an AoE version other than 1, answered with E + error 5.
    unsupported_version,
    /// Frames for a shelf.slot not exported on the receiving interface.
    not_addressed,
    /// Frames from a MAC outside a non-empty mask list: ignored.
    masked,
    /// Vendor-specific commands (0xF0–0xFF): ignored.
    vendor_ignored,
    /// Unknown AoE commands answered with E + error 1.
    unknown_command,
    /// Requests dropped because the client already had Buffer Count requests queued.
    client_queue_full,
    /// Requests dropped because every request slot or client slot was busy.
    target_queue_full,
    /// Requests dropped by the driver (no buffer to build the reply).
    driver_dropped,
    /// Broadcast Query Config replies suppressed by the storm limiter.
    broadcast_limited,
    /// ATA commands refused with ATA ERR/ABRT because a non-empty reserve
    /// list excludes their sender (IDENTIFY is never refused).
    reservation_conflicts,
    /// Reserve Set/Force Set refused with E + error 6: the sender was outside
    /// the allow (mask) list, or (Set) outside a non-empty reserve list.
    reserve_refused,
    /// Reserve replies held until the writes in flight when their list was
    /// made had reached the store.
    reserve_replies_held,
    /// Reads issued to the store.
    reads,
    /// Writes issued to the store.
    writes,
    /// Syncs issued to the store (each covers a batch of writes/flushes).
    syncs,
    /// Writes and flushes acknowledged after a sync.
    synced_acks,
    /// Writes the store made durable by themselves (one `RWF_DSYNC` write
    /// for a write with nothing to group with), acknowledged without a sync.
    durable_writes,
    /// ATA commands answered with ERR (ABRT, IDNF or UNC).
    ata_errors,
    /// Store operations that failed (reported as ATA ERR/UNC).
    io_errors,
    /// Control replies (config, mask, reserve, identify, errors) built.
    control_replies,
    /// Unsolicited config announcements built.
    announcements,
}
