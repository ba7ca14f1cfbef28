//! The front end without its sockets: the one target driver
//! ([`crate::frontend::Driver`]) with the RAID volumes as its store, fed byte
//! slices ([`SlicePort`]) and emptied with `poll_transmit` into the host's send
//! buffers.

use crate::frontend::{Done, Driver, SlicePort, Volumes};
use aoe_target::{ExportConfig, ExportId, IfaceId, SharedExport, Target, TargetConfig};
use aoe_wire::Mac;
use raid_engine::{VolumeCompletion, VolumeRequest};
use std::sync::Arc;
use std::time::Instant;

/// One exported volume as the front end sees it.
pub(crate) struct ExportDef {
    pub(crate) shelf: u16,
    pub(crate) slot: u8,
    pub(crate) read_only: bool,
    pub(crate) shared: Arc<SharedExport>,
    /// Index of the volume in the core.
    pub(crate) volume: usize,
    /// Sequence number of the next state record written to the volume's
    /// members (one above the newest found at start).
    pub(crate) next_record: u64,
}

pub(crate) struct Exports {
    driver: Driver<Volumes>,
    exports: Vec<ExportDef>,
}

impl Exports {
    /// A target on interfaces of the given (MAC, MTU), serving `exports`.
    pub(crate) fn new(ifaces: &[(Mac, u32)], exports: Vec<ExportDef>) -> Result<Exports, String> {
        let cfg = TargetConfig {
            buffer_count: 64,
            max_clients: 16,
            ..TargetConfig::default()
        };
        let mut target = Target::new(cfg).map_err(|e| format!("{e:?}"))?;
        let mut ids = Vec::new();
        for &(mac, mtu) in ifaces {
            ids.push(
                target
                    .add_interface(mac, mtu)
                    .map_err(|e| format!("{mac}: {e:?}"))?,
            );
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
                .map_err(|err| format!("export e{}.{}: {err:?}", e.shelf, e.slot))?;
        }
        let volumes = Volumes::new(exports.iter().map(|e| e.volume).collect());
        Ok(Exports {
            driver: Driver::new(target, volumes),
            exports,
        })
    }

    pub(crate) fn exports(&self) -> &[ExportDef] {
        &self.exports
    }

    pub(crate) fn driver(&self) -> &Driver<Volumes> {
        &self.driver
    }

    /// Announces every export (unsolicited config replies), as after start.
    pub(crate) fn announce_all(&mut self) {
        self.driver.announce_all(&mut SlicePort::default());
    }

    /// The export of volume `volume` now has `sectors`: resize and announce.
    pub(crate) fn resize(&mut self, volume: usize, sectors: u64) -> bool {
        let Some(e) = self.exports.iter().position(|x| x.volume == volume) else {
            return false;
        };
        self.driver
            .resize(&mut SlicePort::default(), ExportId(e as u16), sectors)
    }

    /// The export of volume `volume` falls silent: no frame reaches it, it is no
    /// longer announced, and [`Exports::forget`] drops its answers. A client's
    /// driver then retransmits to another target of the same shelf.slot (the
    /// appliance that took the blades over) instead of failing I/O, which an
    /// ATA error reply would make it do. False if the volume is not exported.
    pub(crate) fn silence(&mut self, volume: usize) -> bool {
        let Some(e) = self.exports.iter().position(|x| x.volume == volume) else {
            return false;
        };
        self.driver
            .target_mut()
            .set_export_interfaces(ExportId(e as u16), &[])
            .is_ok()
    }

    /// A volume request of a silenced export finished: it is forgotten without
    /// an answer, and so are the writes and flushes a sync covered (the client
    /// retransmits them elsewhere). Failing them instead, as this did, made the
    /// old active of a split brain answer FLUSH and write-back writes with an
    /// ATA error, which the Linux driver fails (the whole-appliance simulator,
    /// `--layout concat --seed 17 --takeover`).
    pub(crate) fn forget(&mut self, c: VolumeCompletion) {
        let Some(done) = self.driver.store_mut().done::<()>(c) else {
            return;
        };
        let target = self.driver.target_mut();
        match done {
            Done::Read { req, .. } | Done::Write { req, .. } => target.drop_request(req),
            Done::Sync { export, .. } => target.abandon_sync(export),
        }
    }

    /// Stop taking new requests (frames are dropped); in-flight ones finish.
    pub(crate) fn stop(&mut self) {
        self.driver.stop();
    }

    /// No store I/O in flight and nothing waiting to be sent.
    pub(crate) fn drained(&self) -> bool {
        self.driver.store().in_flight() == 0 && self.driver.drained()
    }

    /// A frame from front-end interface `iface` (index in the order given to `new`).
    pub(crate) fn handle_frame(&mut self, iface: usize, frame: &[u8], now: Instant) {
        self.driver
            .on_frame(&mut SlicePort::default(), IfaceId(iface as u16), frame, now);
    }

    /// Volume requests to submit: (volume index, request).
    pub(crate) fn take_requests(&mut self) -> std::vec::Drain<'_, (usize, VolumeRequest)> {
        self.driver.store_mut().take_requests()
    }

    /// Is this volume request id one of the front end's?
    pub(crate) fn owns_request(id: u64) -> bool {
        Volumes::owns(id)
    }

    /// A volume request of the front end finished.
    pub(crate) fn volume_done(&mut self, c: VolumeCompletion) {
        if let Some(done) = self.driver.store_mut().done(c) {
            self.driver.on_done(&mut SlicePort::default(), done);
        }
    }

    /// Whether frames wait for a send buffer.
    pub(crate) fn has_transmit(&self) -> bool {
        self.driver.has_transmit()
    }

    /// A save of the state of export `export` failed (counted in status).
    pub(crate) fn persist_failed(&mut self) {
        self.driver.persist_failed();
    }

    /// The next export whose state must be saved before any further frame.
    pub(crate) fn poll_persist(&mut self) -> Option<usize> {
        self.driver.poll_persist().map(|e| usize::from(e.0))
    }

    /// Builds the next frame to send in `buf`: (interface index, length).
    pub(crate) fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        self.driver
            .poll_transmit(buf)
            .map(|(i, n)| (usize::from(i.0), n))
    }
}
