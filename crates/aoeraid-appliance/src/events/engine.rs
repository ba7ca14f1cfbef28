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
        RaidEvent::SealStarted => Event::new(EventKind::SealStarted, array),
        RaidEvent::SealFinished => Event::new(EventKind::SealFinished, array),
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
        RaidEvent::ReAdded { member: m, whole } => at(EventKind::ReAdded, *m).detail(match whole {
            None => "resyncing only what changed".to_string(),
            Some(why) => format!("full rebuild: {why}"),
        }),
        RaidEvent::InterruptedWriteLost { offset, sectors } => {
            Event::new(EventKind::InterruptedWriteLost, array).detail(format!(
                "{sectors} sectors at volume sector {offset} of a write never acknowledged \
                 may hold neither the old nor the new data"
            ))
        }
    };
    Some(e)
}

/// Maps an initiator pool event to operator events, one per array that has
/// the blade as a member or spare (`arrays`), or one with an empty array
/// name if the blade belongs to none. `blade` is the blade's address;
/// `was_down` tells a blade coming back from one seen for the first time.
pub fn from_pool(
    ev: &aoe_initiator::Event,
    blade: &str,
    arrays: &[String],
    was_down: bool,
) -> Vec<Event> {
    let (kind, detail) = match ev {
        aoe_initiator::Event::BladeDown { failed_ios, .. } => (
            EventKind::DeviceDisappeared,
            format!("no answer within the dead time; {failed_ios} I/Os failed"),
        ),
        aoe_initiator::Event::BladeUp { sectors, .. } if was_down => (
            EventKind::DeviceReappeared,
            format!("answers again ({} bytes)", sectors * 512),
        ),
        _ => return Vec::new(),
    };
    let targets: Vec<&str> = if arrays.is_empty() {
        vec![""]
    } else {
        arrays.iter().map(String::as_str).collect()
    };
    targets
        .into_iter()
        .map(|a| Event::new(kind, a).member(blade).detail(detail.clone()))
        .collect()
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

    #[test]
    fn blade_down_and_back_name_every_array() {
        let id = aoe_initiator::BladeId(3);
        let arrays = vec!["data".to_string(), "logs".to_string()];
        let down = aoe_initiator::Event::BladeDown {
            blade: id,
            failed_ios: 2,
        };
        let ev = from_pool(&down, "e1.1", &arrays, false);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].argv(), ["DeviceDisappeared", "logs", "e1.1"]);
        let up = aoe_initiator::Event::BladeUp {
            blade: id,
            sectors: 8,
        };
        assert!(
            from_pool(&up, "e1.1", &arrays, false).is_empty(),
            "first sighting is not news"
        );
        let ev = from_pool(&up, "e1.1", &[], true);
        assert_eq!(ev[0].argv(), ["DeviceReappeared", "", "e1.1"]);
    }
}
