//! Frames in flight and their tags.
//!
//! A tag is `0x8000_0000 | generation << 16 | slot`: bit 31 is set so a
//! Linux `aoe` driver on the same host ignores our replies (it drops tags
//! with bit 31 set), the low 16 bits index the slab (O(1) matching, no hash),
//! and the 15-bit generation changes on every send. A retransmission thus
//! gets a new tag, and a reply to any earlier send — late, duplicated or
//! superseded — no longer matches. Free slots are reused first-in first-out,
//! so a tag comes back only after 32768 sends of each of the slab's slots.

use std::collections::VecDeque;
use std::time::Instant;

/// Most frames in flight over the whole pool (16-bit slot index).
pub const MAX_FRAMES: usize = 1 << 16;
const TAG_BIT: u32 = 0x8000_0000;
const GEN_MASK: u16 = 0x7FFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// Part of a block I/O.
    Data,
    Identify,
    /// One path's share of a Reserve/Release request (`io` indexes the request).
    Reserve,
}

#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub blade: u32,
    pub kind: FrameKind,
    /// I/O slab index (Data only).
    pub io: u32,
    pub lba: u64,
    pub sectors: u8,
    /// Offset of this frame's data in the I/O buffer.
    pub buf_off: usize,
    /// Path index in the blade of the current send.
    pub path: Option<u16>,
    /// The only path this frame may take (a Reserve/Release request goes to
    /// each path's target, not to whichever path is next).
    pub pin: Option<u16>,
    /// Set while a send is on the wire and its tag can match.
    pub on_wire: bool,
    /// Tag of the current (or, after a timeout, the last) send.
    pub tag: u32,
    pub sent_at: Instant,
    /// Tag and send time of the send before the current one, kept after a
    /// timeout so a late reply to it still yields an RTT sample (as Linux
    /// takes one from the jiffies in a superseded tag) and can show the
    /// timeout was spurious.
    pub superseded: Option<(u32, Instant)>,
    /// Tags of earlier sends that timed out and were not answered since: for a
    /// write, copies that may still land on the blade.
    pub copies: Vec<u32>,
    pub first_sent: Option<Instant>,
    pub deadline: Instant,
    /// Sends so far minus one.
    pub retries: u32,
}

impl Frame {
    /// A frame not sent yet: no path, no tag, due at once.
    pub(crate) fn unsent(
        blade: u32,
        kind: FrameKind,
        io: u32,
        (lba, sectors): (u64, u8),
        buf_off: usize,
        now: Instant,
    ) -> Frame {
        Frame {
            blade,
            kind,
            io,
            lba,
            sectors,
            buf_off,
            path: None,
            pin: None,
            on_wire: false,
            tag: 0,
            sent_at: now,
            superseded: None,
            copies: Vec::new(),
            first_sent: None,
            deadline: now,
            retries: 0,
        }
    }
}

struct Slot {
    generation: u16,
    frame: Option<Frame>,
}

pub(crate) struct FrameSlab {
    slots: Vec<Slot>,
    free: VecDeque<u16>,
    live: usize,
}

impl FrameSlab {
    pub(crate) fn new() -> FrameSlab {
        FrameSlab {
            slots: Vec::new(),
            free: VecDeque::new(),
            live: 0,
        }
    }

    pub(crate) fn insert(&mut self, frame: Frame) -> Option<u16> {
        let idx = match self.free.pop_front() {
            Some(i) => i,
            None if self.slots.len() < MAX_FRAMES => {
                self.slots.push(Slot {
                    generation: 0,
                    frame: None,
                });
                (self.slots.len() - 1) as u16
            }
            None => return None,
        };
        self.slots[usize::from(idx)].frame = Some(frame);
        self.live += 1;
        Some(idx)
    }

    pub(crate) fn remove(&mut self, idx: u16) -> Option<Frame> {
        let slot = self.slots.get_mut(usize::from(idx))?;
        let f = slot.frame.take()?;
        // Retire the tag of the last send so a late reply cannot match.
        slot.generation = (slot.generation + 1) & GEN_MASK;
        self.free.push_back(idx);
        self.live -= 1;
        Some(f)
    }

    pub(crate) fn get(&self, idx: u16) -> Option<&Frame> {
        self.slots.get(usize::from(idx))?.frame.as_ref()
    }

    pub(crate) fn get_mut(&mut self, idx: u16) -> Option<&mut Frame> {
        self.slots.get_mut(usize::from(idx))?.frame.as_mut()
    }

    /// New tag for the next send of `idx` (the previous one stops matching).
    pub(crate) fn next_tag(&mut self, idx: u16) -> u32 {
        let slot = &mut self.slots[usize::from(idx)];
        slot.generation = (slot.generation + 1) & GEN_MASK;
        Self::tag_of(idx, slot.generation)
    }

    /// Makes the current tag of `idx` stop matching (timed out, awaiting resend).
    pub(crate) fn retire_tag(&mut self, idx: u16) {
        let slot = &mut self.slots[usize::from(idx)];
        slot.generation = (slot.generation + 1) & GEN_MASK;
    }

    pub(crate) fn tag_of(idx: u16, generation: u16) -> u32 {
        TAG_BIT | u32::from(generation) << 16 | u32::from(idx)
    }

    /// The slot whose current send carries `tag`, if that send is on the wire.
    pub(crate) fn lookup(&self, tag: u32) -> Option<u16> {
        if tag & TAG_BIT == 0 {
            return None;
        }
        let idx = tag as u16;
        let generation = ((tag >> 16) as u16) & GEN_MASK;
        let slot = self.slots.get(usize::from(idx))?;
        match &slot.frame {
            Some(f) if f.on_wire && slot.generation == generation => Some(idx),
            _ => None,
        }
    }

    /// The slot whose live frame's previous send carried `tag`.
    pub(crate) fn lookup_superseded(&self, tag: u32) -> Option<u16> {
        if tag & TAG_BIT == 0 {
            return None;
        }
        let idx = tag as u16;
        let f = self.slots.get(usize::from(idx))?.frame.as_ref()?;
        match f.superseded {
            Some((t, _)) if t == tag => Some(idx),
            _ => None,
        }
    }

    /// Slot indices of live frames (allocated vector-free iteration).
    pub(crate) fn live_indices(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.frame.is_some())
            .map(|(i, _)| i as u16)
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }
}
