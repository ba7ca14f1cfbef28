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

/// The answer to a Reserve/Release request: the list the target reports, or its AoE
/// error.
type ReserveAnswer = Result<Vec<Mac>, ErrorCode>;

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
        let frame = self.frame(Command::QueryConfig, BROADCAST_MAC, |header, out| {
            QueryConfig::request(CCmd::Read, &[]).emit(header, out)
        })?;
        let answer = self.exchange(&frame, |h, _| {
            (h.command == Command::QueryConfig && h.error.is_none()).then_some(h.src)
        })?;
        let mac = answer.ok_or_else(|| LinkError::Unreachable {
            target: self.target,
            iface: self.iface.clone(),
            waited: self.start.elapsed(),
        })?;
        self.target_mac = mac;
        Ok(mac)
    }

    /// A request to the target with a fresh tag; `arg` writes the message after the header.
    fn frame(
        &mut self,
        command: Command,
        dst: Mac,
        arg: impl FnOnce(&Header, &mut [u8]) -> Result<usize, aoe_wire::WireError>,
    ) -> Result<Vec<u8>, LinkError> {
        self.next_tag = self.next_tag.wrapping_add(1);
        let header = Header::request(
            dst,
            self.me,
            self.target.shelf(),
            self.target.slot(),
            command,
            self.next_tag,
        );
        let mut out = vec![0u8; 64 + 6 * 255];
        let len = arg(&header, &mut out).map_err(|e| self.io_error(e.to_string()))?;
        out.truncate(len);
        Ok(out)
    }

    fn io_error(&self, error: String) -> LinkError {
        LinkError::Io {
            iface: self.iface.clone(),
            error,
        }
    }

    /// Sends `frame` and waits for the reply `accept` takes (among responses to this
    /// request's tag, addressed to this station and from the target's shelf.slot),
    /// resending after each silent wait, until the deadline (`None`).
    fn exchange<T>(
        &mut self,
        frame: &[u8],
        accept: impl Fn(&Header, &Message<'_>) -> Option<T>,
    ) -> Result<Option<T>, LinkError> {
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
                let Ok(p) = parse(&self.buf[..n]) else {
                    continue;
                };
                let h = p.header;
                let ours = h.response
                    && h.tag == self.next_tag
                    && h.dst == self.me
                    && h.shelf == self.target.shelf()
                    && h.slot == self.target.slot();
                if let Some(answer) = ours.then(|| accept(&h, &p.message)).flatten() {
                    return Ok(Some(answer));
                }
            }
            wait = (wait * 2).min(MAX_FRAME_WAIT);
        }
    }

    /// One Reserve/Release request to the target found by `find_target`.
    fn reserve(&mut self, rcmd: RCmd, macs: &[Mac]) -> Result<ReserveAnswer, LinkError> {
        let (target, mac) = (self.target, self.target_mac);
        let frame = self.frame(Command::ReserveRelease, mac, |header, out| {
            Reserve {
                rcmd,
                macs: MacList::from_slice(macs),
            }
            .emit(header, out)
        })?;
        let answer = self.exchange(&frame, |h, m| {
            if h.src != mac || h.command != Command::ReserveRelease {
                return None;
            }
            match (h.error, m) {
                (Some(code), _) => Some(Err(code)),
                (None, Message::Reserve(r)) => Some(Ok(r.macs.iter().collect())),
                (None, _) => None,
            }
        })?;
        match answer {
            Some(Err(ErrorCode::UnrecognizedCommand)) => Err(LinkError::NoReserve {
                target,
                mac,
                why: "it answered AoE error 1 (unrecognized command code)".to_string(),
            }),
            Some(answer) => {
                self.reserve_seen = true;
                Ok(answer)
            }
            None if self.reserve_seen => Err(LinkError::Silent {
                target,
                mac,
                waited: self.start.elapsed(),
            }),
            None => Err(LinkError::NoReserve {
                target,
                mac,
                why: format!(
                    "it answers Query Config but not Reserve/Release (nothing within {})",
                    secs(self.start.elapsed())
                ),
            }),
        }
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
