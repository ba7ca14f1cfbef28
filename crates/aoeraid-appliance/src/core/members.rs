//! Where each member lives: the member-to-device map, the sizes the core needs
//! to give a device to an engine, and the tokens that name one member I/O.

use crate::config::MemberAddr;
use aoe_initiator::{BladeId, BladeState, IoError, IoRequest, Op, Pool};
use aoe_wire::ErrorCode;
use raid_engine::{MemberError, MemberIo, MemberOp, SECTOR};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What a member I/O produced: read data (empty for writes/flushes) or the error.
pub(crate) type MemberResult = Result<Vec<u8>, MemberError>;

/// A member resolved to something the appliance can do I/O on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// A local `file:` member, by the index the host gave it.
    File(usize),
    /// An AoE blade of the back-end initiator pool.
    Blade(BladeId),
}

/// What the core asks of its host when a command or reload names a device it
/// has not seen: opening a file is I/O, and member UUIDs need randomness.
pub(crate) trait Host {
    /// Opens the `file:` member at `path`: its index (named by
    /// [`Location::File`] and [`super::FileIo::file`]) and size in sectors.
    fn open_file(&mut self, path: &Path) -> Result<(usize, u64), String>;
    /// A fresh member UUID.
    fn random_uuid(&mut self) -> Result<[u8; 16], String>;
}

/// Every member device the core knows, by address.
#[derive(Default)]
pub(crate) struct MemberMap {
    by_addr: HashMap<MemberAddr, Location>,
    /// Sizes of the `file:` members, by index.
    file_sectors: Vec<u64>,
}

impl MemberMap {
    /// Takes over the devices opened before the core started.
    pub(crate) fn new(by_addr: HashMap<MemberAddr, Location>, file_sectors: Vec<u64>) -> Self {
        MemberMap {
            by_addr,
            file_sectors,
        }
    }

    /// Resolves `addr`, opening a file through `host` or finding an answering blade.
    pub(crate) fn open(
        &mut self,
        addr: &MemberAddr,
        pool: Option<&Pool>,
        host: &mut dyn Host,
    ) -> Result<Location, String> {
        if let Some(l) = self.by_addr.get(addr) {
            return Ok(*l);
        }
        let loc = match addr {
            MemberAddr::File(path) => {
                let (i, sectors) = host
                    .open_file(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                if self.file_sectors.len() <= i {
                    self.file_sectors.resize(i + 1, 0);
                }
                self.file_sectors[i] = sectors;
                Location::File(i)
            }
            MemberAddr::Blade { shelf, slot } => {
                let pool =
                    pool.ok_or("no back-end interface is configured (backend.interfaces)")?;
                match pool.find(*shelf, *slot) {
                    Some(id) if pool.blade_state(id) == Some(BladeState::Up) => Location::Blade(id),
                    Some(_) => return Err("blade found but not answering IDENTIFY".into()),
                    None => return Err("blade not found on the back-end interfaces".into()),
                }
            }
        };
        self.by_addr.insert(addr.clone(), loc);
        Ok(loc)
    }

    /// Records that `addr` is at `loc` (a blade found after the start).
    pub(crate) fn learn(&mut self, addr: &MemberAddr, loc: Location) {
        self.by_addr.insert(addr.clone(), loc);
    }

    pub(crate) fn sectors(&self, loc: Location, pool: Option<&Pool>) -> u64 {
        match loc {
            Location::File(i) => self.file_sectors.get(i).copied().unwrap_or(0),
            Location::Blade(id) => pool.and_then(|p| p.capacity(id)).unwrap_or(0),
        }
    }
}

/// A read of a member's superblock, before it is known what the member is.
pub(crate) fn superblock_read() -> MemberIo {
    MemberIo {
        id: 0,
        member: 0,
        op: MemberOp::Read,
        offset: raid_engine::superblock::SB_OFFSET,
        sectors: raid_engine::superblock::SB_SECTORS,
        data: Vec::new(),
    }
}

/// Starts member I/O `io` on `blade`; its result comes out of
/// [`poll_blade_done`] with `token`. An error is the I/O's result at once.
pub(crate) fn submit_to_blade(
    pool: &mut Pool,
    now: Instant,
    blade: BladeId,
    io: MemberIo,
    token: u64,
) -> Result<(), MemberError> {
    let (op, buf) = match io.op {
        MemberOp::Read => (Op::Read, vec![0u8; io.sectors as usize * SECTOR]),
        MemberOp::Write => (Op::Write, io.data),
        MemberOp::Flush => (Op::Flush, Vec::new()),
    };
    let req = IoRequest {
        blade,
        op,
        lba: io.offset,
        sectors: io.sectors,
        buf,
        user: token,
    };
    pool.submit(now, req).map_err(|rej| {
        use aoe_initiator::SubmitError as S;
        match rej.error {
            S::UnknownBlade | S::NotReady | S::Down => MemberError::Gone,
            _ => MemberError::Io,
        }
    })
}

/// A finished blade I/O.
pub(crate) struct BladeDone {
    pub(crate) token: u64,
    pub(crate) blade: BladeId,
    pub(crate) result: MemberResult,
    /// Refused because another station holds the blade's reserve list (AoE
    /// error 6): not a member failure but a lost claim on the blade.
    pub(crate) reserved: bool,
}

/// The next finished blade I/O.
pub(crate) fn poll_blade_done(pool: &mut Pool) -> Option<BladeDone> {
    let c = pool.poll_completion()?;
    let reserved = c.result == Err(IoError::Aoe(ErrorCode::TargetReserved));
    let result = match c.result {
        Ok(()) if c.op == Op::Read => {
            let mut buf = c.buf;
            buf.truncate(c.sectors as usize * SECTOR);
            Ok(buf)
        }
        Ok(()) => Ok(Vec::new()),
        Err(IoError::BladeDown) => Err(MemberError::Gone),
        Err(_) => Err(MemberError::Io),
    };
    Some(BladeDone {
        token: c.user,
        blade: c.blade,
        result,
        reserved,
    })
}

/// Member I/O tokens of state record writes carry this volume number, which no
/// volume has (tokens hold 8 bits of it; the core asserts fewer volumes).
pub(crate) const RECORD_VOLUME: usize = 0xFF;

/// Member I/O tokens of superblock reads (probes, re-assemblies) carry this one,
/// apart from the records': a record write taken for a probe would never finish
/// its round, and the front end waits for that round.
pub(crate) const PROBE_VOLUME: usize = RECORD_VOLUME - 1;

/// Member I/O tokens: volume in bits 56.., array in 48..56, engine id below.
pub(crate) fn token(vol: usize, arr: usize, id: u64) -> u64 {
    ((vol as u64) << 56) | ((arr as u64) << 48) | (id & ((1 << 48) - 1))
}

pub(crate) fn untoken(t: u64) -> (usize, usize, u64) {
    (
        (t >> 56) as usize,
        ((t >> 48) & 0xff) as usize,
        t & ((1 << 48) - 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = token(3, 17, (1 << 48) + 42);
        assert_eq!(untoken(t), (3, 17, 42));
    }
}
