//! Serialised, versioned metadata writes. Every metadata block (superblock, a bitmap
//! sector, a checksum sector) has at most one write in flight; changes made meanwhile
//! bump its version and are written by the next round. A waiter needs a given version
//! to be durable, which is what "the bit is on disk before the data write" means.

use std::collections::{BTreeSet, HashMap};

use crate::types::MemberIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MetaKey {
    Superblock,
    Bitmap(u32),
    Csum(MemberIndex, u64),
    /// A partial-parity log slot's header, zeroed when its member (re)joins.
    PplSlot(MemberIndex, u32),
}

#[derive(Clone, Debug, Default)]
struct Block {
    version: u64,
    durable: u64,
    /// Version being written and member acks still missing.
    inflight: Option<(u64, usize)>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct MetaWriter {
    blocks: HashMap<MetaKey, Block>,
    /// Keys with unwritten changes and no write in flight.
    ready: BTreeSet<MetaKey>,
}

impl MetaWriter {
    /// Record a change; returns the version that must become durable.
    pub(crate) fn touch(&mut self, key: MetaKey) -> u64 {
        let b = self.blocks.entry(key).or_default();
        b.version += 1;
        if b.inflight.is_none() {
            self.ready.insert(key);
        }
        b.version
    }

    /// Latest version of `key` (what a waiter needs to see durable).
    pub(crate) fn version(&self, key: MetaKey) -> u64 {
        self.blocks.get(&key).map_or(0, |b| b.version)
    }

    pub(crate) fn is_durable(&self, key: MetaKey, version: u64) -> bool {
        self.blocks.get(&key).is_none_or(|b| b.durable >= version)
    }

    /// Keys with changes not yet in flight.
    pub(crate) fn ready(&self) -> Vec<MetaKey> {
        self.ready.iter().copied().collect()
    }

    /// A write round of `key` to `targets` members starts.
    pub(crate) fn start(&mut self, key: MetaKey, targets: usize) {
        self.ready.remove(&key);
        let b = self.blocks.entry(key).or_default();
        debug_assert!(
            b.inflight.is_none(),
            "{key:?}: a second round while one is in flight"
        );
        debug_assert!(
            b.version > b.durable,
            "{key:?}: a round with nothing new to write"
        );
        if targets == 0 {
            b.durable = b.version;
        } else {
            b.inflight = Some((b.version, targets));
        }
    }

    /// One member finished (successfully or not: a failed member is faulty from now on
    /// and no longer needs the block).
    pub(crate) fn ack(&mut self, key: MetaKey) {
        debug_assert!(
            self.blocks.get(&key).is_some_and(|b| b.inflight.is_some()),
            "{key:?}: ack without a round in flight"
        );
        if let Some(b) = self.blocks.get_mut(&key) {
            if let Some((v, left)) = b.inflight {
                if left <= 1 {
                    b.durable = b.durable.max(v);
                    b.inflight = None;
                    if b.version > b.durable {
                        self.ready.insert(key);
                    }
                } else {
                    b.inflight = Some((v, left - 1));
                }
            }
        }
    }

    /// Rounds in flight: (key, member acks still missing).
    pub(crate) fn rounds(&self) -> impl Iterator<Item = (MetaKey, usize)> + '_ {
        self.blocks
            .iter()
            .filter_map(|(k, b)| b.inflight.map(|(_, left)| (*k, left)))
    }

    /// The writer's own bookkeeping: durable never ahead of the latest version, a
    /// round in flight writes a version not yet durable and waits for at least one
    /// ack, and a key is ready exactly when it has an unwritten change and no round.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (k, b) in &self.blocks {
            if b.durable > b.version {
                return Err(format!(
                    "{k:?}: durable v{} ahead of v{}",
                    b.durable, b.version
                ));
            }
            if let Some((v, left)) = b.inflight {
                if left == 0 || v > b.version || v <= b.durable {
                    return Err(format!(
                        "{k:?}: round of v{v} ({left} acks due) with v{} durable v{}",
                        b.version, b.durable
                    ));
                }
            }
            let ready = b.inflight.is_none() && b.version > b.durable;
            if ready != self.ready.contains(k) {
                return Err(format!(
                    "{k:?}: ready set says {} for v{} durable v{} round {:?}",
                    self.ready.contains(k),
                    b.version,
                    b.durable,
                    b.inflight
                ));
            }
        }
        if let Some(k) = self.ready.iter().find(|k| !self.blocks.contains_key(k)) {
            return Err(format!("{k:?}: ready but never touched"));
        }
        Ok(())
    }

    pub(crate) fn idle(&self) -> bool {
        self.ready.is_empty() && self.blocks.values().all(|b| b.inflight.is_none())
    }
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_serialise() {
        let mut w = MetaWriter::default();
        let v1 = w.touch(MetaKey::Bitmap(0));
        assert_eq!(w.ready(), vec![MetaKey::Bitmap(0)]);
        w.start(MetaKey::Bitmap(0), 2);
        let v2 = w.touch(MetaKey::Bitmap(0));
        assert!(w.ready().is_empty(), "one write in flight at a time");
        w.ack(MetaKey::Bitmap(0));
        assert!(!w.is_durable(MetaKey::Bitmap(0), v1));
        w.ack(MetaKey::Bitmap(0));
        assert!(w.is_durable(MetaKey::Bitmap(0), v1));
        assert!(!w.is_durable(MetaKey::Bitmap(0), v2));
        assert_eq!(w.ready(), vec![MetaKey::Bitmap(0)]);
    }
}
