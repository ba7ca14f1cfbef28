//! Linear concatenation of arrays: how a volume grows when a new shelf is bought. Array
//! k's volume follows array k-1's. Requests crossing a boundary are split and completed
//! once every part is in. The order of arrays is configuration (the appliance's volume
//! definition); each array keeps its own superblocks.

use crate::fastmap::FastMap as HashMap;

use crate::engine::Engine;
use crate::types::*;

#[derive(Debug)]
struct Parent {
    op: VolumeOp,
    buf: Vec<u8>,
    remaining: usize,
    error: Option<VolumeError>,
}

pub struct Concat {
    arrays: Vec<Engine>,
    starts: Vec<u64>,
    next_sub: u64,
    /// sub-request id → (array, parent id, byte offset in parent buffer)
    subs: HashMap<u64, (usize, RequestId, usize)>,
    parents: HashMap<RequestId, Parent>,
    done: std::collections::VecDeque<VolumeCompletion>,
}

impl Concat {
    pub fn new(arrays: Vec<Engine>) -> Concat {
        let mut c = Concat {
            arrays: Vec::new(),
            starts: Vec::new(),
            next_sub: 1,
            subs: HashMap::default(),
            parents: HashMap::default(),
            done: Default::default(),
        };
        for a in arrays {
            c.grow(a);
        }
        c
    }

    /// Append an array at the end of the volume. Existing data does not move.
    pub fn grow(&mut self, array: Engine) {
        self.starts.push(self.volume_sectors());
        self.arrays.push(array);
    }

    /// Every array's invariants (see `Engine::check_invariants`), and the split
    /// bookkeeping: each sub-request belongs to a parent still waiting for it.
    pub fn check_invariants(&self) -> Result<(), String> {
        for a in &self.arrays {
            a.check_invariants()?;
        }
        let mut subs = HashMap::<RequestId, usize>::default();
        for (sub, (a, parent, _)) in &self.subs {
            if *a >= self.arrays.len() || !self.parents.contains_key(parent) {
                return Err(format!(
                    "concat: sub-request {sub} of array {a} for unknown parent {parent}"
                ));
            }
            *subs.entry(*parent).or_default() += 1;
        }
        for (id, p) in &self.parents {
            let n = subs.get(id).copied().unwrap_or(0);
            if p.remaining != n {
                return Err(format!(
                    "concat: request {id} waits for {} parts, {n} in flight",
                    p.remaining
                ));
            }
        }
        Ok(())
    }

    pub fn volume_sectors(&self) -> u64 {
        self.arrays.iter().map(|a| a.volume_sectors()).sum()
    }
    pub fn arrays(&self) -> &[Engine] {
        &self.arrays
    }
    pub fn array_mut(&mut self, i: usize) -> &mut Engine {
        &mut self.arrays[i]
    }
    pub fn into_arrays(self) -> Vec<Engine> {
        self.arrays
    }

    pub fn submit(&mut self, req: VolumeRequest) {
        let end = req.offset.checked_add(req.sectors as u64);
        if req.op != VolumeOp::Flush
            && (req.sectors == 0
                || end.is_none_or(|e| e > self.volume_sectors())
                || (req.op == VolumeOp::Write && req.data.len() != req.sectors as usize * SECTOR))
        {
            self.done.push_back(VolumeCompletion {
                id: req.id,
                result: Err(VolumeError::InvalidRequest),
            });
            return;
        }
        let mut parts = Vec::new();
        if req.op == VolumeOp::Flush {
            for a in 0..self.arrays.len() {
                parts.push((a, 0u64, 0u32, 0usize));
            }
        } else {
            let (mut pos, end) = (req.offset, req.offset + req.sectors as u64);
            while pos < end {
                let a = self.starts.partition_point(|&s| s <= pos) - 1;
                let a_end = self.starts[a] + self.arrays[a].volume_sectors();
                let n = a_end.min(end) - pos;
                parts.push((
                    a,
                    pos - self.starts[a],
                    n as u32,
                    ((pos - req.offset) as usize) * SECTOR,
                ));
                pos += n;
            }
        }
        let buf = if req.op == VolumeOp::Read {
            vec![0; req.sectors as usize * SECTOR]
        } else {
            Vec::new()
        };
        self.parents.insert(
            req.id,
            Parent {
                op: req.op,
                buf,
                remaining: parts.len(),
                error: None,
            },
        );
        for (a, off, n, boff) in parts {
            let id = self.next_sub;
            self.next_sub += 1;
            self.subs.insert(id, (a, req.id, boff));
            let data = if req.op == VolumeOp::Write {
                req.data[boff..boff + n as usize * SECTOR].to_vec()
            } else {
                Vec::new()
            };
            self.arrays[a].submit(VolumeRequest {
                id,
                op: req.op,
                offset: off,
                sectors: n,
                data,
            });
        }
    }

    /// Puts `engine` in array `i`'s place: the appliance re-assembled a failed
    /// array from its members. Its size must be the old one's. Parts of requests
    /// the old engine still holds complete with `ArrayFailed`, as it would have
    /// answered them; the old engine is returned.
    pub fn replace_array(&mut self, i: usize, engine: Engine) -> Engine {
        assert_eq!(
            engine.volume_sectors(),
            self.arrays[i].volume_sectors(),
            "a replacement array has the size of the one it replaces"
        );
        self.collect();
        let open: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.0 == i)
            .map(|(id, _)| *id)
            .collect();
        for id in open {
            self.sub_done(VolumeCompletion {
                id,
                result: Err(VolumeError::ArrayFailed),
            });
        }
        std::mem::replace(&mut self.arrays[i], engine)
    }

    fn collect(&mut self) {
        for a in 0..self.arrays.len() {
            while let Some(c) = self.arrays[a].poll_completion() {
                self.sub_done(c);
            }
        }
    }

    /// A part of a request finished; the request completes with its last part.
    fn sub_done(&mut self, c: VolumeCompletion) {
        let Some((_, pid, boff)) = self.subs.remove(&c.id) else {
            return;
        };
        let p = self.parents.get_mut(&pid).expect("parent of sub-request");
        match c.result {
            Ok(d) => {
                if p.op == VolumeOp::Read {
                    p.buf[boff..boff + d.len()].copy_from_slice(&d);
                }
            }
            Err(e) => {
                p.error.get_or_insert(e);
            }
        }
        p.remaining -= 1;
        if p.remaining == 0 {
            let p = self.parents.remove(&pid).unwrap();
            let result = match p.error {
                Some(e) => Err(e),
                None => Ok(p.buf),
            };
            self.done.push_back(VolumeCompletion { id: pid, result });
        }
    }

    pub fn poll_completion(&mut self) -> Option<VolumeCompletion> {
        if self.done.is_empty() {
            self.collect();
        }
        self.done.pop_front()
    }

    /// Member I/O of array `.0`.
    pub fn poll_member_io(&mut self) -> Option<(usize, MemberIo)> {
        for (a, e) in self.arrays.iter_mut().enumerate() {
            if let Some(io) = e.poll_member_io() {
                return Some((a, io));
            }
        }
        None
    }

    pub fn complete_member_io(
        &mut self,
        array: usize,
        id: MemberIoId,
        result: Result<Vec<u8>, MemberError>,
    ) {
        self.arrays[array].complete_member_io(id, result);
    }

    pub fn poll_event(&mut self) -> Option<(usize, Event)> {
        for (a, e) in self.arrays.iter_mut().enumerate() {
            if let Some(ev) = e.poll_event() {
                return Some((a, ev));
            }
        }
        None
    }

    pub fn tick(&mut self, now_ns: u64) {
        for a in &mut self.arrays {
            a.tick(now_ns);
        }
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.arrays.iter().filter_map(|a| a.poll_timeout()).min()
    }
}
