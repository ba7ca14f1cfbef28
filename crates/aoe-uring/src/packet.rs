//! `PacketSocket`: an AF_PACKET raw socket that sees only AoE frames on one interface.
//!
//! The socket is created with protocol 0 (it receives nothing), then bound with
//! `sll_protocol = htons(0x88A2)` and `sll_ifindex`, so at no moment does it see frames of
//! other ethertypes or other interfaces. No promiscuous mode: AoE frames are addressed to
//! the interface MAC or broadcast, which the NIC passes anyway.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fanout::FanoutMode;
use crate::iface::InterfaceInfo;
use crate::ringmap::RingMap;
use crate::rxring::RxRing;
use crate::txring::TxRing;
use crate::ETH_P_AOE;

// Values from <linux/if_packet.h> and <asm-generic/socket.h>; not all are exported by `libc`.
const SOL_PACKET: libc::c_int = 263;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_FANOUT_DATA: libc::c_int = 22;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const SO_SNDBUFFORCE: libc::c_int = 32;
const SO_RCVBUFFORCE: libc::c_int = 33;

/// Default socket buffer request: a window of 256 jumbo frames with kernel overhead.
pub const DEFAULT_SOCKET_BUFFER: usize = 8 << 20;

/// Options for [`PacketSocket::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// Requested SO_RCVBUF in bytes (the kernel doubles it for bookkeeping).
    pub recv_buffer: usize,
    /// Requested SO_SNDBUF in bytes.
    pub send_buffer: usize,
    /// Open in non-blocking mode (`send`/`recv` return `WouldBlock`). The ring does not
    /// care; the blocking helpers need it off.
    pub nonblocking: bool,
    /// If non-zero, receive through a memory-mapped ring (`PACKET_RX_RING`, TPACKET_V2)
    /// of at least this many frame slots, each sized for the interface's MTU. The kernel
    /// then copies every frame into shared memory while delivering it (on the CPU that
    /// received it) and a [`crate::Ring`] reads frames from there: no receive request,
    /// copy or buffer free per frame on the ring's thread. Frames then bypass the socket
    /// queue, so [`PacketSocket::recv`] sees none, and a full ring drops frames (counted
    /// in [`PacketSocket::stats`]) where a socket queue would have held them. The back
    /// end's sockets use it: against a local vblade at MTU 9000 it took the initiator's
    /// CPU per read from about 15 to 11 µs. Default 0.
    pub rx_ring_frames: u32,
    /// If non-zero, send through a memory-mapped ring (`PACKET_TX_RING`, TPACKET_V2) of
    /// at least this many frame slots, each sized for the interface's MTU (and a VLAN
    /// tag). A [`crate::Ring`] then copies each frame queued with
    /// [`crate::Ring::submit_send`] into the next free slot and gives the send slot back
    /// at once, and sends every frame a turn queued with one `send` on the socket at its
    /// next enter: the kernel builds each skb around the slot's pages, so neither the
    /// per-frame send request nor the kernel's copy of the frame remains. A frame that
    /// finds the ring full, or is too long for a slot (the MTU was raised after the
    /// socket opened), is sent the ordinary way through a second socket opened for it,
    /// bound to the interface but receiving nothing, and counted
    /// ([`crate::RingStats::tx_ring_full`], [`crate::RingStats::tx_ring_oversize`]).
    /// Default 0.
    pub tx_ring_frames: u32,
    /// Set `PACKET_QDISC_BYPASS`: sends go straight to the device driver, skipping the
    /// interface's queueing discipline — cheaper per frame, but egress shaping or
    /// netem configured on **this** interface (tc) no longer applies to these frames.
    /// Default `false`.
    pub qdisc_bypass: bool,
    /// Set `PACKET_IGNORE_OUTGOING` (Linux ≥ 4.20): frames this host sends out of the
    /// interface are not looped back to the socket. The kernel loops outgoing frames
    /// only to sockets bound to every ethertype (ETH_P_ALL), so a `PacketSocket`, bound
    /// to 0x88A2 alone, does not see them either way (the ring tests check both); the
    /// option keeps it so should the binding ever widen. Best effort: skipped on older
    /// kernels. Default `false`.
    pub ignore_outgoing: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            recv_buffer: DEFAULT_SOCKET_BUFFER,
            send_buffer: DEFAULT_SOCKET_BUFFER,
            nonblocking: true,
            rx_ring_frames: 0,
            tx_ring_frames: 0,
            qdisc_bypass: false,
            ignore_outgoing: false,
        }
    }
}

/// Size of one socket buffer as the kernel reports it after setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSize {
    /// Bytes requested.
    pub requested: usize,
    /// Bytes the kernel reports (`getsockopt`, already doubled by the kernel).
    pub actual: usize,
    /// True if the `*BUFFORCE` option worked (CAP_NET_ADMIN); false if it fell back to the
    /// plain option, which the kernel caps at `net.core.[rw]mem_max`.
    pub forced: bool,
}

/// Kernel packet counters, cumulative since the socket was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames the kernel queued to this socket.
    pub received: u64,
    /// Frames the kernel dropped because the socket's receive buffer was full.
    pub dropped: u64,
}

/// An AF_PACKET SOCK_RAW socket bound to ethertype 0x88A2 on one interface.
///
/// Frames are whole Ethernet frames (destination MAC first), without FCS. Sends must
/// carry a complete Ethernet header; the kernel does not pad short frames, so callers pad
/// to 60 bytes themselves.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    iface: InterfaceInfo,
    recv_buffer: BufferSize,
    send_buffer: BufferSize,
    // PACKET_STATISTICS resets the kernel counters on every read, so totals live here.
    total_received: AtomicU64,
    total_dropped: AtomicU64,
    rings: Option<RingMap>,
    /// With a transmit ring, every `send` on `fd` sends the ring's marked slots and
    /// ignores its data: frames sent the ordinary way go through this socket, bound to
    /// the same interface with protocol 0 so that it receives nothing.
    plain_tx: Option<OwnedFd>,
    qdisc_bypass: bool,
}

impl PacketSocket {
    /// Open on interface `iface` with [`SocketOptions::default`] (non-blocking, 8 MiB buffers).
    pub fn open(iface: &str) -> io::Result<Self> {
        Self::open_with(iface, &SocketOptions::default())
    }

    /// Open on interface `iface` with explicit options.
    pub fn open_with(iface: &str, opts: &SocketOptions) -> io::Result<Self> {
        let info = InterfaceInfo::lookup(iface)?;
        let fd = new_socket(opts.nonblocking)?;
        let recv_buffer = set_buffer(&fd, SO_RCVBUFFORCE, libc::SO_RCVBUF, opts.recv_buffer)?;
        let send_buffer = set_buffer(&fd, SO_SNDBUFFORCE, libc::SO_SNDBUF, opts.send_buffer)?;
        // Before bind: from the first frame on, frames go to the ring, never the queue.
        let rings = RingMap::new(&fd, opts.rx_ring_frames, opts.tx_ring_frames, info.mtu)
            .map_err(|e| io::Error::new(e.kind(), format!("mapped rings on {iface:?}: {e}")))?;
        let bypass = |fd: &OwnedFd| -> io::Result<()> {
            if opts.qdisc_bypass {
                setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &1u32).map_err(|e| {
                    io::Error::new(e.kind(), format!("PACKET_QDISC_BYPASS on {iface:?}: {e}"))
                })?;
            }
            Ok(())
        };
        bypass(&fd)?;
        if opts.ignore_outgoing {
            // Best effort (documented on the option): older kernels lack it.
            let _ = setsockopt(&fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1u32);
        }
        bind(&fd, ETH_P_AOE, info.index)
            .map_err(|e| io::Error::new(e.kind(), format!("bind AF_PACKET to {iface:?}: {e}")))?;
        let plain_tx = match rings.as_ref().and_then(RingMap::tx) {
            None => None,
            Some(_) => {
                let plain = new_socket(opts.nonblocking)?;
                set_buffer(&plain, SO_SNDBUFFORCE, libc::SO_SNDBUF, opts.send_buffer)?;
                bypass(&plain)?;
                bind(&plain, 0, info.index).map_err(|e| {
                    io::Error::new(e.kind(), format!("bind a sending socket to {iface:?}: {e}"))
                })?;
                Some(plain)
            }
        };
        Ok(PacketSocket {
            fd,
            iface: info,
            recv_buffer,
            send_buffer,
            total_received: AtomicU64::new(0),
            total_dropped: AtomicU64::new(0),
            rings,
            plain_tx,
            qdisc_bypass: opts.qdisc_bypass,
        })
    }

    /// True if frames arrive through a mapped receive ring
    /// ([`SocketOptions::rx_ring_frames`]).
    pub fn has_rx_ring(&self) -> bool {
        self.rx_ring().is_some()
    }

    /// Slots of the mapped receive ring (0 without one).
    pub fn rx_ring_frames(&self) -> u32 {
        self.rx_ring().map_or(0, RxRing::frames)
    }

    /// Slots of the mapped transmit ring ([`SocketOptions::tx_ring_frames`]; 0 without
    /// one).
    pub fn tx_ring_frames(&self) -> u32 {
        self.tx_ring().map_or(0, TxRing::frames)
    }

    /// True if sends skip the interface's queueing discipline
    /// ([`SocketOptions::qdisc_bypass`]).
    pub fn qdisc_bypass(&self) -> bool {
        self.qdisc_bypass
    }

    pub(crate) fn rx_ring(&self) -> Option<&RxRing> {
        self.rings.as_ref().and_then(RingMap::rx)
    }

    pub(crate) fn tx_ring(&self) -> Option<&TxRing> {
        self.rings.as_ref().and_then(RingMap::tx)
    }

    /// The descriptor that sends frames the ordinary way: the socket itself, or with a
    /// transmit ring the plain socket opened beside it.
    pub(crate) fn plain_tx_fd(&self) -> RawFd {
        self.plain_tx.as_ref().unwrap_or(&self.fd).as_raw_fd()
    }

    /// The interface this socket is bound to.
    pub fn interface(&self) -> &InterfaceInfo {
        &self.iface
    }

    /// The interface's MAC (source address for frames sent on this socket).
    pub fn mac(&self) -> crate::MacAddr {
        self.iface.mac
    }

    /// The interface's MTU (payload bytes after the 14-byte Ethernet header).
    pub fn mtu(&self) -> u32 {
        self.iface.mtu
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.iface.index
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.iface.name
    }

    /// Receive buffer size, and whether SO_RCVBUFFORCE worked.
    pub fn recv_buffer(&self) -> BufferSize {
        self.recv_buffer
    }

    /// Send buffer size, and whether SO_SNDBUFFORCE worked.
    pub fn send_buffer(&self) -> BufferSize {
        self.send_buffer
    }

    /// Join PACKET_FANOUT group `group` (per network namespace) with `mode`. Every socket of
    /// a group must be bound to the same interface and ethertype and use the same mode.
    /// See [`FanoutMode`]: an AoE target wants `BySourceMac`; `Hash` does not spread AoE.
    pub fn join_fanout(&self, group: u16, mode: FanoutMode) -> io::Result<()> {
        let arg: u32 = u32::from(group) | (mode.raw() << 16);
        let context = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("{what} group {group} on {}: {e}", self.iface.name),
            )
        };
        setsockopt(&self.fd, SOL_PACKET, PACKET_FANOUT, &arg)
            .map_err(|e| context("PACKET_FANOUT", e))?;
        if let Some(prog) = mode.program() {
            // The group has one program; every member sets the same one, so a
            // frame that arrives between two joins still meets this program
            // (until the first member sets it, the kernel sends all to member 0).
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr().cast_mut(),
            };
            // The kernel copies `len` instructions from `filter` during the call and
            // never writes through the pointer; `prog` is 'static.
            setsockopt(&self.fd, SOL_PACKET, PACKET_FANOUT_DATA, &fprog)
                .map_err(|e| context("PACKET_FANOUT_DATA", e))?;
        }
        Ok(())
    }

    /// Cumulative kernel counters (reads PACKET_STATISTICS, which resets the kernel's copy,
    /// and adds it to the totals kept here).
    pub fn stats(&self) -> io::Result<PacketStats> {
        #[repr(C)]
        #[derive(Default)]
        struct TpacketStats {
            tp_packets: u32,
            tp_drops: u32,
        }
        let mut st = TpacketStats::default();
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `st` is a writable buffer of `len` bytes laid out as struct tpacket_stats.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut st as *mut TpacketStats).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel reports tp_packets including the drops.
        let queued = u64::from(st.tp_packets.saturating_sub(st.tp_drops));
        let received = self.total_received.fetch_add(queued, Ordering::Relaxed) + queued;
        let dropped = self
            .total_dropped
            .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed)
            + u64::from(st.tp_drops);
        Ok(PacketStats { received, dropped })
    }

    /// Send one complete Ethernet frame with send(2). In non-blocking mode a full send
    /// buffer gives `WouldBlock`.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.send_flags(frame, 0)
    }

    /// Receive one frame with recv(2) into `buf`; returns its length (truncated to
    /// `buf.len()` if larger). In non-blocking mode an empty queue gives `WouldBlock`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, 0)
    }

    /// Receive one frame, waiting up to `timeout` (forever if `None`) with poll(2); works
    /// in either blocking mode. `Ok(None)` means the time ran out.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> io::Result<Option<usize>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.recv_flags(buf, libc::MSG_DONTWAIT) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let wait_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
            };
            poll_fd(self.fd.as_raw_fd(), libc::POLLIN, wait_ms)?;
        }
    }

    /// Send one frame, waiting (poll) while the send buffer is full.
    pub fn send_blocking(&self, frame: &[u8]) -> io::Result<usize> {
        loop {
            let err = match self.send_flags(frame, libc::MSG_DONTWAIT) {
                Ok(n) => return Ok(n),
                Err(e) => e,
            };
            match err.kind() {
                io::ErrorKind::WouldBlock => poll_fd(self.fd.as_raw_fd(), libc::POLLOUT, -1)?,
                io::ErrorKind::Interrupted => {}
                // A full device queue shows up as ENOBUFS on packet sockets: back off briefly.
                _ if err.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
                _ => return Err(err),
            }
        }
    }

    fn send_flags(&self, frame: &[u8], flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: `frame` is a valid readable buffer of `frame.len()` bytes.
        byte_count(unsafe {
            libc::send(
                self.plain_tx_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                flags,
            )
        })
    }

    fn recv_flags(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        let n = byte_count(unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        })?;
        Ok(n.min(buf.len()))
    }
}

/// A new AF_PACKET SOCK_RAW socket with protocol 0: it receives nothing until bound to an
/// ethertype.
fn new_socket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_PACKET, ty, 0) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("AF_PACKET socket: {err} (needs CAP_NET_RAW)"),
        ));
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Binds `fd` to ethertype `proto` (0: none, the socket only sends) on interface
/// `ifindex`.
fn bind(fd: &OwnedFd, proto: u16, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid before we fill it.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto.to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `addr` is a valid sockaddr_ll and the length passed matches its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The byte count of a send or receive, or the error it set.
fn byte_count(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn poll_fd(fd: RawFd, events: libc::c_short, timeout_ms: i32) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd, matching the count 1.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// setsockopt(2) with `value` as the option's bytes (a `#[repr(C)]` struct laid out as
/// the kernel expects, or an integer).
pub(crate) fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live `T` with its exact size; the kernel only reads
    // that many bytes from it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn getsockopt_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a writable int and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(value).unwrap_or(0))
}

fn set_buffer(
    fd: &OwnedFd,
    force: libc::c_int,
    plain: libc::c_int,
    bytes: usize,
) -> io::Result<BufferSize> {
    let value = u32::try_from(bytes.min(i32::MAX as usize / 2)).unwrap_or(u32::MAX / 4);
    let forced = setsockopt(fd, libc::SOL_SOCKET, force, &value).is_ok();
    if !forced {
        setsockopt(fd, libc::SOL_SOCKET, plain, &value)?;
    }
    Ok(BufferSize {
        requested: bytes,
        actual: getsockopt_int(fd, libc::SOL_SOCKET, plain)?,
        forced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interface_is_a_clear_error() {
        let err = PacketSocket::open("nosuchif0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nosuchif0"));
    }
}
