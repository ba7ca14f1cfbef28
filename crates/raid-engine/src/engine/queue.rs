//! Per-unit job FIFOs. A volume request is cut into per-unit pieces and each unit has a
//! FIFO of jobs: readers at the head run together, a writer runs alone, so overlapping
//! requests apply in submission order and a read never sees half of a write.

use std::collections::{BTreeSet, VecDeque};

use super::job::{Job, Work};
use super::JobId;
use crate::fastmap::FastMap as HashMap;

#[derive(Debug)]
pub(crate) struct JobQueues {
    /// Every job not finished, by id (a job being stepped is out of it meanwhile).
    pub(crate) jobs: HashMap<JobId, Job>,
    next: JobId,
    /// Each unit's jobs in submission order; no empty queue is kept.
    pub(crate) units: HashMap<u64, VecDeque<JobId>>,
    /// Jobs waiting for metadata versions to become durable.
    pub(crate) meta_waiters: Vec<JobId>,
    /// Stripe writes not started yet (gathering consecutive writes).
    pub(crate) gathering: BTreeSet<JobId>,
}

impl Default for JobQueues {
    fn default() -> Self {
        JobQueues {
            jobs: HashMap::default(),
            next: 1,
            units: HashMap::default(),
            meta_waiters: Vec::new(),
            gathering: BTreeSet::new(),
        }
    }
}

impl JobQueues {
    /// Queue `job` at the tail of its unit. Returns its id.
    pub(crate) fn push(&mut self, job: Job) -> JobId {
        let id = self.next;
        self.next += 1;
        if let Work::Stripe(_) = job.work {
            self.gathering.insert(id);
        }
        self.units.entry(job.unit).or_default().push_back(id);
        self.jobs.insert(id, job);
        id
    }

    /// Jobs queued in `unit` ahead of its last one.
    pub(crate) fn ahead_of_tail(&self, unit: u64) -> Vec<JobId> {
        self.units.get(&unit).map_or_else(Vec::new, |q| {
            q.iter().take(q.len().saturating_sub(1)).copied().collect()
        })
    }

    pub(crate) fn tail(&self, unit: u64) -> Option<JobId> {
        self.units.get(&unit).and_then(|q| q.back()).copied()
    }

    pub(crate) fn head(&self, unit: u64) -> Option<JobId> {
        self.units.get(&unit).and_then(|q| q.front()).copied()
    }

    pub(crate) fn queue_len(&self, unit: u64) -> usize {
        self.units.get(&unit).map_or(0, |q| q.len())
    }

    /// Jobs of `unit` allowed to run and not started: the head, and the readers after
    /// a reader head up to the first writer.
    pub(crate) fn startable(&self, unit: u64) -> Vec<JobId> {
        let Some(q) = self.units.get(&unit) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, &id) in q.iter().enumerate() {
            let j = &self.jobs[&id];
            if i > 0 && j.exclusive {
                break;
            }
            if !j.started {
                out.push(id);
            }
            if j.exclusive {
                break;
            }
        }
        out
    }

    /// Mark job `id` started: it no longer gathers.
    pub(crate) fn start(&mut self, id: JobId) -> bool {
        let Some(j) = self.jobs.get_mut(&id) else {
            return false;
        };
        debug_assert!(!j.started, "job {id} started twice");
        j.started = true;
        self.gathering.remove(&id);
        true
    }

    /// Job `id` of `unit` finished (already taken out of `jobs`): out of its queue.
    pub(crate) fn remove(&mut self, id: JobId, unit: u64) {
        if let Some(q) = self.units.get_mut(&unit) {
            q.retain(|&j| j != id);
            if q.is_empty() {
                self.units.remove(&unit);
            }
        }
        self.gathering.remove(&id);
    }

    pub(crate) fn clear(&mut self) {
        self.jobs.clear();
        self.units.clear();
        self.gathering.clear();
        self.meta_waiters.clear();
    }
}
