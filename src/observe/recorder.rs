//! The recorder: records leave the request path through a bounded channel to one writer
//! thread, which commits them in batches and then publishes each committed record to live
//! subscribers (`/v1/logs/stream`).
//!
//! A batch is whatever is queued when the writer is free (up to [`MAX_BATCH`]), so under light
//! load each record is committed as soon as it arrives, and under heavy load the cost of a
//! commit is shared. When the channel is full, requests wait for room rather than drop their
//! record. Graceful shutdown commits everything queued. A SIGKILL loses what is queued and not
//! yet committed: at most [`CAPACITY`] + [`MAX_BATCH`] records, and in practice only requests
//! that finished in the last few milliseconds (docs/observability.md has the measured bound).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::record::Entry;
use crate::api::logs::LogRecord;
use crate::store::logs::LogWriter;
use crate::store::{Store, StoreResult};

/// Records that may wait in the channel.
pub const CAPACITY: usize = 8192;
/// Records committed in one transaction at most.
pub const MAX_BATCH: usize = 1024;
/// Records a live subscriber may fall behind by before it must catch up from the store.
const LIVE_BACKLOG: usize = 4096;
/// Old records pruned per transaction.
const PRUNE_CHUNK: usize = 5000;

/// A record as committed, with its position (the `seq` that cursors and `Last-Event-ID` use).
pub struct Committed {
    pub seq: i64,
    pub record: LogRecord,
}

enum Msg {
    Entry(Box<Entry>),
    /// Answered once everything sent before it is committed.
    Flush(oneshot::Sender<()>),
    /// Delete records made before this time (milliseconds since the epoch).
    Prune(i64),
    Stop(oneshot::Sender<()>),
}

/// What the writer does with each batch once it is committed.
pub type OnCommit = Box<dyn Fn(&[Arc<Committed>]) + Send>;

pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    live: broadcast::Sender<Arc<Committed>>,
    waits: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the writer thread on a connection of its own.
    pub fn start(store: &Store, on_commit: OnCommit) -> StoreResult<Recorder> {
        let writer = store.log_writer()?;
        let (tx, rx) = mpsc::channel(CAPACITY);
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        let publish = live.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-recorder".into())
            .spawn(move || write_loop(writer, rx, publish, on_commit))
            .map_err(|e| crate::store::StoreError::Other(format!("starting the recorder: {e}")))?;
        Ok(Recorder {
            tx,
            live,
            waits: AtomicU64::new(0),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a record; waits for room when the queue is full.
    pub async fn record(&self, entry: Entry) {
        match self.tx.try_send(Msg::Entry(Box::new(entry))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                if self.tx.send(msg).await.is_err() {
                    eprintln!("error: a request record arrived after the recorder stopped");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                eprintln!("error: a request record arrived after the recorder stopped");
            }
        }
    }

    /// Queues a record from code that cannot wait (a stream dropped by its client).
    pub fn record_detached(self: &Arc<Self>, entry: Entry) {
        if let Err(mpsc::error::TrySendError::Full(Msg::Entry(entry))) =
            self.tx.try_send(Msg::Entry(Box::new(entry)))
        {
            let recorder = self.clone();
            tokio::spawn(async move { recorder.record(*entry).await });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.live.subscribe()
    }

    /// How many times a request waited for room in the queue.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    pub fn queue_depth(&self) -> usize {
        CAPACITY - self.tx.capacity()
    }

    /// Returns once every record queued before the call is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    pub async fn prune_before(&self, before_ms: i64) {
        let _ = self.tx.send(Msg::Prune(before_ms)).await;
    }

    /// Commits everything queued and stops the writer.
    pub async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

struct Writer {
    store: LogWriter,
    publish: broadcast::Sender<Arc<Committed>>,
    on_commit: OnCommit,
}

impl Writer {
    /// Commits a batch, retrying until the store takes it: a record is never dropped, and
    /// while the store refuses (a full disk), requests wait on the full queue instead.
    fn commit(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut pause = Duration::from_millis(100);
        let seqs = loop {
            match self.store.insert(&entries) {
                Ok(seqs) => break seqs,
                Err(e) => {
                    eprintln!(
                        "error: could not write {} request records: {e}; retrying in {} ms",
                        entries.len(),
                        pause.as_millis()
                    );
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        };
        let committed: Vec<Arc<Committed>> = entries
            .into_iter()
            .zip(seqs)
            .map(|(e, seq)| {
                Arc::new(Committed {
                    seq,
                    record: e.record,
                })
            })
            .collect();
        for c in &committed {
            // No subscribers is the usual case, not an error.
            let _ = self.publish.send(c.clone());
        }
        (self.on_commit)(&committed);
    }

    fn prune(&mut self, before_ms: i64, rx: &mut mpsc::Receiver<Msg>, acks: &mut Vec<Ack>) {
        loop {
            let pruned = match self.store.prune(before_ms, PRUNE_CHUNK) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("warning: pruning old request records failed: {e}");
                    return;
                }
            };
            if pruned < PRUNE_CHUNK {
                return;
            }
            // Between chunks, commit what arrived meanwhile so requests never wait long.
            let mut batch = Vec::new();
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => sort(msg, &mut batch, acks),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }
}

enum Ack {
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    Prune(i64),
}

fn sort(msg: Msg, batch: &mut Vec<Entry>, acks: &mut Vec<Ack>) {
    match msg {
        Msg::Entry(e) => batch.push(*e),
        Msg::Flush(a) => acks.push(Ack::Flush(a)),
        Msg::Stop(a) => acks.push(Ack::Stop(a)),
        Msg::Prune(t) => acks.push(Ack::Prune(t)),
    }
}

fn write_loop(
    store: LogWriter,
    mut rx: mpsc::Receiver<Msg>,
    publish: broadcast::Sender<Arc<Committed>>,
    on_commit: OnCommit,
) {
    let mut writer = Writer {
        store,
        publish,
        on_commit,
    };
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut acks = Vec::new();
        sort(first, &mut batch, &mut acks);
        while batch.len() < MAX_BATCH && acks.is_empty() {
            match rx.try_recv() {
                Ok(msg) => sort(msg, &mut batch, &mut acks),
                Err(_) => break,
            }
        }
        writer.commit(batch);
        let mut pending = std::collections::VecDeque::from(acks);
        while let Some(ack) = pending.pop_front() {
            match ack {
                Ack::Flush(a) => {
                    let _ = a.send(());
                }
                Ack::Prune(t) => {
                    let mut more = Vec::new();
                    writer.prune(t, &mut rx, &mut more);
                    pending.extend(more);
                }
                Ack::Stop(a) => {
                    rx.close();
                    let mut rest = Vec::new();
                    let mut rest_acks = Vec::from(pending);
                    while let Ok(msg) = rx.try_recv() {
                        sort(msg, &mut rest, &mut rest_acks);
                    }
                    writer.commit(rest);
                    for ack in rest_acks {
                        if let Ack::Flush(a) | Ack::Stop(a) = ack {
                            let _ = a.send(());
                        }
                    }
                    let _ = a.send(());
                    return;
                }
            }
        }
    }
}
