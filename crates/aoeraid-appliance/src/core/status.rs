//! The status snapshot of everything the core owns: arrays, volumes, blades,
//! spare groups and what the front-end target did. Interface counters live with
//! the sockets, so the host adds them.

use super::ownership::Claim;
use super::Core;
use crate::control::engine::{array_status, blade_statuses, ArrayContext};
use crate::control::status::{
    FrontendCounters, Reservation, SpareGroupStatus, Status, VolumeStatus,
};
use std::time::Instant;

impl Core {
    pub(crate) fn status(&self, now: Instant) -> Status {
        let mut s = Status {
            appliance: self.config.appliance.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: now.saturating_duration_since(self.started).as_secs_f64(),
            ..Status::default()
        };
        for (vi, vol) in self.vols.iter().enumerate() {
            for (a, arr) in vol.arrays.iter().enumerate() {
                let names = arr.member_names(vol.concat.arrays()[a].status().members.len());
                let avail = arr
                    .spare_group
                    .as_deref()
                    .map_or(0, |g| self.spares.available(g) as u32);
                let ctx = ArrayContext {
                    member_names: &names,
                    spare_group: arr.spare_group.clone(),
                    spares_available: avail,
                };
                let es = vol.concat.arrays()[a].status();
                let mut st = array_status(&es, &ctx);
                for (m, e) in st.members.iter_mut().zip(&es.members) {
                    m.origin = arr
                        .member(e.index)
                        .map(|(addr, _)| self.member_origin(arr, addr).to_string());
                }
                s.arrays.push(st);
            }
            if vol.standalone {
                continue;
            }
            let (shelf, slot) = vol.export.unwrap_or((0, 0));
            let shared = self
                .exports
                .as_ref()
                .and_then(|x| x.exports().iter().find(|d| d.volume == vi))
                .map(|d| &d.shared);
            s.volumes.push(VolumeStatus {
                name: vol.name.clone(),
                shelf,
                slot,
                sectors: vol.concat.volume_sectors(),
                arrays: vol.arrays.iter().map(|a| a.name.clone()).collect(),
                read_only: vol.read_only,
                allow: vol.allow.clone(),
                exported: vol.export.is_some() && self.exports.is_some(),
                read_bytes: vol.read_bytes,
                write_bytes: vol.write_bytes,
                reserved: shared.map_or_else(Vec::new, |sh| {
                    sh.snapshot()
                        .reserve
                        .iter()
                        .map(|m| m.to_string())
                        .collect()
                }),
                fenced_commands: shared.map_or(0, |sh| sh.fenced_commands()),
                reserve_refused: shared.map_or(0, |sh| sh.reserve_refused()),
                reservation_lost: vol.reservation_lost,
            });
        }
        if let Some(p) = &self.pool {
            s.blades = blade_statuses(p);
            for b in &mut s.blades {
                if let Ok(addr) = b.blade.parse() {
                    b.refused = self.rejoin.refusal(&addr).map(str::to_string);
                }
            }
            for (id, claim) in self.owners.claims() {
                let name = self.blade_name(id);
                let Some(b) = s.blades.iter_mut().find(|b| b.blade == name) else {
                    continue;
                };
                (b.reservation, b.reserved_by) = match claim {
                    // The periodic Set of a held blade does not make it less held.
                    Claim::Held | Claim::Asserting { rejoin: false, .. } => {
                        (Some(Reservation::Held), Vec::new())
                    }
                    Claim::Asserting { rejoin: true, .. }
                    | Claim::Pending
                    | Claim::Unread
                    | Claim::Reading
                    | Claim::Force => (Some(Reservation::Asserting), Vec::new()),
                    Claim::Lost { holders } => (
                        Some(Reservation::Lost),
                        holders.iter().map(|m| m.to_string()).collect(),
                    ),
                };
            }
        }
        s.reservation_refused = self.owners.refused();
        s.warnings = self.unlisted();
        if let Some(x) = &self.exports {
            let c = x.driver().target().counters();
            let dc = x.driver().counters();
            s.frontend = FrontendCounters {
                frames: c.frames,
                malformed: c.malformed,
                not_for_us: c.not_addressed + c.masked,
                client_queue_full: c.client_queue_full,
                target_queue_full: c.target_queue_full,
                flushes: dc.flushes,
                reservation_conflicts: c.reservation_conflicts,
                ..FrontendCounters::default()
            };
        }
        for (g, avail) in self.spares.iter() {
            s.spare_groups.push(SpareGroupStatus {
                name: g.to_string(),
                available: avail.iter().map(|m| m.addr.to_string()).collect(),
                missing: Vec::new(),
                origins: avail
                    .iter()
                    .map(|m| m.origin.as_str().to_string())
                    .collect(),
            });
        }
        s
    }
}
