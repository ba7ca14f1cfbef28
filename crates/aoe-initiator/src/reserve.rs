//! Reserve/Release (AoE command 3) as the pool's callers see it: read, set or
//! force-set a blade's reserve list, and the bookkeeping of those requests.
//!
//! A blade with several paths may be several targets: vblade binds one
//! interface, so a dual-port blade is two vblade processes, each with its own
//! list. A request therefore goes to **every** path the blade has when it is
//! queued, and completes once each has answered: refused if any path refused
//! it, otherwise with the union of the lists the paths report.

use std::collections::VecDeque;
use std::fmt;

use aoe_wire::{ErrorCode, Mac, RCmd};

use crate::BladeId;

/// What a Reserve/Release request does to the blade's reserve list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReserveCmd {
    /// RCmd 0: report the list.
    Read,
    /// RCmd 1: replace the list, if it is empty or holds the sender's MAC.
    Set,
    /// RCmd 2: replace the list unconditionally (takes the blade from its holder).
    ForceSet,
}

impl ReserveCmd {
    pub(crate) fn rcmd(self) -> RCmd {
        match self {
            ReserveCmd::Read => RCmd::Read,
            ReserveCmd::Set => RCmd::Set,
            ReserveCmd::ForceSet => RCmd::ForceSet,
        }
    }
}

/// One Reserve/Release request for [`crate::Pool::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub blade: BladeId,
    pub cmd: ReserveCmd,
    /// The new list for `Set`/`ForceSet` (empty releases); ignored by `Read`.
    pub macs: Vec<Mac>,
    /// Caller's token, returned in the completion.
    pub user: u64,
}

/// Why a Reserve/Release request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    /// A `Set` was refused (AoE error 6): the list is held by other MACs, which
    /// the blade reported in its reply.
    Held(Vec<Mac>),
    /// The blade stopped answering (dead time passed) or was down already.
    BladeDown,
    /// Any other AoE error reply.
    Aoe(ErrorCode),
    /// The request could not be encoded (more than 255 MACs).
    Encode(String),
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReserveError::Held(macs) => {
                f.write_str("reserved by ")?;
                write_macs(f, macs)
            }
            ReserveError::BladeDown => {
                f.write_str("blade is down (no answer within the dead time)")
            }
            ReserveError::Aoe(code) => write!(f, "AoE error reply: {code}"),
            ReserveError::Encode(e) => write!(f, "cannot encode request: {e}"),
        }
    }
}

impl std::error::Error for ReserveError {}

/// `a, b, c` (or `nobody` for an empty list).
pub fn write_macs(f: &mut impl fmt::Write, macs: &[Mac]) -> fmt::Result {
    if macs.is_empty() {
        return f.write_str("nobody");
    }
    for (i, m) in macs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{m}")?;
    }
    Ok(())
}

/// A finished Reserve/Release request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveCompletion {
    pub user: u64,
    pub blade: BladeId,
    pub cmd: ReserveCmd,
    /// The blade's list after the command (the union over its paths), or why not.
    pub result: Result<Vec<Mac>, ReserveError>,
}

/// A request in flight: one frame per path.
pub(crate) struct ReserveOp {
    pub(crate) blade: u32,
    pub(crate) cmd: ReserveCmd,
    pub(crate) macs: Vec<Mac>,
    pub(crate) user: u64,
    frames_out: u32,
    list: Vec<Mac>,
    error: Option<ReserveError>,
}

/// The requests in flight, by index (a frame names its request by index).
#[derive(Default)]
pub(crate) struct ReserveOps {
    ops: Vec<Option<ReserveOp>>,
    done: VecDeque<ReserveCompletion>,
}

impl ReserveOps {
    /// Records a request that sends `paths` frames; returns its index.
    pub(crate) fn start(&mut self, req: ReserveRequest, paths: u32) -> u32 {
        let op = ReserveOp {
            blade: req.blade.0,
            cmd: req.cmd,
            macs: req.macs,
            user: req.user,
            frames_out: paths,
            list: Vec::new(),
            error: None,
        };
        match self.ops.iter().position(Option::is_none) {
            Some(i) => {
                self.ops[i] = Some(op);
                i as u32
            }
            None => {
                self.ops.push(Some(op));
                (self.ops.len() - 1) as u32
            }
        }
    }

    pub(crate) fn get(&self, idx: u32) -> Option<&ReserveOp> {
        self.ops.get(idx as usize)?.as_ref()
    }

    /// One path of request `idx` answered (or failed); completes the request
    /// after its last path.
    pub(crate) fn path_done(&mut self, idx: u32, result: Result<Vec<Mac>, ReserveError>) {
        let Some(op) = self.ops.get_mut(idx as usize).and_then(Option::as_mut) else {
            return;
        };
        op.frames_out = op.frames_out.saturating_sub(1);
        match result {
            Ok(list) => {
                for m in list {
                    if !op.list.contains(&m) {
                        op.list.push(m);
                    }
                }
            }
            // A refusal says most (who holds the blade): it wins over other errors.
            Err(e @ ReserveError::Held(_)) => op.error = Some(e),
            Err(e) => {
                op.error.get_or_insert(e);
            }
        }
        if op.frames_out == 0 {
            self.finish(idx);
        }
    }

    /// Every request to blade `blade` fails with [`ReserveError::BladeDown`]
    /// (its frames are gone); returns how many.
    pub(crate) fn fail_blade(&mut self, blade: u32) -> usize {
        let idx: Vec<u32> = (0..self.ops.len() as u32)
            .filter(|&i| self.get(i).is_some_and(|op| op.blade == blade))
            .collect();
        for &i in &idx {
            if let Some(op) = self.ops[i as usize].as_mut() {
                op.error = Some(ReserveError::BladeDown);
            }
            self.finish(i);
        }
        idx.len()
    }

    fn finish(&mut self, idx: u32) {
        let Some(op) = self.ops.get_mut(idx as usize).and_then(Option::take) else {
            return;
        };
        self.done.push_back(ReserveCompletion {
            user: op.user,
            blade: BladeId(op.blade),
            cmd: op.cmd,
            result: op.error.map_or(Ok(op.list), Err),
        });
    }

    pub(crate) fn poll_done(&mut self) -> Option<ReserveCompletion> {
        self.done.pop_front()
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.ops.iter().filter(|o| o.is_some()).count()
    }
}
