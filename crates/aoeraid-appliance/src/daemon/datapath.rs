//! The data path: one thread, one io_uring ring, feeding the appliance core
//! ([`crate::core::Core`]) from the ring. Frames of the back-end and front-end
//! sockets go in, `file:` member I/O runs on the ring, frames the core builds go
//! out from send slots. The control plane talks to it only through a bounded
//! command channel plus the ring's waker; it publishes a status snapshot every
//! second and whenever the core says state changed.

use super::create::random_uuid;
use super::file_member::FileMembers;
use super::members::release_stray;
use crate::backend::BackSockets;
use crate::config::{Config, MemberAddr};
use crate::control::status::{InterfaceStatus, Side, Status};
use crate::core::{Answer, Command, Core, Host, IoObserver, Notice, Reply};
use crate::events::{self, EventSink};
use crate::frontend::StateFile;
use crate::metrics::{IoHandles, Metrics};
use aoe_target::IfaceId;
use aoe_uring::{Completion, Ring, SockId};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use raid_engine::{MemberOp, VolumeOp};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands from the control plane (and the signal thread).
pub(crate) enum Cmd {
    Core(Command, Sender<Reply>),
    /// A re-read config: live changes applied, the rest refused.
    Reload(Box<Config>, Sender<Reply>),
    /// SIGTERM: stop exports, drain, mark clean, return.
    Stop,
}

/// The front end's sockets: the target itself lives in the core.
pub(crate) struct FrontSockets {
    socks: Vec<SockId>,
    names: Vec<String>,
    send_errors: u64,
    /// Times frames waited because every send slot was busy.
    slot_waits: u64,
}

impl FrontSockets {
    pub(crate) fn new(names: Vec<String>, socks: Vec<SockId>) -> FrontSockets {
        FrontSockets {
            socks,
            names,
            send_errors: 0,
            slot_waits: 0,
        }
    }

    fn iface(&self, sock: SockId) -> Option<usize> {
        self.socks.iter().position(|s| *s == sock)
    }

    /// Kernel counts of each socket, with the frames the target driver sent and
    /// found malformed on it.
    fn status(&self, ring: &Ring, core: &Core) -> Vec<InterfaceStatus> {
        (0..self.socks.len())
            .map(|i| {
                let t = core
                    .exports()
                    .map(|x| x.driver().iface_tally(IfaceId(i as u16)))
                    .unwrap_or_default();
                InterfaceStatus::of_socket(
                    &self.names[i],
                    Side::Frontend,
                    ring.socket(self.socks[i]),
                    t.sent,
                    t.malformed,
                )
            })
            .collect()
    }
}

/// The host side of the core's device requests: files opened on the ring.
struct RingHost<'a> {
    ring: &'a Ring,
    files: &'a mut FileMembers<u64>,
}

impl Host for RingHost<'_> {
    fn open_file(&mut self, path: &Path) -> Result<(usize, u64), String> {
        let i = match self.files.find(path) {
            Some(i) => i,
            None => self
                .files
                .open(self.ring, path)
                .map_err(|e| e.to_string())?,
        };
        Ok((i, self.files.sectors(i)))
    }

    fn random_uuid(&mut self) -> Result<[u8; 16], String> {
        random_uuid().map_err(|e| format!("{e:#}"))
    }
}

/// Volume and member I/O into the Prometheus registry.
pub(crate) struct IoMetrics {
    metrics: Arc<Metrics>,
    /// By volume index; None for volumes that are not exported.
    volumes: Vec<Option<IoHandles>>,
    members: HashMap<MemberAddr, IoHandles>,
}

impl IoMetrics {
    pub(crate) fn new(metrics: Arc<Metrics>, volumes: Vec<Option<IoHandles>>) -> IoMetrics {
        IoMetrics {
            metrics,
            volumes,
            members: HashMap::new(),
        }
    }
}

impl IoObserver for IoMetrics {
    fn volume_io(&mut self, volume: usize, op: VolumeOp, bytes: u64, secs: f64, ok: bool) {
        if let Some(Some(h)) = self.volumes.get(volume) {
            match op {
                VolumeOp::Read => h.read.record(bytes, secs, ok),
                VolumeOp::Write => h.write.record(bytes, secs, ok),
                VolumeOp::Flush => {}
            }
        }
    }

    fn member_io(&mut self, member: &MemberAddr, op: MemberOp, bytes: u64, secs: f64, ok: bool) {
        if op == MemberOp::Flush {
            self.metrics
                .member_flush(&member.to_string())
                .record(0, secs, ok);
            return;
        }
        if !self.members.contains_key(member) {
            let h = self.metrics.member_io(&member.to_string());
            self.members.insert(member.clone(), h);
        }
        let h = &self.members[member];
        let io = if op == MemberOp::Read {
            &h.read
        } else {
            &h.write
        };
        io.record(bytes, secs, ok);
    }
}

/// Everything the data path thread owns.
pub(crate) struct DataPath {
    pub(crate) ring: Ring,
    pub(crate) files: FileMembers<u64>,
    pub(crate) back: Option<BackSockets>,
    pub(crate) front: Option<FrontSockets>,
    pub(crate) core: Core,
    /// State file of each export, by export index.
    pub(crate) state_files: Vec<Arc<StateFile>>,
    pub(crate) cmds: Receiver<Cmd>,
    pub(crate) events: EventSink,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) status: Arc<Mutex<Status>>,
    /// Commands the core answers later ([`Answer::Later`]), by ticket.
    pub(crate) replies: HashMap<u64, Sender<Reply>>,
}

impl DataPath {
    /// Runs until a `Stop` command; then drains and marks arrays clean.
    pub(crate) fn run(&mut self, watchdog: &dyn Fn(), on_stop: &dyn Fn()) -> anyhow::Result<()> {
        let mut completions = Vec::with_capacity(4096);
        let mut next_status = Instant::now();
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.core.handle_timeout(now);
            self.flush_outputs(now);
            if now >= next_status {
                self.publish_status(now);
                watchdog();
                next_status = now + Duration::from_secs(1);
            }
            if let Some(deadline) = stopping {
                if self.core.drained() || now >= deadline {
                    break;
                }
            }
            let mut wake = next_status.min(self.core.poll_timeout());
            if stopping.is_some() {
                wake = wake.min(now + Duration::from_millis(10));
            }
            let now = self.ring.wait_until(Some(wake), &mut completions)?;
            for c in completions.drain(..) {
                self.on_completion(now, c);
            }
            while let Ok(cmd) = self.cmds.try_recv() {
                match cmd {
                    Cmd::Stop if stopping.is_none() => {
                        on_stop();
                        events::log_line(5, "stopping: exports closed, draining in-flight I/O");
                        self.core.stop_exports();
                        stopping = Some(now + Duration::from_secs(15));
                    }
                    Cmd::Stop => {}
                    Cmd::Core(cmd, tx) => {
                        let mut host = RingHost {
                            ring: &self.ring,
                            files: &mut self.files,
                        };
                        match self.core.command(now, &mut host, cmd) {
                            Answer::Now(r) => {
                                let _ = tx.send(r);
                            }
                            Answer::Later(ticket) => {
                                self.replies.insert(ticket, tx);
                            }
                        }
                    }
                    Cmd::Reload(cfg, tx) => {
                        let mut host = RingHost {
                            ring: &self.ring,
                            files: &mut self.files,
                        };
                        let r = self.core.reload(now, &mut host, *cfg);
                        if let Some((program, timeout)) = r.event_program {
                            self.events.set_program(program, timeout);
                        }
                        let _ = tx.send(r.reply);
                    }
                }
            }
        }
        self.mark_clean()?;
        self.publish_status(Instant::now());
        Ok(())
    }

    /// Hands one ring completion to whoever owns it.
    fn on_completion(&mut self, now: Instant, c: Completion) {
        let core = &mut self.core;
        let c = match self.back.as_mut() {
            Some(b) => {
                let Some(c) = b.on_completion(&self.ring, c, |iface, frame| {
                    let before = core.pool().map_or(0, |p| p.stats().malformed);
                    core.handle_back_frame(now, iface, frame);
                    core.pool().map_or(0, |p| p.stats().malformed) - before
                }) else {
                    return;
                };
                c
            }
            None => c,
        };
        let c = match (c, self.front.as_mut()) {
            (Completion::Frame { sock, buf }, Some(f)) if f.iface(sock).is_some() => {
                let i = f.iface(sock).expect("checked");
                core.handle_front_frame(now, i, self.ring.frame(&buf));
                self.ring.recycle(buf);
                return;
            }
            (Completion::SendDone { sock, result, .. }, Some(f)) if f.iface(sock).is_some() => {
                if result.is_err() {
                    f.send_errors += 1;
                }
                return;
            }
            (Completion::RecvError { sock, .. }, Some(f)) if f.iface(sock).is_some() => return,
            (c, _) => c,
        };
        let mut c = Some(c);
        if self.files.on_completion(&self.ring, &mut c) {
            while let Some((token, r)) = self.files.poll_done() {
                self.core.file_io_done(now, token, r);
            }
            return;
        }
        if let Some(c) = c {
            if !matches!(c, Completion::Woken) {
                release_stray(&self.ring, c);
            }
        }
    }

    /// Carries out what the core wants done: notices first (an export's state is
    /// saved before the frame that follows it goes out), then file I/O and frames.
    fn flush_outputs(&mut self, now: Instant) {
        while let Some(n) = self.core.poll_notice() {
            self.notice(now, n);
        }
        loop {
            while let Some(io) = self.core.poll_file_io() {
                self.files.submit(&self.ring, io.file, io.io, io.token);
            }
            // Refused at submission (out of range) without reaching the ring.
            let mut any = false;
            while let Some((token, r)) = self.files.poll_done() {
                self.core.file_io_done(now, token, r);
                any = true;
            }
            if !any {
                break;
            }
            while let Some(n) = self.core.poll_notice() {
                self.notice(now, n);
            }
        }
        if let Some(b) = self.back.as_mut() {
            let core = &mut self.core;
            b.transmit(&self.ring, |buf| core.poll_back_transmit(now, buf));
        }
        if let Some(f) = self.front.as_mut() {
            loop {
                let Some(mut slot) = self.ring.send_slot() else {
                    if self.core.has_front_transmit() {
                        f.slot_waits += 1;
                    }
                    break;
                };
                let Some((i, n)) = self.core.poll_front_transmit(self.ring.slot_mut(&mut slot))
                else {
                    self.ring.release_slot(slot);
                    break;
                };
                if self.ring.submit_send(f.socks[i], slot, n, 0).is_err() {
                    f.send_errors += 1;
                }
            }
        }
    }

    fn notice(&mut self, now: Instant, n: Notice) {
        match n {
            Notice::Event(e) => {
                self.events.emit(e);
            }
            Notice::Log(level, line) => events::log_line(level, &line),
            Notice::SaveExport(i) => {
                self.save_export(i);
                // A client changed the export's reservation, mask or config
                // string: status and /metrics show it at once.
                self.publish_status(now);
            }
            Notice::StatusChanged => self.publish_status(now),
            Notice::Reply(ticket, r) => {
                if let Some(tx) = self.replies.remove(&ticket) {
                    let _ = tx.send(r);
                }
            }
        }
    }

    fn save_export(&self, i: usize) {
        let (Some(x), Some(sf)) = (self.core.exports(), self.state_files.get(i)) else {
            return;
        };
        let ex = &x.exports()[i];
        let snapshot = ex.shared.snapshot();
        // The core saves it on the members (and logs that); this is the cache.
        if let Err(e) = sf.save(&snapshot) {
            events::log_line(
                4,
                &format!(
                    "e{}.{}: cannot cache export state in state_dir: {e:#}",
                    ex.shelf, ex.slot
                ),
            );
        }
    }

    /// Builds the status snapshot and feeds it to the metrics.
    pub(crate) fn publish_status(&mut self, now: Instant) {
        let mut s = self.core.status(now);
        if let (Some(b), Some(p)) = (&self.back, self.core.pool()) {
            s.interfaces = b.interface_status(&self.ring, p);
        }
        if let Some(f) = &self.front {
            s.interfaces.extend(f.status(&self.ring, &self.core));
            s.frontend.no_send_slot = f.slot_waits;
            s.frontend.send_errors = f.send_errors;
        }
        for m in s.arrays.iter_mut().flat_map(|a| a.members.iter_mut()) {
            m.read_bytes = self.metrics.member_bytes(&m.blade, "read");
            m.write_bytes = self.metrics.member_bytes(&m.blade, "write");
        }
        self.metrics.apply_status(&s);
        *self.status.lock() = s;
    }

    /// After a clean stop: the blades' reserve lists emptied (`docs/ha.md`), waiting
    /// up to 2 s for the answers.
    fn release_blades(&mut self) -> anyhow::Result<()> {
        if self.core.release_blades() == 0 {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut completions = Vec::new();
        loop {
            let now = Instant::now();
            self.core.handle_timeout(now);
            self.flush_outputs(now);
            if self.core.reserves_in_flight() == 0 {
                events::log_line(5, "stopping: blade reservations released");
                return Ok(());
            }
            if now >= deadline {
                events::log_line(
                    4,
                    "stopping: blade reservations not all released within 2 s",
                );
                return Ok(());
            }
            let now = self
                .ring
                .wait_until(Some(now + Duration::from_millis(5)), &mut completions)?;
            for c in completions.drain(..) {
                self.on_completion(now, c);
            }
        }
    }

    /// SIGTERM's last step: every array idle and its superblocks marked clean.
    fn mark_clean(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut completions = Vec::new();
        self.core.start_mark_clean();
        loop {
            let now = Instant::now();
            self.core.handle_timeout(now);
            self.flush_outputs(now);
            if self.core.all_clean() {
                return self.release_blades();
            }
            if now >= deadline {
                events::log_line(4, "stopping: arrays not all marked clean within 10 s");
                return self.release_blades();
            }
            let now = self
                .ring
                .wait_until(Some(now + Duration::from_millis(5)), &mut completions)?;
            for c in completions.drain(..) {
                self.on_completion(now, c);
            }
        }
    }
}
