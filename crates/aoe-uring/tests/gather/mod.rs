//! Collecting frames from a `Ring` in the tests that send through a veth pair
//! of the lab (`aoeraid_lab::Lab::veth_pair`).

use aoe_uring::{Completion, RecvBuf, Ring, SockId};
use std::time::{Duration, Instant};

/// Waits until `want` frames arrived on `ring` (or 5 s passed), handing each to `keep`;
/// frames `keep` returns are recycled. Returns how many arrived.
pub(crate) fn gather(
    ring: &mut Ring,
    want: usize,
    mut keep: impl FnMut(&Ring, SockId, RecvBuf) -> Option<RecvBuf>,
) -> usize {
    let mut events = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen < want && Instant::now() < deadline {
        ring.wait(Some(Duration::from_millis(100)), &mut events)
            .unwrap();
        for ev in events.drain(..) {
            match ev {
                Completion::Frame { sock, buf } => {
                    seen += 1;
                    if let Some(buf) = keep(ring, sock, buf) {
                        ring.recycle(buf);
                    }
                }
                Completion::SendDone { result, .. } => {
                    result.expect("send failed");
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    seen
}
