//! From the RAID engine's events to operator events. The engine names
//! members by index; the appliance knows their addresses.

use super::{Event, EventKind};
use raid_engine::Event as RaidEvent;

/// Maps one engine event of `array`. `member` turns a member index into its
/// address (`e0.1`). Returns None for engine bookkeeping that operators do
/// not act on (plain member state transitions, already covered by Fail,
/// SpareActive and friends).
pub fn from_engine(array: &str, ev: &RaidEvent, member: &dyn Fn(usize) -> String) -> Option<Event> {
    let at = |kind: EventKind, m: usize| Event::new(kind, array).member(member(m));
    let e = match ev {
        RaidEvent::MemberStateChanged { .. } => return None,
        RaidEvent::Fail { member: m } => at(EventKind::Fail, *m),
        RaidEvent::DegradedArray => Event::new(EventKind::DegradedArray, array),
        RaidEvent::ArrayFailed => Event::new(EventKind::ArrayFailed, array),
        RaidEvent::SpareActive { member: m } => at(EventKind::SpareActive, *m),
        RaidEvent::MoveSpare {
            from_array,
            to_array,
        } => Event::new(EventKind::MoveSpare, to_array.as_str())
            .detail(format!("spare taken from array {from_array}")),
        RaidEvent::SparesMissing => Event::new(EventKind::SparesMissing, array),
        RaidEvent::RebuildStarted {
            member: m,
            bitmap_only,
        } => {
            let e = at(EventKind::RebuildStarted, *m);
            if *bitmap_only {
                e.detail("only regions written while the member was away")
            } else {
                e
            }
        }
        RaidEvent::RebuildProgress { member: m, percent } => at(EventKind::Rebuild(*percent), *m),
        RaidEvent::RebuildFinished { member: m } => at(EventKind::RebuildFinished, *m),
        RaidEvent::RebuildAborted { member: m } => {
            at(EventKind::RebuildAborted, *m).detail("a source range could not be read")
        }
        RaidEvent::ResyncStarted => Event::new(EventKind::ResyncStarted, array),
        RaidEvent::ResyncFinished => Event::new(EventKind::ResyncFinished, array),
        RaidEvent::ScrubStarted { repair } => Event::new(EventKind::ScrubStarted, array)
            .detail(if *repair { "repair" } else { "check" }),
        RaidEvent::ScrubFinished {
            repair,
            mismatch_sectors,
        } => Event::new(EventKind::ScrubFinished, array).detail(format!(
            "{}: {} mismatched bytes",
            if *repair { "repair" } else { "check" },
            mismatch_sectors * 512
        )),
        RaidEvent::CorrectedReadError {
            member: m,
            offset,
            sectors,
        } => at(EventKind::CorrectedReadError, *m).detail(format!(
            "{sectors} sectors at member sector {offset} rewritten from redundancy"
        )),
        RaidEvent::ChecksumRepaired {
            member: m,
            offset,
            sectors,
        } => at(EventKind::ChecksumRepaired, *m).detail(format!(
            "{sectors} sectors at member sector {offset} failed their checksum and were rewritten"
        )),
        RaidEvent::MemberRefused { member: m, reason } => {
            at(EventKind::MemberRefused, *m).detail(reason.clone())
        }
        RaidEvent::ReAdded {
            member: m,
            bitmap_only,
        } => at(EventKind::ReAdded, *m).detail(if *bitmap_only {
            "resyncing only what changed"
        } else {
            "full rebuild"
        }),
    };
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_events_name_members_by_address() {
        let names = ["e0.0", "e1.0", "e0.1", "e1.1"];
        let member = |i: usize| names[i].to_string();
        let ev = from_engine("data", &RaidEvent::Fail { member: 3 }, &member).unwrap();
        assert_eq!(ev.argv(), ["Fail", "data", "e1.1"]);
        let ev = from_engine(
            "data",
            &RaidEvent::RebuildProgress {
                member: 1,
                percent: 40,
            },
            &member,
        )
        .unwrap();
        assert_eq!(ev.argv(), ["Rebuild40", "data", "e1.0"]);
        let ev = from_engine(
            "data",
            &RaidEvent::ScrubFinished {
                repair: false,
                mismatch_sectors: 8,
            },
            &member,
        )
        .unwrap();
        assert_eq!(ev.detail.as_deref(), Some("check: 4096 mismatched bytes"));
        let ev = from_engine(
            "data",
            &RaidEvent::MoveSpare {
                from_array: "logs".into(),
                to_array: "data".into(),
            },
            &member,
        )
        .unwrap();
        assert_eq!(ev.argv(), ["MoveSpare", "data"]);
        assert!(from_engine(
            "data",
            &RaidEvent::MemberStateChanged {
                member: 0,
                from: raid_engine::MemberState::Active,
                to: raid_engine::MemberState::Faulty
            },
            &member
        )
        .is_none());
    }
}
