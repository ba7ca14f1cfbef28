//! Query Config, MAC Mask List and Reserve/Release: the target's control
//! plane. Mutations go through [`SharedExport::mutate`](crate::SharedExport)
//! so every worker sees them and the driver persists them before replying.

use crate::state::ExportState;
use crate::state::{MASK_CAPACITY, RESERVE_CAPACITY};
use crate::target::{Action, ExportId, ReplyTo, Target};
use aoe_wire::{
    CCmd, DCmd, Directives, ErrorCode, MCmd, MError, Mac, MacList, MacMask, QueryConfig, RCmd,
    Reserve,
};

impl Target {
    pub(crate) fn handle_config(
        &mut self,
        to: ReplyTo<'_>,
        q: &QueryConfig<'_>,
        out: &mut Vec<Action>,
    ) {
        let current = &self.exports[usize::from(to.export.0)].cache.config;
        match q.ccmd {
            CCmd::Read => self.reply_config(to, q.ccmd, None, out),
            CCmd::Test => {
                if current.as_slice() == q.config {
                    self.reply_config(to, q.ccmd, None, out)
                }
            }
            CCmd::TestPrefix => {
                if current.starts_with(q.config) {
                    self.reply_config(to, q.ccmd, None, out)
                }
            }
            CCmd::Set | CCmd::ForceSet => {
                let force = q.ccmd == CCmd::ForceSet;
                let new = q.config;
                let ok = self.mutate(to.export, out, |st| {
                    if force || st.config.is_empty() || st.config == new {
                        let changed = st.config != new;
                        st.config.clear();
                        st.config.extend_from_slice(new);
                        (changed, true)
                    } else {
                        (false, false)
                    }
                });
                let err = (!ok).then_some(ErrorCode::ConfigStringPresent);
                self.reply_config(to, q.ccmd, err, out)
            }
            CCmd::Unknown(_) => self.reply_config(to, q.ccmd, Some(ErrorCode::BadArgument), out),
        }
    }

    /// Applies `f` to the export's shared state (true: it changed), then
    /// refreshes this worker's cache and asks the driver to persist if the
    /// generation moved.
    fn mutate<R>(
        &mut self,
        export: ExportId,
        out: &mut Vec<Action>,
        f: impl FnOnce(&mut ExportState) -> (bool, R),
    ) -> R {
        let shared = self.exports[usize::from(export.0)].shared.clone();
        let (generation, r) = shared.mutate(f);
        let ex = &mut self.exports[usize::from(export.0)];
        if generation != ex.generation {
            ex.generation = ex.shared.refresh(&mut ex.cache);
            out.push(Action::Persist { export });
        }
        r
    }

    /// Query Config reply (or E reply carrying the same fields) with the
    /// current string, the receiving interface's sector limit and `ccmd`.
    pub(crate) fn reply_config(
        &mut self,
        to: ReplyTo<'_>,
        ccmd: CCmd,
        error: Option<ErrorCode>,
        out: &mut Vec<Action>,
    ) {
        let e = usize::from(to.export.0);
        let buffer_count = self.exports[e].buffer_count;
        let firmware = self.cfg.firmware;
        let sector_count = self.ifaces[usize::from(to.iface.0)].max_sectors;
        // A copy: the reply is written while the target lends out its control frame.
        let config = self.exports[e].cache.config.clone();
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            let q = QueryConfig {
                buffer_count,
                firmware,
                sector_count,
                version: aoe_wire::AOE_VERSION,
                ccmd: CCmd::from_nibble(ccmd.nibble()),
                config: &config,
            };
            let mut hdr = to.h.response_to(mac, shelf, slot);
            hdr.error = error;
            q.emit(&hdr, buf)
        });
    }

    pub(crate) fn handle_mask(&mut self, to: ReplyTo<'_>, m: &MacMask<'_>, out: &mut Vec<Action>) {
        match m.mcmd {
            MCmd::Read => self.reply_mask(to, m.mcmd, MError::Ok, 0, None, out),
            MCmd::Edit => {
                let dirs = m.directives;
                let (merror, failed) = self.mutate(to.export, out, |st| {
                    let mut changed = false;
                    for (i, d) in dirs.iter().enumerate() {
                        match d.dcmd {
                            DCmd::None => {}
                            DCmd::Add => {
                                if !st.mask.contains(&d.mac) {
                                    if st.mask.len() >= MASK_CAPACITY {
                                        return (changed, (MError::ListFull, i as u8));
                                    }
                                    st.mask.push(d.mac);
                                    changed = true;
                                }
                            }
                            DCmd::Delete => {
                                if let Some(p) = st.mask.iter().position(|x| *x == d.mac) {
                                    st.mask.remove(p);
                                    changed = true;
                                }
                            }
                            DCmd::Unknown(_) => return (changed, (MError::BadDCmd, i as u8)),
                        }
                    }
                    (changed, (MError::Ok, 0))
                });
                self.reply_mask(to, m.mcmd, merror, failed, None, out)
            }
            MCmd::Unknown(_) => {
                self.reply_mask(to, m.mcmd, MError::Ok, 0, Some(ErrorCode::BadArgument), out)
            }
        }
    }

    /// Mask reply: on success the whole list (DCmd 0 each); with an MError
    /// the failing index and no list; with an AoE error just the argument.
    fn reply_mask(
        &mut self,
        to: ReplyTo<'_>,
        mcmd: MCmd,
        merror: MError,
        failed_index: u8,
        error: Option<ErrorCode>,
        out: &mut Vec<Action>,
    ) {
        // A copy: the reply is written while the target lends out its control frame.
        let mut list = [Mac::ZERO; MASK_CAPACITY];
        let mut n = 0;
        if merror == MError::Ok && error.is_none() {
            let mask = &self.exports[usize::from(to.export.0)].cache.mask;
            n = mask.len().min(MASK_CAPACITY);
            list[..n].copy_from_slice(&mask[..n]);
        }
        let reply = MacMask {
            mcmd,
            merror,
            failed_index: if merror == MError::Ok {
                0
            } else {
                failed_index
            },
            directives: Directives::listing(&list[..n]),
        };
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            let mut hdr = to.h.response_to(mac, shelf, slot);
            hdr.error = error;
            reply.emit(&hdr, buf)
        });
    }

    pub(crate) fn handle_reserve(
        &mut self,
        to: ReplyTo<'_>,
        r: &Reserve<'_>,
        out: &mut Vec<Action>,
    ) {
        let error = match r.rcmd {
            RCmd::Read => None,
            RCmd::Set | RCmd::ForceSet if r.macs.len() > RESERVE_CAPACITY => {
                Some(ErrorCode::BadArgument)
            }
            RCmd::Set | RCmd::ForceSet => {
                let force = r.rcmd == RCmd::ForceSet;
                let src = to.h.src;
                let macs = r.macs;
                let ok = self.mutate(to.export, out, |st| {
                    if force || st.reserve.is_empty() || st.reserve.contains(&src) {
                        let before = std::mem::take(&mut st.reserve);
                        for m in macs.iter() {
                            if !st.reserve.contains(&m) {
                                st.reserve.push(m);
                            }
                        }
                        (before != st.reserve, true)
                    } else {
                        (false, false)
                    }
                });
                if !ok {
                    self.count_reserve_refused(to.export);
                }
                (!ok).then_some(ErrorCode::TargetReserved)
            }
            RCmd::Unknown(_) => Some(ErrorCode::BadArgument),
        };
        let e = usize::from(to.export.0);
        let (mac, shelf, slot) = self.own(to.iface, to.export);
        let mut hdr = to.h.response_to(mac, shelf, slot);
        hdr.error = error;
        let Some(f) = self.ctl_slot() else { return };
        let buf = crate::target::ctl_buf(&mut self.ctl, f);
        let reply = Reserve {
            rcmd: r.rcmd,
            macs: MacList::from_slice(&self.exports[e].cache.reserve),
        };
        let len = reply.emit(&hdr, buf).unwrap_or(0);
        if len > 0 {
            self.send_or_hold_reserve_reply(to.iface, to.export, f, len, out);
        }
    }

    /// A Reserve Set/Force Set from a MAC outside the export's allow (mask)
    /// list: E + error 6 and no list (a station that may not talk to the
    /// export learns nothing of it).
    pub(crate) fn refuse_reserve_outsider(
        &mut self,
        to: ReplyTo<'_>,
        rcmd: RCmd,
        out: &mut Vec<Action>,
    ) {
        self.count_reserve_refused(to.export);
        let reply = Reserve {
            rcmd,
            macs: MacList::from_slice(&[]),
        };
        self.reply_ctl(to, out, |buf, mac, shelf, slot| {
            let hdr =
                to.h.response_to(mac, shelf, slot)
                    .with_error(ErrorCode::TargetReserved);
            reply.emit(&hdr, buf)
        });
    }

    fn count_reserve_refused(&mut self, export: ExportId) {
        self.counters.reserve_refused += 1;
        self.exports[usize::from(export.0)]
            .shared
            .count_reserve_refused();
    }
}
