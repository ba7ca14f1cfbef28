//! Who a request belongs to, carried in its io_uring `user_data`. The one place that
//! encodes and decodes it: [`super::Ring`] routes every completion with one `match`.

/// The part of the ring a request belongs to, with its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// The multishot receive of socket `n`.
    Recv(u32),
    /// The readiness poll of socket `n` (one with a mapped receive ring).
    Poll(u32),
    /// The send from slot `n`.
    Send(u32),
    /// The kick of socket `n`'s mapped transmit ring.
    Kick(u32),
    /// The file operation or timer in op slot `n`.
    Op(u32),
    /// The read of the waker's eventfd.
    Wake,
    /// The cancellation issued on drop.
    Cancel,
}

// user_data = kind << 56 | index.
const RECV: u64 = 1;
const SEND: u64 = 2;
const OP: u64 = 3;
const CANCEL: u64 = 4;
const WAKE: u64 = 5;
const POLL: u64 = 6;
const KICK: u64 = 7;

impl Owner {
    pub(super) fn user_data(self) -> u64 {
        let (kind, idx) = match self {
            Owner::Recv(n) => (RECV, n),
            Owner::Poll(n) => (POLL, n),
            Owner::Send(n) => (SEND, n),
            Owner::Kick(n) => (KICK, n),
            Owner::Op(n) => (OP, n),
            Owner::Wake => (WAKE, 0),
            Owner::Cancel => (CANCEL, 0),
        };
        (kind << 56) | u64::from(idx)
    }

    /// The owner of a completion, `None` for a value the ring never submits.
    pub(super) fn of(user_data: u64) -> Option<Owner> {
        let idx = user_data as u32;
        Some(match user_data >> 56 {
            RECV => Owner::Recv(idx),
            POLL => Owner::Poll(idx),
            SEND => Owner::Send(idx),
            KICK => Owner::Kick(idx),
            OP => Owner::Op(idx),
            WAKE => Owner::Wake,
            CANCEL => Owner::Cancel,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owner_round_trips() {
        for o in [
            Owner::Recv(0),
            Owner::Poll(7),
            Owner::Send(511),
            Owner::Kick(3),
            Owner::Op(u32::MAX),
            Owner::Wake,
            Owner::Cancel,
        ] {
            assert_eq!(Owner::of(o.user_data()), Some(o));
        }
        assert_eq!(Owner::of(0), None);
        assert_eq!(Owner::of(9 << 56), None);
    }
}
