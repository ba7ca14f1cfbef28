//! Events: what happened to an array or member, in mdadm --monitor's
//! vocabulary plus a few of our own. Each event is logged (one line on
//! stderr, which systemd puts in the journal), counted
//! (`aoeraid_events_total{event}`) and handed to the operator's
//! `event_program` as `PROGRAM EVENT ARRAY [MEMBER]` — when it happens, not
//! on a poll.
//!
//! The data path only calls [`EventSink::emit`], which never blocks: the
//! event goes into a bounded queue read by the [`dispatch`] thread.

pub mod dispatch;
pub mod engine;

pub use dispatch::{Dispatcher, DispatcherOptions, EventSink};

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An active member failed.
    Fail,
    /// A spare failed (while idle or while being rebuilt onto).
    FailSpare,
    /// The array has fewer active members than it needs.
    DegradedArray,
    /// A rebuilt spare became an active member.
    SpareActive,
    /// A spare from a spare group was given to a degraded array.
    MoveSpare,
    /// An array is degraded and no spare is left for it.
    SparesMissing,
    RebuildStarted,
    /// Rebuild passed NN percent (20, 40, 60, 80).
    Rebuild(u8),
    RebuildFinished,
    ResyncStarted,
    ResyncFinished,
    /// Checksums being computed for data written before integrity knew it (a new
    /// array's blocks, not verified until sealed) / all sealed.
    SealStarted,
    SealFinished,
    /// A member's blade stopped answering.
    DeviceDisappeared,
    /// A blade that had disappeared answers again.
    DeviceReappeared,
    /// An array was assembled and started.
    NewArray,
    /// No longer enough members to serve the data.
    ArrayFailed,
    ScrubStarted,
    ScrubFinished,
    /// A block failed its checksum and was rewritten from a good copy.
    ChecksumRepaired,
    /// Sent on request so operators can test their event program.
    TestMessage,
    /// A rebuild stopped: a source range could not be read.
    RebuildAborted,
    /// A member read error was served from redundancy and rewritten.
    CorrectedReadError,
    /// A returning member was not taken back (foreign or unreadable superblock).
    MemberRefused,
    /// A member that dropped out was taken back in.
    ReAdded,
    /// Another appliance holds a blade's AoE reservation now (it took the blades
    /// over): the volumes on that blade stopped serving here.
    ReservationLost,
    /// After a crash and a member loss, the log replay could not tell whether part of an
    /// interrupted (never acknowledged) write on the lost member is old or new.
    InterruptedWriteLost,
}

impl EventKind {
    /// The name passed to the program and used as the metric label.
    pub fn name(self) -> String {
        match self {
            EventKind::Rebuild(nn) => format!("Rebuild{nn}"),
            other => other.static_name().to_string(),
        }
    }

    fn static_name(self) -> &'static str {
        match self {
            EventKind::Fail => "Fail",
            EventKind::FailSpare => "FailSpare",
            EventKind::DegradedArray => "DegradedArray",
            EventKind::SpareActive => "SpareActive",
            EventKind::MoveSpare => "MoveSpare",
            EventKind::SparesMissing => "SparesMissing",
            EventKind::RebuildStarted => "RebuildStarted",
            EventKind::Rebuild(_) => "RebuildNN",
            EventKind::RebuildFinished => "RebuildFinished",
            EventKind::ResyncStarted => "ResyncStarted",
            EventKind::ResyncFinished => "ResyncFinished",
            EventKind::SealStarted => "SealStarted",
            EventKind::SealFinished => "SealFinished",
            EventKind::DeviceDisappeared => "DeviceDisappeared",
            EventKind::DeviceReappeared => "DeviceReappeared",
            EventKind::NewArray => "NewArray",
            EventKind::ArrayFailed => "ArrayFailed",
            EventKind::ScrubStarted => "ScrubStarted",
            EventKind::ScrubFinished => "ScrubFinished",
            EventKind::ChecksumRepaired => "ChecksumRepaired",
            EventKind::TestMessage => "TestMessage",
            EventKind::RebuildAborted => "RebuildAborted",
            EventKind::CorrectedReadError => "CorrectedReadError",
            EventKind::MemberRefused => "MemberRefused",
            EventKind::ReAdded => "ReAdded",
            EventKind::ReservationLost => "ReservationLost",
            EventKind::InterruptedWriteLost => "InterruptedWriteLost",
        }
    }

    /// Events that need an operator's attention are logged as warnings (or
    /// worse) so `journalctl -p warning` shows them.
    pub fn syslog_priority(self) -> u8 {
        match self {
            EventKind::ArrayFailed | EventKind::ReservationLost => 2,
            EventKind::Fail
            | EventKind::FailSpare
            | EventKind::DegradedArray
            | EventKind::RebuildAborted => 3,
            EventKind::SparesMissing
            | EventKind::DeviceDisappeared
            | EventKind::ChecksumRepaired
            | EventKind::CorrectedReadError
            | EventKind::MemberRefused
            | EventKind::InterruptedWriteLost => 4,
            _ => 5,
        }
    }

    /// The percentage steps at which `RebuildNN` fires, like mdadm.
    pub const REBUILD_STEPS: [u8; 4] = [20, 40, 60, 80];

    /// The `RebuildNN` events crossed when progress moves from `before` to
    /// `after` (ratios 0..1).
    pub fn rebuild_steps_crossed(before: f64, after: f64) -> Vec<EventKind> {
        Self::REBUILD_STEPS
            .iter()
            .filter(|&&nn| {
                let t = f64::from(nn) / 100.0;
                before < t && after >= t
            })
            .map(|&nn| EventKind::Rebuild(nn))
            .collect()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub array: String,
    /// The member concerned (`e0.1`, `file:/path`), when there is one.
    pub member: Option<String>,
    /// Free text for the log line and `AOERAID_DETAIL`.
    pub detail: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind, array: impl Into<String>) -> Self {
        Event {
            kind,
            array: array.into(),
            member: None,
            detail: None,
        }
    }

    pub fn member(mut self, member: impl Into<String>) -> Self {
        self.member = Some(member.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The program's arguments: EVENT ARRAY [MEMBER].
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![self.kind.name(), self.array.clone()];
        if let Some(m) = &self.member {
            v.push(m.clone());
        }
        v
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {} array={}", self.kind, self.array)?;
        if let Some(m) = &self.member {
            write!(f, " member={m}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// Writes one log line to stderr. Under systemd (JOURNAL_STREAM set) the
/// line carries a `<N>` syslog priority prefix, which journald turns into the
/// entry's priority; on a terminal it reads as plain text.
pub fn log_line(priority: u8, msg: &str) {
    use std::io::Write;
    let line = if std::env::var_os("JOURNAL_STREAM").is_some() {
        format!("<{priority}>{msg}\n")
    } else {
        format!("aoeraid: {msg}\n")
    };
    // Logging must never take the daemon down; a closed stderr loses lines.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_argv() {
        let e = Event::new(EventKind::Fail, "data")
            .member("e0.1")
            .detail("blade silent 10s");
        assert_eq!(e.argv(), ["Fail", "data", "e0.1"]);
        assert_eq!(
            e.to_string(),
            "event Fail array=data member=e0.1: blade silent 10s"
        );
        assert_eq!(
            Event::new(EventKind::Rebuild(40), "data").argv(),
            ["Rebuild40", "data"]
        );
    }

    #[test]
    fn rebuild_steps() {
        assert_eq!(
            EventKind::rebuild_steps_crossed(0.1, 0.45),
            [EventKind::Rebuild(20), EventKind::Rebuild(40)]
        );
        assert!(EventKind::rebuild_steps_crossed(0.2, 0.39).is_empty());
        assert_eq!(
            EventKind::rebuild_steps_crossed(0.79, 1.0),
            [EventKind::Rebuild(80)]
        );
    }
}
