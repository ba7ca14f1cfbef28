//! The driver on an io_uring [`Ring`]: received frames and send slots as the
//! driver's [`Port`], and the routing of the ring's socket completions.

use super::driver::{Driver, Port, Store};
use super::persist::StateFile;
use aoe_target::{ExportId, IfaceId};
use aoe_uring::{Completion, Ring, SendSlot, SockId};
use std::sync::Arc;
use std::time::Instant;

/// High byte of every `user` value the front end puts on a ring.
pub(crate) const USER_TAG: u64 = 0xA7;

/// The `user` value of a front-end ring operation of `kind` for `id`.
pub(crate) fn user(kind: u64, id: u32) -> u64 {
    (USER_TAG << 56) | (kind << 48) | u64::from(id)
}

/// Kind of `user` values of sends.
const KIND_SEND: u64 = 4;

/// A ring and the front end's sockets on it (`socks[i]` serves the
/// target's interface `i`).
pub(crate) struct RingPort<'r> {
    ring: &'r Ring,
    socks: &'r [SockId],
}

impl Port for RingPort<'_> {
    type Frame = aoe_uring::RecvBuf;
    type Slot = SendSlot;

    fn frame<'a>(&'a self, frame: &'a Self::Frame) -> &'a [u8] {
        self.ring.frame(frame)
    }

    fn recycle(&mut self, frame: Self::Frame) {
        self.ring.recycle(frame);
    }

    fn slot(&mut self) -> Option<SendSlot> {
        self.ring.send_slot()
    }

    fn slot_bytes<'a>(&'a mut self, slot: &'a mut SendSlot) -> &'a mut [u8] {
        self.ring.slot_mut(slot)
    }

    fn release(&mut self, slot: SendSlot) {
        self.ring.release_slot(slot);
    }

    fn send(&mut self, iface: IfaceId, slot: SendSlot, len: usize) -> bool {
        match self.socks.get(usize::from(iface.0)) {
            Some(&sock) => self
                .ring
                .submit_send(sock, slot, len, user(KIND_SEND, 0))
                .is_ok(),
            None => {
                self.ring.release_slot(slot);
                false
            }
        }
    }
}

impl<'r> RingPort<'r> {
    /// The ring, for stores that submit their own I/O on it.
    pub(crate) fn ring(&self) -> &'r Ring {
        self.ring
    }
}

/// A [`Driver`] whose frames come from sockets on a ring.
pub(crate) struct RingFront<S> {
    socks: Vec<SockId>,
    /// Export → its state file.
    states: Vec<Arc<StateFile>>,
    driver: Driver<S>,
}

impl<S> RingFront<S>
where
    S: for<'r> Store<RingPort<'r>>,
{
    /// `socks[i]` is the ring socket of the target's interface `i`,
    /// `states[e]` the state file of export `e`.
    pub(crate) fn new(
        socks: Vec<SockId>,
        states: Vec<Arc<StateFile>>,
        driver: Driver<S>,
    ) -> RingFront<S> {
        RingFront {
            socks,
            states,
            driver,
        }
    }

    pub(crate) fn driver(&self) -> &Driver<S> {
        &self.driver
    }

    pub(crate) fn driver_mut(&mut self) -> &mut Driver<S> {
        &mut self.driver
    }

    /// Interface `iface` is served through `sock` from now on (one that came
    /// up, or came back as a new device).
    pub(crate) fn set_socket(&mut self, iface: IfaceId, sock: SockId) {
        let i = usize::from(iface.0);
        if self.socks.len() <= i {
            self.socks.resize(i + 1, sock);
        }
        self.socks[i] = sock;
    }

    /// Export `export`'s state is saved to `state`.
    pub(crate) fn set_state(&mut self, export: ExportId, state: Arc<StateFile>) {
        let e = usize::from(export.0);
        if self.states.len() <= e {
            self.states.resize(e + 1, state.clone());
        }
        self.states[e] = state;
    }

    /// Announces `export` on its interfaces.
    pub(crate) fn announce(&mut self, ring: &Ring, export: ExportId) {
        let (d, mut port) = self.parts(ring);
        d.announce(&mut port, export);
        self.flush(ring);
    }

    /// The driver and a port for it on `ring`.
    pub(crate) fn parts<'a>(&'a mut self, ring: &'a Ring) -> (&'a mut Driver<S>, RingPort<'a>) {
        (
            &mut self.driver,
            RingPort {
                ring,
                socks: &self.socks,
            },
        )
    }

    fn owns_sock(&self, sock: SockId) -> bool {
        self.socks.contains(&sock)
    }

    /// Feeds a completion of the front end's sockets (frames, sends,
    /// receive errors); hands back anything else. Call [`RingFront::flush`]
    /// after a batch.
    pub(crate) fn on_socket(
        &mut self,
        ring: &Ring,
        now: Instant,
        c: Completion,
    ) -> Option<Completion> {
        match c {
            Completion::Frame { sock, buf } => {
                let Some(i) = self.socks.iter().position(|s| *s == sock) else {
                    return Some(Completion::Frame { sock, buf });
                };
                let (d, mut port) = self.parts(ring);
                d.on_frame(&mut port, IfaceId(i as u16), buf, now);
                None
            }
            Completion::SendDone { sock, result, .. } if self.owns_sock(sock) => {
                if result.is_err() {
                    self.driver.send_failed();
                }
                None
            }
            Completion::RecvError { sock, .. } if self.owns_sock(sock) => None,
            other => Some(other),
        }
    }

    /// Saves the export state the driver asks for, then sends what waits
    /// while send slots are free.
    pub(crate) fn flush(&mut self, ring: &Ring) {
        while let Some(export) = self.driver.poll_persist() {
            let Some(state) = self.states.get(usize::from(export.0)) else {
                continue;
            };
            let snapshot = self.driver.target().shared(export).snapshot();
            if let Err(e) = state.save(&snapshot) {
                self.driver.persist_failed();
                crate::events::log_line(
                    3,
                    &format!(
                        "{}: cannot save export state: {e:#}",
                        state.path().display()
                    ),
                );
            } else {
                // Saves are rare (a client changed the config string, mask or
                // reservation): worth a line, since fencing shows here.
                let reserve: Vec<String> = snapshot.reserve.iter().map(|m| m.to_string()).collect();
                crate::events::log_line(
                    6,
                    &format!(
                        "{}: saved; reserve list [{}]",
                        state.path().display(),
                        reserve.join(",")
                    ),
                );
            }
        }
        let (d, mut port) = self.parts(ring);
        d.transmit(&mut port);
    }

    pub(crate) fn stop(&mut self) {
        self.driver.stop();
    }

    /// Sends the Reserve replies whose writes have reached the store (on any
    /// worker), if any wait.
    pub(crate) fn poll_fences(&mut self, ring: &Ring) {
        if self.driver.fences_held() {
            let (d, mut port) = self.parts(ring);
            d.poll_fences(&mut port);
            self.flush(ring);
        }
    }

    /// Records `export`'s size and announces a change; true if it changed.
    pub(crate) fn resize(&mut self, ring: &Ring, export: ExportId, sectors: u64) -> bool {
        let (d, mut port) = self.parts(ring);
        let changed = d.resize(&mut port, export, sectors);
        self.flush(ring);
        changed
    }

    /// Frames the kernel dropped on these sockets (receive queue full).
    pub(crate) fn kernel_dropped(&self, ring: &Ring) -> u64 {
        self.socks
            .iter()
            .filter_map(|s| ring.socket(*s))
            .map(|s| s.stats().map(|st| st.dropped).unwrap_or(0))
            .sum()
    }
}
