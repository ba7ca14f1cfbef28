//! The exports `aoeraid serve` serves, shared by its workers: each opened
//! store with its durable state. A reload replaces the list as a whole
//! (exports whose spec did not change are kept, the same `Arc`) and bumps a
//! generation the workers compare once per loop turn.

use super::persist::StateFile;
use super::store::ExportFile;
use crate::config::serve::ServeExport;
use anyhow::{bail, Context};
use aoe_target::SharedExport;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Process-wide settings.
#[derive(Debug, Clone)]
pub(crate) struct FrontendConfig {
    pub(crate) threads: usize,
    pub(crate) state_dir: PathBuf,
    /// How often the store sizes are checked for growth.
    pub(crate) stat_interval: Duration,
    /// How often interfaces are looked up (missing ones, and ones that were
    /// replaced by a new device of the same name).
    pub(crate) iface_poll: Duration,
    /// The largest Buffer Count any export may have (sizes request slots).
    pub(crate) max_buffers: u16,
    /// How long a worker that served a lone request busy-polls for the next
    /// one before it sleeps (zero: never).
    pub(crate) spin: Duration,
}

/// An export with its store open and its state loaded.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) spec: ServeExport,
    pub(crate) store: ExportFile,
    pub(crate) shared: Arc<SharedExport>,
    pub(crate) state: Arc<StateFile>,
}

impl Served {
    /// Opens the store, loads (or creates) the state file and applies the
    /// spec's mask list and config string.
    fn open(spec: ServeExport, cfg: &FrontendConfig) -> anyhow::Result<Served> {
        if spec.buffers > cfg.max_buffers {
            bail!(
                "buffer count {} above the {} this process started with (restart to raise it)",
                spec.buffers,
                cfg.max_buffers
            );
        }
        let store = ExportFile::open(
            &spec.file,
            spec.read_only,
            spec.io,
            spec.offset_bytes(),
            spec.length_bytes(),
        )?;
        let state = Arc::new(StateFile::new(&cfg.state_dir, spec.shelf, spec.slot));
        let mut st = state.load_or_new()?;
        if !spec.allow.is_empty() {
            st.mask = spec.allow.clone();
        }
        if let Some(c) = &spec.config_string {
            if c.len() > aoe_wire::MAX_CONFIG_LEN {
                bail!("config string longer than 1024 bytes");
            }
            st.config = c.as_bytes().to_vec();
        }
        state.save(&st)?;
        Ok(Served {
            shared: SharedExport::new(st, store.sectors()?),
            spec,
            store,
            state,
        })
    }

    /// One line on the export's reservation: its reserve list and what was
    /// refused because of it (for the start and exit logs).
    pub(crate) fn reservation_line(&self) -> String {
        let sh = &self.shared;
        let list: Vec<String> = sh
            .snapshot()
            .reserve
            .iter()
            .map(|m| m.to_string())
            .collect();
        format!(
            "e{}.{} reserved=[{}] fenced_commands={} reserve_refused={}",
            self.spec.shelf,
            self.spec.slot,
            list.join(","),
            sh.fenced_commands(),
            sh.reserve_refused()
        )
    }

    /// `e7.3 /srv/x.img (2048 sectors, buffered) on eth1,eth2`.
    pub(crate) fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "e{}.{} {} ({} sectors, {}{}, buffer count {}) on {}",
            s.shelf,
            s.slot,
            s.file.display(),
            self.shared.sectors(),
            if self.store.direct {
                "O_DIRECT"
            } else {
                "buffered"
            },
            if s.read_only { ", read-only" } else { "" },
            s.buffers,
            s.interfaces.join(",")
        )
    }
}

/// The current export list and its generation.
pub(crate) struct Catalog {
    pub(crate) cfg: FrontendConfig,
    exports: Mutex<Arc<Vec<Arc<Served>>>>,
    generation: AtomicU64,
    /// Interface names in order of first mention: the PACKET_FANOUT group
    /// of an interface is the same in every worker.
    names: Mutex<Vec<String>>,
}

impl Catalog {
    /// Opens every export of `specs`; any failure is an error.
    pub(crate) fn open(cfg: FrontendConfig, specs: Vec<ServeExport>) -> anyhow::Result<Catalog> {
        if cfg.threads == 0 || cfg.threads > 64 {
            bail!("--threads must be 1..=64");
        }
        let mut list = Vec::new();
        for spec in specs {
            let what = format!("e{}.{} ({})", spec.shelf, spec.slot, spec.file.display());
            list.push(Arc::new(Served::open(spec, &cfg).context(what)?));
        }
        Ok(Catalog {
            cfg,
            exports: Mutex::new(Arc::new(list)),
            generation: AtomicU64::new(1),
            names: Mutex::new(Vec::new()),
        })
    }

    /// The exports now, and their generation.
    pub(crate) fn snapshot(&self) -> (u64, Arc<Vec<Arc<Served>>>) {
        let list = self.exports.lock();
        (self.generation.load(Ordering::Acquire), list.clone())
    }

    /// The generation now (one atomic load: workers call it every turn).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the export list by `specs`: unchanged exports are kept as
    /// they are (their I/O never notices), the others are opened; one that
    /// fails to open is left out and reported. Returns one line per change
    /// or failure.
    pub(crate) fn reload(&self, specs: Vec<ServeExport>) -> Vec<String> {
        let old = self.exports.lock().clone();
        let mut log = Vec::new();
        let mut list = Vec::new();
        for spec in specs {
            if let Some(kept) = old.iter().find(|s| s.spec == spec) {
                list.push(kept.clone());
                continue;
            }
            let what = format!("e{}.{}", spec.shelf, spec.slot);
            match Served::open(spec, &self.cfg) {
                Ok(s) => {
                    log.push(format!("added {}", s.describe()));
                    list.push(Arc::new(s));
                }
                Err(e) => log.push(format!("{what}: not served: {e:#}")),
            }
        }
        for s in old.iter() {
            if !list.iter().any(|n| Arc::ptr_eq(n, s)) {
                log.push(format!("removed e{}.{}", s.spec.shelf, s.spec.slot));
            }
        }
        let mut cur = self.exports.lock();
        *cur = Arc::new(list);
        self.generation.fetch_add(1, Ordering::AcqRel);
        log
    }

    /// The index of interface `name` among all names ever served.
    pub(crate) fn name_index(&self, name: &str) -> u16 {
        let mut names = self.names.lock();
        match names.iter().position(|n| n == name) {
            Some(i) => i as u16,
            None => {
                names.push(name.to_string());
                names.len() as u16 - 1
            }
        }
    }
}
