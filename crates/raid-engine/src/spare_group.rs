//! Spare groups (mdadm's `spare-group`): arrays in one group lend each other spares. An
//! array uses its own spare first (the engine does that by itself); when it has none,
//! `balance_spares` moves one from another array of the same group, and the receiving
//! array starts rebuilding onto it at once.

use crate::engine::Engine;
use crate::types::{Event, MemberIndex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpareMove {
    pub from_array: usize,
    pub from_member: MemberIndex,
    pub to_array: usize,
    pub to_member: MemberIndex,
}

/// `arrays[i] = (group, engine)`; arrays with an empty group share nothing. Returns the
/// moves made: the caller re-routes the device from (from_array, from_member) to
/// (to_array, to_member).
pub fn balance_spares(arrays: &mut [(&str, &mut Engine)]) -> Vec<SpareMove> {
    let mut moves = Vec::new();
    for to in 0..arrays.len() {
        if arrays[to].0.is_empty() || !arrays[to].1.needs_spare() {
            continue;
        }
        let donor = (0..arrays.len()).find(|&from| {
            from != to
                && arrays[from].0 == arrays[to].0
                && arrays[from]
                    .1
                    .status()
                    .members
                    .iter()
                    .any(|m| m.state == crate::types::MemberState::Spare)
        });
        let Some(from) = donor else { continue };
        let Some((from_member, spec)) = arrays[from].1.take_spare() else {
            continue;
        };
        match arrays[to].1.add_spare(spec) {
            Ok(to_member) => {
                let ev = Event::MoveSpare {
                    from_array: arrays[from].1.status().name,
                    to_array: arrays[to].1.status().name,
                };
                arrays[to].1.push_event(ev);
                moves.push(SpareMove {
                    from_array: from,
                    from_member,
                    to_array: to,
                    to_member,
                });
            }
            Err(_) => {
                // Too small for the receiver: give it back.
                let _ = arrays[from].1.return_spare(from_member);
            }
        }
    }
    moves
}
