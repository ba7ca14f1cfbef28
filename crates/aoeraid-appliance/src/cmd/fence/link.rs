//! Reserve/Release over raw Ethernet from the local NIC: find the target with a Query
//! Config broadcast, then Read and Set Reserve List to its MAC, one request at a time,
//! retransmitted with a growing per-frame timeout until the action's deadline.
//!
//! Every failure here is one [`LinkError`] whose text names the target, the interface
//! and what was (not) heard, since the caller prints it as the agent's only line.

use std::fmt;
use std::time::{Duration, Instant};

use aoe_uring::{PacketSocket, SocketOptions};
use aoe_wire::{
    parse, AoeAddr, CCmd, Command, ErrorCode, Header, Mac, MacList, Message, QueryConfig, RCmd,
    Reserve, BROADCAST_MAC,
};

use super::plan::{Reservations, SetReply};

/// First wait for a reply; doubled after each silent try, up to [`MAX_FRAME_WAIT`].
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(100);
const MAX_FRAME_WAIT: Duration = Duration::from_secs(1);

/// Why talking to the target failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// The socket could not be opened (no such interface, no permission).
    Interface { iface: String, error: String },
    /// Sending or receiving failed.
    Io { iface: String, error: String },
    /// Nothing answered Query Config for the target.
    Unreachable {
        target: AoeAddr,
        iface: String,
        waited: Duration,
    },
    /// The target answers Query Config but not Reserve/Release.
    NoReserve {
        target: AoeAddr,
        mac: Mac,
        why: String,
    },
    /// The target answered Reserve/Release with an AoE error other than 1 and 6.
    Aoe {
        target: AoeAddr,
        mac: Mac,
        code: ErrorCode,
    },
    /// The target answered Reserve/Release before, then fell silent until the deadline.
    Silent {
        target: AoeAddr,
        mac: Mac,
        waited: Duration,
    },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Interface { iface, error } => {
                write!(f, "cannot open an AoE socket on interface {iface}: {error}")
            }
            LinkError::Io { iface, error } => write!(f, "AoE I/O on {iface} failed: {error}"),
            LinkError::Unreachable {
                target,
                iface,
                waited,
            } => write!(
                f,
                "target {target} unreachable: no answer to Query Config on {iface} within {} \
                 (target down, on another segment or interface, or this MAC not allowed)",
                secs(*waited)
            ),
            LinkError::NoReserve { target, mac, why } => write!(
                f,
                "target {target} ({mac}) does not support Reserve/Release: {why}"
            ),
            LinkError::Aoe { target, mac, code } => write!(
                f,
                "target {target} ({mac}) answered Reserve/Release with AoE error {} ({code})",
                u8::from(*code)
            ),
            LinkError::Silent {
                target,
                mac,
                waited,
            } => write!(
                f,
                "target {target} ({mac}) stopped answering Reserve/Release: no reply within {}",
                secs(*waited)
            ),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// One agent's conversation with one target.
pub(crate) struct AoeLink {
    sock: PacketSocket,
    iface: String,
    me: Mac,
    target: AoeAddr,
    /// Learnt from the Query Config reply.
    target_mac: Mac,
    start: Instant,
    deadline: Instant,
    next_tag: u32,
    /// Whether the target answered any Reserve/Release yet (tells "never supported"
    /// from "went silent").
    reserve_seen: bool,
    buf: Vec<u8>,
}

/// What a request waits for.
#[derive(Clone, Copy)]
enum Expect {
    Config,
    Reserve,
}

/// A matching reply, decoded.
enum Reply {
    Config(Mac),
    List(Vec<Mac>),
    Error(ErrorCode),
}

impl AoeLink {
    /// Opens the socket on `iface`; nothing is sent yet.
    pub(crate) fn open(
        iface: &str,
        target: AoeAddr,
        budget: Duration,
    ) -> Result<AoeLink, LinkError> {
        let opts = SocketOptions {
            recv_buffer: 1 << 20,
            send_buffer: 256 << 10,
            ..SocketOptions::default()
        };
        let sock = PacketSocket::open_with(iface, &opts).map_err(|e| LinkError::Interface {
            iface: iface.to_string(),
            error: e.to_string(),
        })?;
        let me = Mac(sock.mac());
        let mut seed = [0u8; 4];
        // A random first tag keeps two agents on one node (or a restarted one) from
        // taking each other's replies; a failure only loses that protection.
        let _ = aoe_uring::sys::fill_random(&mut seed);
        let buf = vec![0u8; sock.interface().max_frame_len().max(aoe_uring::JUMBO_FRAME)];
        let start = Instant::now();
        Ok(AoeLink {
            sock,
            iface: iface.to_string(),
            me,
            target,
            target_mac: BROADCAST_MAC,
            start,
            deadline: start + budget,
            next_tag: u32::from_be_bytes(seed),
            reserve_seen: false,
            buf,
        })
    }

    /// The MAC the target sees this agent's frames from.
    pub(crate) fn me(&self) -> Mac {
        self.me
    }

    /// Finds the target's MAC (Query Config to the broadcast address).
    pub(crate) fn find_target(&mut self) -> Result<Mac, LinkError> {
        let frame = self.frame(Expect::Config, RCmd::Read, &[])?;
        match self.exchange(&frame, Expect::Config)? {
            Some(Reply::Config(mac)) => {
                self.target_mac = mac;
                Ok(mac)
            }
            _ => Err(LinkError::Unreachable {
                target: self.target,
                iface: self.iface.clone(),
                waited: self.start.elapsed(),
            }),
        }
    }

    fn frame(&mut self, expect: Expect, rcmd: RCmd, macs: &[Mac]) -> Result<Vec<u8>, LinkError> {
        self.next_tag = self.next_tag.wrapping_add(1);
        let (command, dst) = match expect {
            Expect::Config => (Command::QueryConfig, BROADCAST_MAC),
            Expect::Reserve => (Command::ReserveRelease, self.target_mac),
        };
        let header = Header::request(
            dst,
            self.me,
            self.target.shelf(),
            self.target.slot(),
            command,
            self.next_tag,
        );
        let mut out = vec![0u8; 64 + 6 * macs.len()];
        let len = match expect {
            Expect::Config => QueryConfig::request(CCmd::Read, &[]).emit(&header, &mut out),
            Expect::Reserve => Reserve {
                rcmd,
                macs: MacList::from_slice(macs),
            }
            .emit(&header, &mut out),
        }
        .map_err(|e| self.io_error(e.to_string()))?;
        out.truncate(len);
        Ok(out)
    }

    fn io_error(&self, error: String) -> LinkError {
        LinkError::Io {
            iface: self.iface.clone(),
            error,
        }
    }

    /// Sends `frame` and waits for its reply, resending after each silent wait, until
    /// the deadline (`None`).
    fn exchange(&mut self, frame: &[u8], expect: Expect) -> Result<Option<Reply>, LinkError> {
        let mut wait = FIRST_FRAME_WAIT;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Ok(None);
            }
            self.sock
                .send_blocking(frame)
                .map_err(|e| self.io_error(e.to_string()))?;
            let resend = (now + wait).min(self.deadline);
            while let Some(left) = resend.checked_duration_since(Instant::now()) {
                let got = self
                    .sock
                    .recv_timeout(&mut self.buf, Some(left))
                    .map_err(|e| self.io_error(e.to_string()))?;
                let Some(n) = got else { break };
                if let Some(reply) = self.match_reply(n, expect) {
                    return Ok(Some(reply));
                }
            }
            wait = (wait * 2).min(MAX_FRAME_WAIT);
        }
    }

    /// The reply to the request in flight, or `None` for any other frame.
    fn match_reply(&self, n: usize, expect: Expect) -> Option<Reply> {
        let p = parse(&self.buf[..n]).ok()?;
        let h = p.header;
        let ours = h.response
            && h.tag == self.next_tag
            && h.dst == self.me
            && h.shelf == self.target.shelf()
            && h.slot == self.target.slot();
        if !ours {
            return None;
        }
        match (expect, p.message) {
            (Expect::Config, _) if h.command == Command::QueryConfig && h.error.is_none() => {
                Some(Reply::Config(h.src))
            }
            (Expect::Reserve, _) if h.src != self.target_mac => None,
            (Expect::Reserve, _) if h.command != Command::ReserveRelease => None,
            (Expect::Reserve, _) if h.error.is_some() => h.error.map(Reply::Error),
            (Expect::Reserve, Message::Reserve(r)) => Some(Reply::List(r.macs.iter().collect())),
            _ => None,
        }
    }

    /// One Reserve/Release request: the list the target reports, or its AoE error.
    fn reserve(
        &mut self,
        rcmd: RCmd,
        macs: &[Mac],
    ) -> Result<Result<Vec<Mac>, ErrorCode>, LinkError> {
        let frame = self.frame(Expect::Reserve, rcmd, macs)?;
        let (target, mac) = (self.target, self.target_mac);
        let answer = match self.exchange(&frame, Expect::Reserve)? {
            Some(Reply::Error(ErrorCode::UnrecognizedCommand)) => {
                return Err(LinkError::NoReserve {
                    target,
                    mac,
                    why: "it answered AoE error 1 (unrecognized command code)".to_string(),
                })
            }
            Some(Reply::Error(code)) => Err(code),
            Some(Reply::List(list)) => Ok(list),
            Some(Reply::Config(_)) | None if self.reserve_seen => {
                return Err(LinkError::Silent {
                    target,
                    mac,
                    waited: self.start.elapsed(),
                })
            }
            Some(Reply::Config(_)) | None => {
                return Err(LinkError::NoReserve {
                    target,
                    mac,
                    why: format!(
                        "it answers Query Config but not Reserve/Release (nothing within {})",
                        secs(self.start.elapsed())
                    ),
                })
            }
        };
        self.reserve_seen = true;
        Ok(answer)
    }

    fn aoe_error(&self, code: ErrorCode) -> LinkError {
        LinkError::Aoe {
            target: self.target,
            mac: self.target_mac,
            code,
        }
    }
}

impl Reservations for AoeLink {
    fn read(&mut self) -> Result<Vec<Mac>, LinkError> {
        self.reserve(RCmd::Read, &[])?
            .map_err(|code| self.aoe_error(code))
    }

    fn set(&mut self, list: &[Mac]) -> Result<SetReply, LinkError> {
        match self.reserve(RCmd::Set, list)? {
            Ok(_) => Ok(SetReply::Accepted),
            Err(ErrorCode::TargetReserved) => Ok(SetReply::Refused),
            Err(code) => Err(self.aoe_error(code)),
        }
    }
}
