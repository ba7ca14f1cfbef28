//! `file:` members (local files and block devices) served through io_uring on the
//! data path's [`Ring`]: one member I/O becomes one or more fixed-buffer reads or
//! writes (split at the ring's I/O buffer size), a flush becomes an fdatasync.
//!
//! Files are opened with O_DIRECT when the filesystem allows it (buffered
//! otherwise, e.g. older tmpfs) and always with O_DSYNC: the engine acknowledges
//! a volume write once its member writes completed, and the Linux aoe client never
//! sends FLUSH, so a completed member write must already be durable — past the
//! device's write cache and with the metadata needed to read it back (allocation
//! of sparse files). The kernel turns an O_DSYNC write into write + FUA (or a
//! cache flush) itself, so concurrent writes are not serialised behind one
//! fdatasync each. An explicit flush still becomes an fdatasync.

use aoe_uring::{Backing, BackingOptions, Completion, DirectIo, FileId, FileOp, IoBuffer, Ring};
use raid_engine::{MemberError, MemberIo, MemberOp, SECTOR};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Ring `user` values of file-member operations carry this in their top byte, so
/// the data path can tell them from the frontend's and backend's operations.
pub(crate) const USER_TAG: u64 = 0xF1 << 56;
const USER_MASK: u64 = (1 << 56) - 1;

/// Is this ring completion one of ours?
pub(crate) fn owns_user(user: u64) -> bool {
    user & !USER_MASK == USER_TAG
}

/// Opens a member file for reading and writing with O_DSYNC (every completed
/// write durable), O_DIRECT when the filesystem supports it.
pub(crate) fn open_member(path: &Path) -> io::Result<Backing> {
    Backing::open(
        path,
        &BackingOptions {
            read_only: false,
            direct: DirectIo::IfAccepted,
            dsync: true,
        },
    )
}

struct Member {
    path: PathBuf,
    // Kept open for as long as the ring has it registered.
    _file: File,
    id: FileId,
    sectors: u64,
}

/// One member I/O in progress.
struct Op<T> {
    token: T,
    op: MemberOp,
    buf: Vec<u8>,
    parts_left: usize,
    error: Option<MemberError>,
}

/// One ring operation of a member I/O.
struct Part {
    op: u64,
    at: usize,
    len: usize,
}

/// A piece waiting for a free I/O buffer.
struct Queued {
    member: usize,
    part: u64,
}

/// The `file:` members of one data path. `T` is the caller's token for a member
/// I/O, returned with its result.
pub(crate) struct FileMembers<T> {
    members: Vec<Member>,
    ops: HashMap<u64, Op<T>>,
    parts: HashMap<u64, (usize, Part, u64)>,
    backlog: VecDeque<Queued>,
    done: VecDeque<(T, Result<Vec<u8>, MemberError>)>,
    next: u64,
}

impl<T> Default for FileMembers<T> {
    fn default() -> Self {
        FileMembers {
            members: Vec::new(),
            ops: HashMap::new(),
            parts: HashMap::new(),
            backlog: VecDeque::new(),
            done: VecDeque::new(),
            next: 1,
        }
    }
}

impl<T> FileMembers<T> {
    /// Opens `path` and registers it with `ring`; returns its index here.
    pub(crate) fn open(&mut self, ring: &Ring, path: &Path) -> io::Result<usize> {
        let backing = open_member(path)?;
        let sectors = backing.size / SECTOR as u64;
        let id = ring.register_file(&backing.file)?;
        self.members.push(Member {
            path: path.to_path_buf(),
            _file: backing.file,
            id,
            sectors,
        });
        Ok(self.members.len() - 1)
    }

    pub(crate) fn sectors(&self, member: usize) -> u64 {
        self.members[member].sectors
    }

    /// Index of the member opened from `path`, if any.
    pub(crate) fn find(&self, path: &Path) -> Option<usize> {
        self.members.iter().position(|m| m.path == path)
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next;
        self.next = (self.next + 1) & USER_MASK;
        if self.next == 0 {
            self.next = 1;
        }
        id
    }

    /// Starts member I/O `io` on file member `member` (the engine's member index is
    /// not used: the caller has already mapped it).
    pub(crate) fn submit(&mut self, ring: &Ring, member: usize, io: MemberIo, token: T) {
        let op_id = self.alloc();
        let bytes = io.sectors as usize * SECTOR;
        let end = io.offset.saturating_add(io.sectors as u64);
        if io.op != MemberOp::Flush && end > self.members[member].sectors {
            self.done.push_back((token, Err(MemberError::Io)));
            return;
        }
        if io.op == MemberOp::Flush {
            self.ops.insert(
                op_id,
                Op {
                    token,
                    op: io.op,
                    buf: Vec::new(),
                    parts_left: 1,
                    error: None,
                },
            );
            let part = self.alloc();
            self.parts.insert(
                part,
                (
                    member,
                    Part {
                        op: op_id,
                        at: 0,
                        len: 0,
                    },
                    0,
                ),
            );
            if ring
                .fsync(self.members[member].id, true, USER_TAG | part)
                .is_err()
            {
                self.part_done(part, Err(MemberError::Gone), None, ring);
            }
            return;
        }
        let buf = if io.op == MemberOp::Write {
            io.data
        } else {
            vec![0u8; bytes]
        };
        let step = ring.io_buf_size().max(SECTOR);
        let n_parts = bytes.div_ceil(step).max(1);
        self.ops.insert(
            op_id,
            Op {
                token,
                op: io.op,
                buf,
                parts_left: n_parts,
                error: None,
            },
        );
        let mut at = 0;
        while at < bytes {
            let len = step.min(bytes - at);
            let part = self.alloc();
            let offset = io.offset * SECTOR as u64 + at as u64;
            self.parts
                .insert(part, (member, Part { op: op_id, at, len }, offset));
            self.backlog.push_back(Queued { member, part });
            at += len;
        }
        self.pump(ring);
    }

    /// Issues queued pieces while I/O buffers are free.
    pub(crate) fn pump(&mut self, ring: &Ring) {
        while let Some(q) = self.backlog.front() {
            let Some(mut iobuf) = ring.io_buf() else {
                return;
            };
            let (member, part) = (q.member, q.part);
            self.backlog.pop_front();
            let Some((_, p, offset)) = self.parts.get(&part) else {
                ring.release_io_buf(iobuf);
                continue;
            };
            let (op_id, at, len, offset) = (p.op, p.at, p.len, *offset);
            let Some(op) = self.ops.get(&op_id) else {
                ring.release_io_buf(iobuf);
                continue;
            };
            let file = self.members[member].id;
            let dir = if op.op == MemberOp::Write {
                ring.io_bytes_mut(&mut iobuf)[..len].copy_from_slice(&op.buf[at..at + len]);
                FileOp::Write
            } else {
                FileOp::Read
            };
            if ring
                .file_io(dir, file, iobuf, 0..len, offset, USER_TAG | part)
                .is_err()
            {
                self.part_done(part, Err(MemberError::Io), None, ring);
            }
        }
    }

    /// Feeds a ring completion; returns false if it was not ours.
    pub(crate) fn on_completion(&mut self, ring: &Ring, c: &mut Option<Completion>) -> bool {
        let Some(Completion::IoDone { user, .. }) = c else {
            return false;
        };
        if !owns_user(*user) {
            return false;
        }
        let Some(Completion::IoDone { user, result, buf }) = c.take() else {
            return false;
        };
        let part = user & USER_MASK;
        let expect = self.parts.get(&part).map_or(0, |(_, p, _)| p.len);
        let r = match result {
            Ok(n) if n == expect => Ok(()),
            Ok(_) => Err(MemberError::Io),
            Err(e) if e.is_device_gone() => Err(MemberError::Gone),
            Err(_) => Err(MemberError::Io),
        };
        self.part_done(part, r, buf, ring);
        self.pump(ring);
        true
    }

    fn part_done(
        &mut self,
        part: u64,
        r: Result<(), MemberError>,
        buf: Option<IoBuffer>,
        ring: &Ring,
    ) {
        let Some((_, p, _)) = self.parts.remove(&part) else {
            if let Some(b) = buf {
                ring.release(b);
            }
            return;
        };
        let Some(op) = self.ops.get_mut(&p.op) else {
            if let Some(b) = buf {
                ring.release(b);
            }
            return;
        };
        if let Some(b) = buf {
            if r.is_ok() && op.op == MemberOp::Read {
                if let IoBuffer::Io(iob) = &b {
                    op.buf[p.at..p.at + p.len].copy_from_slice(&ring.io_bytes(iob)[..p.len]);
                }
            }
            ring.release(b);
        }
        if let Err(e) = r {
            op.error.get_or_insert(e);
        }
        op.parts_left -= 1;
        if op.parts_left == 0 {
            let op = self.ops.remove(&p.op).expect("op present");
            let result = match op.error {
                Some(e) => Err(e),
                None if op.op == MemberOp::Read => Ok(op.buf),
                None => Ok(Vec::new()),
            };
            self.done.push_back((op.token, result));
        }
    }

    /// A finished member I/O, if any.
    pub(crate) fn poll_done(&mut self) -> Option<(T, Result<Vec<u8>, MemberError>)> {
        self.done.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The open flags of `file` as the kernel reports them (octal in fdinfo).
    fn open_flags(file: &File) -> i32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))
            .expect("fdinfo readable");
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("fdinfo has a flags line");
        i32::from_str_radix(line.trim(), 8).expect("octal flags")
    }

    #[test]
    fn member_files_are_opened_for_durable_writes() {
        let dir = std::env::temp_dir().join(format!("aoeraid-dsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("member.img");
        File::create(&path).unwrap().set_len(1 << 20).unwrap();
        let backing = open_member(&path).unwrap();
        let flags = open_flags(&backing.file);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(flags & libc::O_DSYNC, libc::O_DSYNC, "flags {flags:o}");
        assert_eq!(
            flags & libc::O_DIRECT != 0,
            backing.direct,
            "flags {flags:o}"
        );
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDWR, "flags {flags:o}");
    }
}
