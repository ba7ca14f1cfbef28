//! The daemon's front end: the one target driver ([`crate::frontend::Driver`])
//! on the data path's ring with RAID volumes as its store. Store requests are
//! handed to the volumes by the data path ([`Front::take_requests`]); volume
//! completions come back through [`Front::volume_done`].

use crate::control::status::{FrontendCounters, InterfaceStatus, Side};
use crate::frontend::{Driver, RingFront, SlicePort, StateFile, Volumes};
use anyhow::Context;
use aoe_target::{ExportConfig, ExportId, IfaceId, SharedExport, Target, TargetConfig};
use aoe_uring::{Completion, PacketSocket, Ring};
use aoe_wire::Mac;
use raid_engine::{VolumeCompletion, VolumeRequest};
use std::sync::Arc;
use std::time::Instant;

/// One exported volume as the front end sees it.
pub(crate) struct ExportDef {
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    pub(crate) read_only: bool,
    pub(crate) state: Arc<StateFile>,
    pub(crate) shared: Arc<SharedExport>,
    /// Index of the volume in the data path.
    pub(crate) volume: usize,
}

pub(crate) struct Front {
    ring: RingFront<Volumes>,
    /// Front-end interface names (`names[i]` is the target's interface `i`).
    names: Vec<String>,
    exports: Vec<ExportDef>,
}

impl Front {
    /// Opens a socket per interface on `ring` and adds every export.
    pub(crate) fn open(
        ring: &mut Ring,
        ifaces: &[String],
        exports: Vec<ExportDef>,
    ) -> anyhow::Result<Front> {
        let cfg = TargetConfig {
            buffer_count: 64,
            max_clients: 16,
            ..TargetConfig::default()
        };
        let mut target = Target::new(cfg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut socks = Vec::new();
        let mut ids = Vec::new();
        for name in ifaces {
            let sock = PacketSocket::open(name)
                .with_context(|| format!("open AoE socket on front-end interface {name}"))?;
            let id = target
                .add_interface(Mac(sock.mac()), sock.mtu())
                .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
            ids.push(id);
            socks.push(ring.add_socket(sock)?);
        }
        for e in &exports {
            target
                .add_export(
                    ExportConfig {
                        shelf: e.shelf,
                        slot: e.slot,
                        read_only: e.read_only,
                        ifaces: ids.clone(),
                    },
                    e.shared.clone(),
                )
                .map_err(|err| anyhow::anyhow!("export e{}.{}: {err:?}", e.shelf, e.slot))?;
        }
        let volumes = Volumes::new(exports.iter().map(|e| e.volume).collect());
        let states = exports.iter().map(|e| e.state.clone()).collect();
        Ok(Front {
            ring: RingFront::new(socks, states, Driver::new(target, volumes)),
            names: ifaces.to_vec(),
            exports,
        })
    }

    pub(crate) fn exports(&self) -> &[ExportDef] {
        &self.exports
    }

    /// Announces every export (unsolicited config replies), as after start or growth.
    pub(crate) fn announce_all(&mut self, ring: &Ring) {
        self.ring.announce_all(ring);
    }

    /// The export of volume `volume` now has `sectors`: resize and announce.
    pub(crate) fn resize(&mut self, ring: &Ring, volume: usize, sectors: u64) -> bool {
        let Some(e) = self.exports.iter().position(|x| x.volume == volume) else {
            return false;
        };
        self.ring.resize(ring, ExportId(e as u16), sectors)
    }

    /// Stop taking new requests (frames are dropped); in-flight ones finish.
    pub(crate) fn stop(&mut self) {
        self.ring.stop();
    }

    /// No store I/O in flight and nothing waiting for a send slot.
    pub(crate) fn drained(&self) -> bool {
        let d = self.ring.driver();
        d.store().in_flight() == 0 && d.drained()
    }

    /// Feeds a ring completion; hands it back if it is not the front end's.
    pub(crate) fn on_completion(
        &mut self,
        ring: &Ring,
        now: Instant,
        ev: Completion,
    ) -> Option<Completion> {
        let ev = self.ring.on_socket(ring, now, ev);
        if ev.is_none() {
            self.ring.flush(ring);
        }
        ev
    }

    /// Volume requests to submit, as (volume index, request). Sends what
    /// waits for send slots first: on the shared ring the back end's sends
    /// free slots too.
    pub(crate) fn take_requests(
        &mut self,
        ring: &Ring,
    ) -> std::vec::Drain<'_, (usize, VolumeRequest)> {
        self.ring.flush(ring);
        self.ring.driver_mut().store_mut().take_requests()
    }

    /// Is this volume request id one of the front end's?
    pub(crate) fn owns_request(id: u64) -> bool {
        Volumes::owns(id)
    }

    /// A volume request of the front end finished.
    pub(crate) fn volume_done(&mut self, ring: &Ring, c: VolumeCompletion) {
        let d = self.ring.driver_mut();
        if let Some(done) = d.store_mut().done(c) {
            // Volume completions carry no ring buffers: the ring-free port.
            d.on_done(&mut SlicePort::default(), done);
            self.ring.flush(ring);
        }
    }

    /// Per-interface frame counts (kernel receive and drop counts included)
    /// and what the target did with the frames.
    pub(crate) fn status(&self, ring: &Ring) -> (Vec<InterfaceStatus>, FrontendCounters) {
        let d = self.ring.driver();
        let ifaces = self
            .names
            .iter()
            .zip(self.ring.socks())
            .enumerate()
            .map(|(i, (name, &sock))| {
                let t = d.iface_tally(IfaceId(i as u16));
                InterfaceStatus::of_socket(
                    name,
                    Side::Frontend,
                    ring.socket(sock),
                    t.sent,
                    t.malformed,
                )
            })
            .collect();
        let c = d.target().counters();
        let dc = d.counters();
        let counters = FrontendCounters {
            frames: c.frames,
            malformed: c.malformed,
            not_for_us: c.not_addressed + c.masked,
            client_queue_full: c.client_queue_full,
            target_queue_full: c.target_queue_full,
            no_send_slot: dc.slot_waits,
            send_errors: dc.send_errors,
            flushes: dc.flushes,
            reservation_conflicts: c.reservation_conflicts,
        };
        (ifaces, counters)
    }
}
