//! The agent's decisions, without I/O: from the reserve list the target reported, the
//! hosts map, the node acted on and the MAC this agent sends from, what to set next and
//! whether the action is done; and the read-check-set loop over any [`Reservations`]
//! (the AoE link in `link.rs`, an in-memory target in the tests).

use std::fmt;

use aoe_wire::Mac;

use super::hosts::{Host, Hosts};
use super::link::LinkError;

/// What the agent knows besides the list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scene<'a> {
    pub(crate) hosts: &'a Hosts,
    /// The node acted on.
    pub(crate) victim: &'a Host,
    /// The MAC of the local interface: the Ethernet source the target sees.
    pub(crate) me: Mac,
}

/// `status`: may the node write?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    On,
    Off,
}

/// An empty list lets every station write; otherwise any MAC of the node still on the
/// list is a way for it to write, so it is off only when none is.
pub(crate) fn power(list: &[Mac], victim: &Host) -> Power {
    if list.is_empty() || victim.macs.iter().any(|m| list.contains(m)) {
        Power::On
    } else {
        Power::Off
    }
}

/// Which way an action moves the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Off,
    On,
}

/// Why the agent stops without changing anything (or after losing a race).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The local interface's MAC belongs to the node to fence.
    FenceSelf { node: String, me: Mac },
    /// Setting a list without the local MAC would lock this node out.
    SelfNotInHosts { me: Mac },
    /// The list is non-empty and the local MAC is not on it: this node is fenced
    /// itself (another survivor won), and Set Reserve List from it is refused anyway.
    Excluded { me: Mac },
    /// `on` would need more MACs than a reserve list holds.
    ListFull { need: usize },
    /// The list kept changing under the agent for `rounds` read-check-set rounds.
    Unsettled { rounds: u32 },
    /// The target, the link or the interface failed.
    Link(LinkError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::FenceSelf { node, me } => write!(
                f,
                "refusing to fence myself: the local interface's MAC {me} belongs to `{node}`"
            ),
            Refusal::SelfNotInHosts { me } => write!(
                f,
                "the local interface's MAC {me} is not in hosts: a list set from here would \
                 shut this node out"
            ),
            Refusal::Excluded { me } => write!(
                f,
                "this node ({me}) is not on the reserve list: it is fenced itself (another \
                 node won), so the target refuses its changes; a node on the list must act"
            ),
            Refusal::ListFull { need } => {
                write!(f, "the reserve list would need {need} MACs, more than 255")
            }
            Refusal::Unsettled { rounds } => write!(
                f,
                "the reserve list kept changing under this agent for {rounds} rounds \
                 (raise retry_on)"
            ),
            Refusal::Link(e) => e.fmt(f),
        }
    }
}

impl From<LinkError> for Refusal {
    fn from(e: LinkError) -> Refusal {
        Refusal::Link(e)
    }
}

/// The next step after reading the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The list already says what the action wants.
    Done,
    /// Send Set Reserve List (RCmd 1) with these MACs.
    Set(Vec<Mac>),
    Refuse(Refusal),
}

/// Checks that hold before any frame is sent.
pub(crate) fn precheck(want: Want, scene: &Scene<'_>) -> Result<(), Refusal> {
    if want == Want::Off {
        if scene.victim.macs.contains(&scene.me) {
            return Err(Refusal::FenceSelf {
                node: scene.victim.name.clone(),
                me: scene.me,
            });
        }
        if scene.hosts.owner_of(scene.me).is_none() {
            return Err(Refusal::SelfNotInHosts { me: scene.me });
        }
    }
    Ok(())
}

pub(crate) fn decide(want: Want, list: &[Mac], scene: &Scene<'_>) -> Decision {
    if let Err(r) = precheck(want, scene) {
        return Decision::Refuse(r);
    }
    let victim = &scene.victim.macs;
    match want {
        // Empty: everyone may write, so the new list is every other host's MACs (this
        // one's among them, checked above).
        Want::Off if list.is_empty() => Decision::Set(
            scene
                .hosts
                .all_macs()
                .filter(|m| !victim.contains(m))
                .collect(),
        ),
        Want::Off if !list.contains(&scene.me) => {
            Decision::Refuse(Refusal::Excluded { me: scene.me })
        }
        Want::Off if power(list, scene.victim) == Power::Off => Decision::Done,
        // Only the victim's MACs go; stations the hosts map does not name stay.
        Want::Off => Decision::Set(
            list.iter()
                .copied()
                .filter(|m| !victim.contains(m))
                .collect(),
        ),
        // Never turn an empty list into one that shuts the others out.
        Want::On if list.is_empty() || victim.iter().all(|m| list.contains(m)) => Decision::Done,
        Want::On if !list.contains(&scene.me) => {
            Decision::Refuse(Refusal::Excluded { me: scene.me })
        }
        Want::On => {
            let mut new = list.to_vec();
            new.extend(victim.iter().filter(|m| !list.contains(m)));
            if new.len() > 255 {
                return Decision::Refuse(Refusal::ListFull { need: new.len() });
            }
            Decision::Set(new)
        }
    }
}

/// What the list read back after a Set says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Done,
    /// The list changed another way meanwhile (or the Set was refused): decide again.
    Again,
    /// This node is no longer on the list: a survivor fencing it got there first.
    Lost,
}

pub(crate) fn verify(want: Want, list: &[Mac], scene: &Scene<'_>) -> Verdict {
    match want {
        Want::Off if !list.is_empty() && !list.contains(&scene.me) => Verdict::Lost,
        Want::Off if !list.is_empty() && power(list, scene.victim) == Power::Off => Verdict::Done,
        Want::On if list.is_empty() || scene.victim.macs.iter().all(|m| list.contains(m)) => {
            Verdict::Done
        }
        _ => Verdict::Again,
    }
}

/// The target's answer to Set Reserve List.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetReply {
    Accepted,
    /// AoE error 6: the list is non-empty and the sender is not on it.
    Refused,
}

/// Reserve/Release as the loop needs it.
pub(crate) trait Reservations {
    /// Read Reserve List (RCmd 0).
    fn read(&mut self) -> Result<Vec<Mac>, LinkError>;
    /// Set Reserve List (RCmd 1): never Force.
    fn set(&mut self, list: &[Mac]) -> Result<SetReply, LinkError>;
}

/// How an on/off ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The list already had the node in the wanted state.
    Already,
    /// This agent's Set made it so (or a concurrent one with the same aim).
    Changed,
}

/// Read, check, Set (RCmd 1), read again; up to `rounds` times when the list changes
/// under the agent. `log` gets one line per step (shown with `verbose`).
pub(crate) fn act(
    link: &mut impl Reservations,
    want: Want,
    scene: &Scene<'_>,
    rounds: u32,
    log: &mut dyn FnMut(String),
) -> Result<Outcome, Refusal> {
    precheck(want, scene)?;
    let mut list = link.read()?;
    log(format!("reserve list: {}", show(&list)));
    for round in 1..=rounds {
        let new = match decide(want, &list, scene) {
            Decision::Done if round == 1 => return Ok(Outcome::Already),
            Decision::Done => return Ok(Outcome::Changed),
            Decision::Refuse(r) => return Err(r),
            Decision::Set(new) => new,
        };
        let reply = link.set(&new)?;
        log(format!("set {}: {reply:?}", show(&new)));
        list = link.read()?;
        log(format!("read back: {}", show(&list)));
        match verify(want, &list, scene) {
            Verdict::Done => return Ok(Outcome::Changed),
            Verdict::Lost => return Err(Refusal::Excluded { me: scene.me }),
            Verdict::Again => {}
        }
    }
    Err(Refusal::Unsettled { rounds })
}

pub(crate) fn show(list: &[Mac]) -> String {
    if list.is_empty() {
        return "empty (every station may write)".to_string();
    }
    let macs: Vec<String> = list.iter().map(Mac::to_string).collect();
    macs.join(",")
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    /// n1 = 01, n2 = 02 and 0c (two NICs), n3 = 03.
    fn hosts() -> Hosts {
        "n1=02:00:00:00:00:01;n2=02:00:00:00:00:02,02:00:00:00:00:0c;n3=02:00:00:00:00:03"
            .parse()
            .unwrap()
    }

    fn scene<'a>(hosts: &'a Hosts, victim: &str, me: u8) -> Scene<'a> {
        Scene {
            hosts,
            victim: hosts.get(victim).unwrap(),
            me: mac(me),
        }
    }

    fn macs(ns: &[u8]) -> Vec<Mac> {
        ns.iter().copied().map(mac).collect()
    }

    #[test]
    fn status_is_off_only_when_no_mac_of_the_node_is_on_a_list() {
        let h = hosts();
        let n2 = h.get("n2").unwrap();
        assert_eq!(power(&[], n2), Power::On);
        assert_eq!(power(&macs(&[1, 3]), n2), Power::Off);
        assert_eq!(power(&macs(&[1, 12]), n2), Power::On);
        assert_eq!(power(&macs(&[1, 2, 12, 3]), n2), Power::On);
    }

    #[test]
    fn off_decisions() {
        let h = hosts();
        let s = scene(&h, "n2", 1);
        // Empty list: every other host's MACs, never the victim's.
        assert_eq!(decide(Want::Off, &[], &s), Decision::Set(macs(&[1, 3])));
        // Victim on the list: only its MACs go, a station unknown to hosts stays.
        assert_eq!(
            decide(Want::Off, &macs(&[1, 2, 12, 3, 0x99]), &s),
            Decision::Set(macs(&[1, 3, 0x99]))
        );
        assert_eq!(decide(Want::Off, &macs(&[1, 3]), &s), Decision::Done);
        // This node is off the list: it lost, it cannot Set.
        assert_eq!(
            decide(Want::Off, &macs(&[2, 3]), &s),
            Decision::Refuse(Refusal::Excluded { me: mac(1) })
        );
        // Refuses to fence itself, from either of its NICs.
        for me in [2, 12] {
            let s = scene(&h, "n2", me);
            assert!(matches!(
                decide(Want::Off, &[], &s),
                Decision::Refuse(Refusal::FenceSelf { .. })
            ));
        }
        // A sender the hosts map does not know would lock itself out of an empty list.
        let s = scene(&h, "n2", 0x77);
        assert_eq!(
            decide(Want::Off, &[], &s),
            Decision::Refuse(Refusal::SelfNotInHosts { me: mac(0x77) })
        );
    }

    #[test]
    fn on_decisions() {
        let h = hosts();
        let s = scene(&h, "n2", 1);
        // An empty list stays empty: `on` never shuts the others out.
        assert_eq!(decide(Want::On, &[], &s), Decision::Done);
        assert_eq!(
            decide(Want::On, &macs(&[1, 3]), &s),
            Decision::Set(macs(&[1, 3, 2, 12]))
        );
        assert_eq!(
            decide(Want::On, &macs(&[1, 12, 3]), &s),
            Decision::Set(macs(&[1, 12, 3, 2]))
        );
        assert_eq!(decide(Want::On, &macs(&[1, 2, 12]), &s), Decision::Done);
        // Unfencing from a node that is not on the list cannot work (RCmd 1 refuses it),
        // and that includes a fenced node unfencing itself.
        assert_eq!(
            decide(Want::On, &macs(&[3]), &s),
            Decision::Refuse(Refusal::Excluded { me: mac(1) })
        );
        let s = scene(&h, "n2", 2);
        assert_eq!(
            decide(Want::On, &macs(&[1, 3]), &s),
            Decision::Refuse(Refusal::Excluded { me: mac(2) })
        );
        // ... but a node already on the list (or an empty list) unfences itself fine.
        assert_eq!(
            decide(Want::On, &macs(&[1, 2, 3]), &s),
            Decision::Set(macs(&[1, 2, 3, 12]))
        );
        assert_eq!(decide(Want::On, &[], &s), Decision::Done);
        let big: Vec<Mac> = (0..254u8)
            .map(|i| Mac([6, 0, 0, 0, 1, i]))
            .chain([mac(1)])
            .collect();
        let s = scene(&h, "n2", 1);
        assert_eq!(
            decide(Want::On, &big, &s),
            Decision::Refuse(Refusal::ListFull { need: 257 })
        );
    }

    #[test]
    fn verdicts() {
        let h = hosts();
        let s = scene(&h, "n2", 1);
        assert_eq!(verify(Want::Off, &macs(&[1, 3]), &s), Verdict::Done);
        assert_eq!(verify(Want::Off, &macs(&[1, 3, 12]), &s), Verdict::Again);
        assert_eq!(verify(Want::Off, &[], &s), Verdict::Again);
        assert_eq!(verify(Want::Off, &macs(&[2, 3]), &s), Verdict::Lost);
        assert_eq!(verify(Want::On, &[], &s), Verdict::Done);
        assert_eq!(verify(Want::On, &macs(&[2, 12]), &s), Verdict::Done);
        assert_eq!(verify(Want::On, &macs(&[1, 3, 2]), &s), Verdict::Again);
    }

    /// An in-memory target with the Set rule every conformant one applies: allowed when
    /// the list is empty or the sender is on it.
    type Shared = Rc<RefCell<Vec<Mac>>>;
    /// Another node's whole action, run in the middle of this one.
    type Meanwhile = Box<dyn FnOnce(&Shared)>;

    struct Model {
        list: Shared,
        sender: Mac,
        sets: usize,
        /// Runs after this station's first read: another node acting meanwhile.
        meanwhile: Option<Meanwhile>,
    }

    impl Model {
        fn new(list: &Shared, sender: u8) -> Model {
            Model {
                list: Rc::clone(list),
                sender: mac(sender),
                sets: 0,
                meanwhile: None,
            }
        }
    }

    impl Reservations for Model {
        fn read(&mut self) -> Result<Vec<Mac>, LinkError> {
            let list = self.list.borrow().clone();
            if let Some(f) = self.meanwhile.take() {
                f(&self.list);
            }
            Ok(list)
        }

        fn set(&mut self, new: &[Mac]) -> Result<SetReply, LinkError> {
            self.sets += 1;
            let mut list = self.list.borrow_mut();
            if list.is_empty() || list.contains(&self.sender) {
                *list = new.to_vec();
                Ok(SetReply::Accepted)
            } else {
                Ok(SetReply::Refused)
            }
        }
    }

    fn run(list: &Shared, me: u8, want: Want, victim: &str) -> Result<Outcome, Refusal> {
        let h = hosts();
        run_with(&mut Model::new(list, me), &h, want, victim)
    }

    fn run_with(m: &mut Model, h: &Hosts, want: Want, victim: &str) -> Result<Outcome, Refusal> {
        let s = Scene {
            hosts: h,
            victim: h.get(victim).unwrap(),
            me: m.sender,
        };
        act(m, want, &s, 3, &mut |_| {})
    }

    #[test]
    fn off_then_on_round_trip_and_repeats_are_no_ops() {
        let list: Shared = Rc::default();
        assert_eq!(run(&list, 1, Want::Off, "n2"), Ok(Outcome::Changed));
        assert_eq!(*list.borrow(), macs(&[1, 3]));
        assert_eq!(run(&list, 3, Want::Off, "n2"), Ok(Outcome::Already));
        assert_eq!(run(&list, 1, Want::On, "n2"), Ok(Outcome::Changed));
        assert_eq!(*list.borrow(), macs(&[1, 3, 2, 12]));
        assert_eq!(run(&list, 1, Want::On, "n2"), Ok(Outcome::Already));
        // `on` of an empty list sends nothing and leaves it empty.
        let empty: Shared = Rc::default();
        let h = hosts();
        let mut m = Model::new(&empty, 1);
        assert_eq!(run_with(&mut m, &h, Want::On, "n2"), Ok(Outcome::Already));
        assert_eq!(m.sets, 0);
        assert!(empty.borrow().is_empty());
    }

    /// n1 fences n2 while node `other` fences `its_victim` completely between n1's read and
    /// n1's Set, from an empty list and from a full one; `then` sees n1's outcome.
    fn race(other: u8, its_victim: &'static str, then: impl Fn(&Shared, Result<Outcome, Refusal>)) {
        for start in [vec![], macs(&[1, 2, 12, 3])] {
            let list: Shared = Rc::new(RefCell::new(start));
            let h = hosts();
            let mut a = Model::new(&list, 1);
            a.meanwhile = Some(Box::new(move |l: &Shared| {
                assert_eq!(run(l, other, Want::Off, its_victim), Ok(Outcome::Changed));
            }));
            then(&list, run_with(&mut a, &h, Want::Off, "n2"));
        }
    }

    #[test]
    fn two_survivors_fencing_one_victim_converge() {
        race(3, "n2", |list, outcome| {
            assert_eq!(outcome, Ok(Outcome::Changed));
            assert_eq!(*list.borrow(), macs(&[1, 3]));
        });
    }

    #[test]
    fn two_nodes_fencing_each_other_the_first_set_wins() {
        // n2's Set lands first.
        race(2, "n1", |list, outcome| {
            assert_eq!(outcome, Err(Refusal::Excluded { me: mac(1) }));
            // n1 is out, n2 (both NICs) and n3 are in; n1's refused Set changed nothing.
            assert_eq!(*list.borrow(), macs(&[2, 12, 3]));
            // The loser cannot fence afterwards either, nor unfence itself.
            assert_eq!(
                run(list, 1, Want::Off, "n2"),
                Err(Refusal::Excluded { me: mac(1) })
            );
            assert_eq!(
                run(list, 1, Want::On, "n1"),
                Err(Refusal::Excluded { me: mac(1) })
            );
            assert_eq!(run(list, 3, Want::On, "n1"), Ok(Outcome::Changed));
        });
    }

    #[test]
    fn a_list_that_keeps_changing_gives_up_after_the_rounds() {
        struct Flapping(u8);
        impl Reservations for Flapping {
            fn read(&mut self) -> Result<Vec<Mac>, LinkError> {
                // Someone keeps putting n2 back.
                Ok(macs(&[1, 2, 3]))
            }
            fn set(&mut self, _: &[Mac]) -> Result<SetReply, LinkError> {
                self.0 += 1;
                Ok(SetReply::Accepted)
            }
        }
        let h = hosts();
        let s = scene(&h, "n2", 1);
        let mut f = Flapping(0);
        let mut lines = Vec::new();
        let r = act(&mut f, Want::Off, &s, 3, &mut |l| lines.push(l));
        assert_eq!(r, Err(Refusal::Unsettled { rounds: 3 }));
        assert_eq!(f.0, 3);
        assert_eq!(lines.len(), 7, "{lines:?}");
    }

    #[test]
    fn self_fencing_is_refused_before_any_frame() {
        struct Silent;
        impl Reservations for Silent {
            fn read(&mut self) -> Result<Vec<Mac>, LinkError> {
                panic!("no frame may be sent")
            }
            fn set(&mut self, _: &[Mac]) -> Result<SetReply, LinkError> {
                panic!("no frame may be sent")
            }
        }
        let h = hosts();
        let s = scene(&h, "n2", 12);
        let r = act(&mut Silent, Want::Off, &s, 3, &mut |_| {});
        let e = r.unwrap_err().to_string();
        assert_eq!(
            e,
            "refusing to fence myself: the local interface's MAC 02:00:00:00:00:0c belongs to `n2`"
        );
    }
}
