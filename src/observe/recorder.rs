//! The recorder: records leave the request path through a bounded channel to one writer
//! thread, which commits them in batches and then publishes each committed record to live
//! subscribers (`/v1/logs/stream`).
//!
//! A batch is what arrives within [`BATCH_WINDOW`] of its first record (up to [`MAX_BATCH`]),
//! so under heavy load the cost of a commit is shared by many records. When the channel is
//! full, requests wait for room rather than drop their record. Graceful shutdown commits everything queued. A SIGKILL loses what is queued and not
//! yet committed: at most [`CAPACITY`] + [`MAX_BATCH`] records, and in practice only requests
//! that finished in the last few milliseconds (docs/observability.md states the bound and how
//! it is tested).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::metrics::Metrics;
use super::otlp::OtlpExporter;
use super::record::Entry;
use crate::api::logs::LogRecord;
use crate::store::logs::LogWriter;
use crate::store::{Store, StoreResult};

/// Records that may wait in the channel.
pub const CAPACITY: usize = 2048;
/// Records committed in one transaction at most.
pub const MAX_BATCH: usize = 1024;
/// After the first record of a batch, the writer gathers what arrives for this long, so a busy
/// gateway commits a few large transactions instead of many small ones (each commit rewrites
/// the last page of the table and of every index). It is also the most a record waits.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Records a live subscriber may fall behind by before it must catch up from the store.
pub const LIVE_BACKLOG: usize = 4096;
/// Old records pruned per transaction.
const PRUNE_CHUNK: usize = 5000;

/// A record as committed, with its position (the `seq` that cursors and `Last-Event-ID` use).
#[derive(Clone)]
pub struct Committed {
    pub seq: i64,
    pub record: Arc<LogRecord>,
}

enum Msg {
    Entry(Box<Entry>),
    /// Answered once everything sent before it is committed.
    Flush(oneshot::Sender<()>),
    /// Delete records made before this time (milliseconds since the epoch).
    Prune(i64),
    Stop(oneshot::Sender<()>),
}

pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    live: broadcast::Sender<Committed>,
    pub metrics: Arc<Metrics>,
    /// Shared with the writer thread, and shut down after it.
    otlp: Mutex<Option<Arc<OtlpExporter>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the writer thread on a connection of its own. Each committed batch updates
    /// `metrics` and goes to `otlp`, if set.
    pub fn start(
        store: &Store,
        metrics: Arc<Metrics>,
        otlp: Option<OtlpExporter>,
    ) -> StoreResult<Recorder> {
        let otlp = otlp.map(Arc::new);
        let writer = Writer {
            store: store.log_writer()?,
            publish: broadcast::channel(LIVE_BACKLOG).0,
            metrics: metrics.clone(),
            otlp: otlp.clone(),
        };
        let live = writer.publish.clone();
        let (tx, rx) = mpsc::channel(CAPACITY);
        let thread = std::thread::Builder::new()
            .name("tollgate-recorder".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| crate::store::StoreError::Other(format!("starting the recorder: {e}")))?;
        Ok(Recorder {
            tx,
            live,
            metrics,
            otlp: Mutex::new(otlp),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a record; waits for room when the queue is full.
    pub async fn record(&self, entry: Entry) {
        match self.tx.try_send(Msg::Entry(Box::new(entry))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.metrics.recorder_waited();
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

    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.live.subscribe()
    }

    /// The Prometheus exposition of the gateway's metrics.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(CAPACITY - self.tx.capacity(), CAPACITY)
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

    /// Commits everything queued, stops the writer, then sends the spans still queued for
    /// export.
    pub async fn shutdown(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let otlp = self.otlp.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The writer, which held the other reference, has ended.
        if let Some(Ok(exporter)) = otlp.map(Arc::try_unwrap) {
            exporter.shutdown().await;
        }
    }
}

struct Writer {
    store: LogWriter,
    publish: broadcast::Sender<Committed>,
    metrics: Arc<Metrics>,
    otlp: Option<Arc<OtlpExporter>>,
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
        self.metrics.records_written(seqs.len() as u64);
        // A record is shared only when someone takes it: live subscribers or the exporter.
        let live = self.publish.receiver_count() > 0;
        let mut exported = Vec::new();
        for (e, seq) in entries.into_iter().zip(seqs) {
            self.metrics.observe(&e.record);
            if !live && self.otlp.is_none() {
                continue;
            }
            let record = Arc::new(e.record);
            if live {
                // A subscriber may have left since; that is not an error.
                let _ = self.publish.send(Committed {
                    seq,
                    record: record.clone(),
                });
            }
            if self.otlp.is_some() {
                exported.push(record);
            }
        }
        if let Some(otlp) = &self.otlp {
            otlp.export(exported);
        }
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

fn write_loop(mut writer: Writer, mut rx: mpsc::Receiver<Msg>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut acks = Vec::new();
        sort(first, &mut batch, &mut acks);
        if acks.is_empty() {
            // Sleeping rather than parking on the channel also spares every sender a wake-up.
            std::thread::sleep(BATCH_WINDOW);
        }
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
