//! How a PACKET_FANOUT group deals frames to its sockets, and the classic BPF
//! program that keeps every sender on one socket.
//!
//! The program is plain data here; [`crate::PacketSocket::join_fanout`] hands
//! it to the kernel.

/// How PACKET_FANOUT spreads frames over the sockets of one fanout group.
///
/// For an AoE target use [`FanoutMode::BySourceMac`]: a client's frames stay on
/// one socket, in the order they arrived. [`FanoutMode::LoadBalance`] and
/// [`FanoutMode::Cpu`] spread one client over several sockets, so two copies
/// of a retransmitted write can be served out of order. [`FanoutMode::Hash`]
/// hashes the flow (IP addresses and ports); an AoE frame (ethertype 0x88A2)
/// has none, so every AoE frame hashes alike and lands on one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// `PACKET_FANOUT_HASH`: by flow hash. Does not spread AoE traffic (see above).
    Hash,
    /// `PACKET_FANOUT_LB`: round robin over the group's sockets.
    LoadBalance,
    /// `PACKET_FANOUT_CPU`: by the CPU the frame arrived on (follows RSS/RPS steering).
    Cpu,
    /// `PACKET_FANOUT_CBPF` with [`SOURCE_MAC_HASH`]: by a hash of the frame's
    /// source MAC, so each sender's frames all go to one socket.
    BySourceMac,
}

impl FanoutMode {
    /// The kernel's fanout type (`PACKET_FANOUT_*` in <linux/if_packet.h>).
    pub(crate) fn raw(self) -> u32 {
        match self {
            FanoutMode::Hash => 0,
            FanoutMode::LoadBalance => 1,
            FanoutMode::Cpu => 2,
            FanoutMode::BySourceMac => 6,
        }
    }

    /// The program the group runs per frame, if the mode has one.
    pub(crate) fn program(self) -> Option<&'static [libc::sock_filter]> {
        (self == FanoutMode::BySourceMac).then_some(&SOURCE_MAC_HASH[..])
    }
}

// Classic BPF opcodes, from <linux/filter.h>.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_MISC: u16 = 0x07;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_ABS: u16 = 0x20;
const BPF_XOR: u16 = 0xa0;
const BPF_RSH: u16 = 0x70;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;
/// Loads at `SKF_LL_OFF + k` read the frame from its Ethernet header, wherever
/// the kernel's data pointer stands when the fanout runs the program.
const SKF_LL_OFF: i32 = -0x20_0000;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn link_layer(offset: i32) -> u32 {
    (SKF_LL_OFF + offset) as u32
}

/// The fanout program: folds the source MAC (frame bytes 6..12, loaded in
/// network byte order) into one word whose low byte is the XOR of all six
/// MAC bytes. The kernel takes the result modulo the number of sockets in the
/// group, so one MAC always picks the same socket, and MACs that differ in
/// one byte — the usual case among one vendor's NICs — spread.
///
/// `A = mac[2..6] ^ mac[0..2]; A ^= A >> 16; A ^= A >> 8; return A`.
pub(crate) const SOURCE_MAC_HASH: [libc::sock_filter; 11] = [
    stmt(BPF_LD | BPF_W | BPF_ABS, link_layer(8)),
    stmt(BPF_MISC | BPF_TAX, 0),
    stmt(BPF_LD | BPF_H | BPF_ABS, link_layer(6)),
    stmt(BPF_ALU | BPF_XOR | BPF_X, 0),
    stmt(BPF_MISC | BPF_TAX, 0),
    stmt(BPF_ALU | BPF_RSH | BPF_K, 16),
    stmt(BPF_ALU | BPF_XOR | BPF_X, 0),
    stmt(BPF_MISC | BPF_TAX, 0),
    stmt(BPF_ALU | BPF_RSH | BPF_K, 8),
    stmt(BPF_ALU | BPF_XOR | BPF_X, 0),
    stmt(BPF_RET | BPF_A, 0),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_modes_match_kernel_values() {
        assert_eq!(FanoutMode::Hash.raw(), 0);
        assert_eq!(FanoutMode::LoadBalance.raw(), 1);
        assert_eq!(FanoutMode::Cpu.raw(), 2);
        assert_eq!(FanoutMode::BySourceMac.raw(), 6);
        assert!(FanoutMode::LoadBalance.program().is_none());
        assert_eq!(
            FanoutMode::BySourceMac.program().map(<[_]>::len),
            Some(SOURCE_MAC_HASH.len())
        );
    }

    /// Runs a straight-line program of the opcodes [`SOURCE_MAC_HASH`] uses
    /// on `frame` as the kernel would (big-endian loads relative to the
    /// Ethernet header); any other opcode fails the test.
    fn run(prog: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let at = |k: u32, n: usize| {
            let off = (k as i32 - SKF_LL_OFF) as usize;
            frame[off..off + n]
                .iter()
                .fold(0u32, |v, &b| v << 8 | u32::from(b))
        };
        for ins in prog {
            assert_eq!((ins.jt, ins.jf), (0, 0), "no jumps");
            match ins.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => a = at(ins.k, 4),
                c if c == BPF_LD | BPF_H | BPF_ABS => a = at(ins.k, 2),
                c if c == BPF_MISC | BPF_TAX => x = a,
                c if c == BPF_ALU | BPF_XOR | BPF_X => a ^= x,
                c if c == BPF_ALU | BPF_RSH | BPF_K => a >>= ins.k,
                c if c == BPF_RET | BPF_A => return a,
                c => panic!("opcode {c:#x} not expected"),
            }
        }
        panic!("program falls off its end")
    }

    fn frame_from(src: [u8; 6], fill: u8) -> Vec<u8> {
        let mut f = vec![fill; 60];
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&crate::ETH_P_AOE.to_be_bytes());
        f
    }

    #[test]
    fn source_mac_hash_depends_on_the_source_mac_alone() {
        let macs = [
            [0x02, 0, 0, 0, 0, 1],
            [0x02, 0, 0, 0, 0, 2],
            [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            [0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa],
        ];
        for mac in macs {
            let want = mac.iter().fold(0u8, |v, b| v ^ b);
            let h = run(&SOURCE_MAC_HASH, &frame_from(mac, 0));
            assert_eq!(h & 0xff, u32::from(want), "{mac:02x?}");
            // Destination, ethertype and payload do not move a sender.
            assert_eq!(run(&SOURCE_MAC_HASH, &frame_from(mac, 0xa5)), h);
        }
        // Two senders one bit apart land on different sockets of two.
        let [a, b] = [macs[0], macs[1]].map(|m| run(&SOURCE_MAC_HASH, &frame_from(m, 0)) % 2);
        assert_ne!(a, b);
    }
}
