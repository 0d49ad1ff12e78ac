//! The records between the intake (which takes them off the request path's channel) and the
//! writer (which commits them), with the store's state as the writer last found it.
//!
//! While the store takes writes, the backlog holds at most two batches and the intake waits
//! for room, so requests wait on the full channel as they always did (nothing is dropped).
//! While it refuses them, the intake keeps taking records so that requests never wait on a
//! lost database, and the backlog holds them up to its [`Limit`]; past it, arriving records are
//! dropped and counted. Records already held are never dropped: what is held is written, in
//! order, once the store is back, and those written form an unbroken run from the outage's
//! start (docs/observability.md).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Msg, MAX_BATCH};
use crate::observe::record::{now_ms, Entry};

/// The most the backlog holds while the store refuses records.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub records: usize,
    pub bytes: usize,
}

pub const DEFAULT_RECORDS: usize = 100_000;
pub const DEFAULT_MB: usize = 512;

impl Default for Limit {
    fn default() -> Self {
        Limit {
            records: DEFAULT_RECORDS,
            bytes: DEFAULT_MB * 1024 * 1024,
        }
    }
}

/// What a record is counted as holding besides its bodies (its fields, metadata, attempts).
const RECORD_BYTES: usize = 2048;

/// How long a shutdown keeps retrying a store that refuses the records still held.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(super) struct Backlog {
    inner: Mutex<Inner>,
    /// Signalled when items arrive or leave, or the store's state changes.
    changed: Condvar,
    limit: Limit,
}

struct Inner {
    items: VecDeque<Msg>,
    /// Records held and not yet written: those in `items` and the batch being written.
    records: usize,
    bytes: usize,
    dropped: u64,
    /// Why the store refused its last write; `None` while it takes them.
    refused: Option<String>,
    /// Whether this outage's first drop was logged.
    said_full: bool,
    /// Since when (milliseconds since the epoch) the store is in its state.
    since_ms: i64,
    /// When the recorder was told to stop.
    stopping: Option<Instant>,
}

/// What the writer does next.
pub(super) enum Taken {
    /// Records to commit, oldest first.
    Entries(Vec<Entry>),
    /// An acknowledgement or a prune, due now that everything before it is written.
    Ack(Msg),
}

/// The store's state and the backlog, for `/v1/health`, `tollgate status` and `/metrics`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub refused: Option<String>,
    pub since_ms: i64,
    pub held: usize,
    pub dropped: u64,
    pub limit: Limit,
}

fn size(e: &Entry) -> usize {
    RECORD_BYTES
        + e.request_body.as_ref().map_or(0, |b| b.len())
        + e.response_body.as_ref().map_or(0, |b| b.len())
}

impl Backlog {
    pub fn new(limit: Limit) -> Backlog {
        Backlog {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                records: 0,
                bytes: 0,
                dropped: 0,
                refused: None,
                said_full: false,
                since_ms: now_ms(),
                stopping: None,
            }),
            changed: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds what the intake took off the channel, in order: waits for room while the store
    /// takes records, drops arriving records past the limit while it refuses them.
    pub fn push(&self, msgs: Vec<Msg>) {
        let mut inner = self.lock();
        // Two batches: one being written, the next gathered.
        let room = self.limit.records.min(2 * MAX_BATCH);
        for msg in msgs {
            match msg {
                Msg::Entry(e) => {
                    while inner.refused.is_none()
                        && inner.stopping.is_none()
                        && inner.records >= room
                    {
                        inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                    }
                    let bytes = size(&e);
                    if inner.refused.is_some()
                        && (inner.records >= self.limit.records
                            || inner.bytes + bytes > self.limit.bytes)
                    {
                        if !inner.said_full {
                            inner.said_full = true;
                            eprintln!(
                                "error: the request record queue is full ({} records, {} MB held while the store is unavailable): new records are dropped and counted until the store takes records again (see /v1/health or `tollgate status`)",
                                inner.records,
                                inner.bytes / (1024 * 1024)
                            );
                        }
                        inner.dropped += 1;
                        continue;
                    }
                    inner.records += 1;
                    inner.bytes += bytes;
                    inner.items.push_back(Msg::Entry(e));
                }
                Msg::Flush(ack) if inner.refused.is_some() => {
                    let _ = ack.send(Err(inner.refused.clone().unwrap_or_default()));
                }
                Msg::Stop(ack) => {
                    inner.stopping = Some(Instant::now());
                    inner.items.push_back(Msg::Stop(ack));
                }
                other => inner.items.push_back(other),
            }
        }
        self.changed.notify_all();
    }

    /// Waits up to `wait` for something to do.
    pub fn take(&self, wait: Duration) -> Option<Taken> {
        let (mut inner, _) = self
            .changed
            .wait_timeout_while(self.lock(), wait, |i| i.items.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        match inner.items.front()? {
            Msg::Entry(_) => Some(Taken::Entries(leading_entries(&mut inner, MAX_BATCH))),
            _ => inner.items.pop_front().map(Taken::Ack),
        }
    }

    /// The records at the front, up to `max`, without waiting.
    pub fn take_entries(&self, max: usize) -> Vec<Entry> {
        leading_entries(&mut self.lock(), max)
    }

    /// The store took `batch` (or answered a ping, when it is empty).
    pub fn wrote(&self, batch: &[Entry]) {
        let mut inner = self.lock();
        inner.records -= batch.len();
        inner.bytes -= batch.iter().map(size).sum::<usize>();
        if inner.refused.take().is_some() {
            let down_ms = now_ms() - inner.since_ms;
            inner.since_ms = now_ms();
            eprintln!(
                "the store takes request records again after {:.1} s; writing the {} held (dropped so far: {})",
                down_ms as f64 / 1000.0,
                inner.records + batch.len(),
                inner.dropped
            );
        }
        self.changed.notify_all();
    }

    /// The store refused a write (or a ping); the writer retries after `retry`.
    pub fn refused(&self, error: &str, retry: Duration) {
        let mut inner = self.lock();
        if inner.refused.is_none() {
            inner.since_ms = now_ms();
            inner.said_full = false;
            eprintln!(
                "error: the store refuses request records ({error}). The gateway keeps serving; its records are held in memory (up to {} records or {} MB) and written when the store is back",
                self.limit.records,
                self.limit.bytes / (1024 * 1024)
            );
        } else {
            eprintln!(
                "error: the store still refuses request records ({error}); {} held, {} dropped; retrying in {} ms",
                inner.records,
                inner.dropped,
                retry.as_millis()
            );
        }
        inner.refused = Some(error.to_string());
        // Whoever waits for a flush learns now that it will not come soon.
        let items = std::mem::take(&mut inner.items);
        for item in items {
            match item {
                Msg::Flush(ack) => {
                    let _ = ack.send(Err(error.to_string()));
                }
                other => inner.items.push_back(other),
            }
        }
        self.changed.notify_all();
    }

    /// Waits `pause` before a retry (less if a stop arrives); false once a shutdown has
    /// waited [`SHUTDOWN_GRACE`] for the store and should give up.
    pub fn pause(&self, pause: Duration) -> bool {
        let (inner, _) = self
            .changed
            .wait_timeout_while(self.lock(), pause, |i| i.stopping.is_none())
            .unwrap_or_else(|e| e.into_inner());
        let Some(at) = inner.stopping else {
            return true;
        };
        drop(inner);
        let left = SHUTDOWN_GRACE.saturating_sub(at.elapsed());
        // Stopping: retry every half second until the grace runs out.
        std::thread::sleep(left.min(Duration::from_millis(500)));
        !left.is_zero()
    }

    /// Gives up on everything held (a shutdown the store did not come back for): answers
    /// whoever waits and returns how many records were not written.
    pub fn abandon(&self) -> usize {
        let mut inner = self.lock();
        for item in std::mem::take(&mut inner.items) {
            match item {
                Msg::Flush(ack) => {
                    let _ = ack.send(Err("the recorder stopped".into()));
                }
                Msg::Stop(ack) => {
                    let _ = ack.send(());
                }
                Msg::Entry(_) | Msg::Prune(_) => {}
            }
        }
        std::mem::take(&mut inner.records)
    }

    pub fn available(&self) -> bool {
        self.lock().refused.is_none()
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            refused: inner.refused.clone(),
            since_ms: inner.since_ms,
            held: inner.records,
            dropped: inner.dropped,
            limit: self.limit,
        }
    }
}

fn leading_entries(inner: &mut Inner, max: usize) -> Vec<Entry> {
    let mut batch = Vec::new();
    while batch.len() < max {
        match inner.items.pop_front() {
            Some(Msg::Entry(e)) => batch.push(*e),
            Some(other) => {
                inner.items.push_front(other);
                break;
            }
            None => break,
        }
    }
    batch
}
