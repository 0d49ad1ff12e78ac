//! The recorder: records leave the request path through a bounded channel to an intake
//! thread, which gathers them into a [`backlog`]; a writer thread commits the backlog in
//! batches and then publishes each committed record to live subscribers (`/v1/logs/stream`).
//!
//! A batch is what arrives within [`BATCH_WINDOW`] of its first record (up to [`MAX_BATCH`]),
//! so under heavy load the cost of a commit is shared by many records. While the store takes
//! writes, a full channel makes requests wait for room rather than drop their record; while it
//! refuses them (a lost database, a full disk), the intake keeps the channel empty and the
//! backlog holds records up to its [`Limit`], so the gateway keeps serving. Graceful shutdown
//! commits everything held. A SIGKILL loses what is held and not yet committed: while the store
//! takes writes, in practice only requests that finished in the last few milliseconds
//! (docs/observability.md states the bounds and how they are tested).

mod backlog;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::metrics::Metrics;
use super::otlp::OtlpExporter;
use super::record::Entry;
use crate::api::logs::LogRecord;
use crate::store::{Store, StoreResult};
use backlog::Backlog;
pub use backlog::{Limit, Snapshot, DEFAULT_MB, DEFAULT_RECORDS};

/// Records that may wait in the channel.
pub const CAPACITY: usize = 2048;
/// Records committed in one transaction at most.
pub const MAX_BATCH: usize = 1024;
/// After the first record of a batch, the intake gathers what arrives for this long, so a busy
/// gateway commits a few large transactions instead of many small ones (each commit rewrites
/// the last page of the table and of every index). It is also the most a record waits.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Records a live subscriber may fall behind by before it must catch up from the store.
pub const LIVE_BACKLOG: usize = 4096;

/// A record as committed, with its position (the `seq` that cursors and `Last-Event-ID` use).
#[derive(Clone)]
pub struct Committed {
    pub seq: i64,
    pub record: Arc<LogRecord>,
}

enum Msg {
    Entry(Box<Entry>),
    /// Answered once everything sent before it is committed, or at once with why not while
    /// the store refuses records.
    Flush(oneshot::Sender<Result<(), String>>),
    /// Delete records made before this time (milliseconds since the epoch).
    Prune(i64),
    Stop(oneshot::Sender<()>),
}

pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    live: broadcast::Sender<Committed>,
    pub metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    /// Shared with the writer thread, and shut down after it.
    otlp: Mutex<Option<Arc<OtlpExporter>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the intake and writer threads, the writer on a connection of its own. Each
    /// committed batch updates `metrics` and goes to `otlp`, if set; `limit` bounds what is
    /// held while the store refuses records.
    pub fn start(
        store: &Store,
        metrics: Arc<Metrics>,
        otlp: Option<OtlpExporter>,
        limit: Limit,
    ) -> StoreResult<Recorder> {
        let otlp = otlp.map(Arc::new);
        let writer = writer::Writer {
            store: store.log_writer()?,
            publish: broadcast::channel(LIVE_BACKLOG).0,
            metrics: metrics.clone(),
            otlp: otlp.clone(),
        };
        let live = writer.publish.clone();
        let (tx, rx) = mpsc::channel(CAPACITY);
        let backlog = Arc::new(Backlog::new(limit));
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|e| crate::store::StoreError::Other(format!("starting the recorder: {e}")))
        };
        let (intake_side, writer_side) = (backlog.clone(), backlog.clone());
        let threads = vec![
            spawn(
                "tollgate-intake",
                Box::new(move || intake(rx, &intake_side)),
            )?,
            spawn(
                "tollgate-recorder",
                Box::new(move || writer::run(writer, writer_side)),
            )?,
        ];
        Ok(Recorder {
            tx,
            live,
            metrics,
            backlog,
            otlp: Mutex::new(otlp),
            threads: Mutex::new(threads),
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

    /// The store's state as the writer last found it, and the records held.
    pub fn store_state(&self) -> Snapshot {
        let mut snapshot = self.backlog.snapshot();
        snapshot.held += CAPACITY - self.tx.capacity();
        snapshot
    }

    /// The Prometheus exposition of the gateway's metrics.
    pub fn render_metrics(&self) -> String {
        self.metrics.render(&self.store_state(), CAPACITY)
    }

    /// Returns once every record queued before the call is committed; or, while the store
    /// refuses records, at once with why (the records stay held and are written later).
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .await
            .map_err(|_| "the recorder stopped".to_string())?;
        done.await
            .unwrap_or_else(|_| Err("the recorder stopped".into()))
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
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let otlp = self.otlp.lock().unwrap_or_else(|e| e.into_inner()).take();
        // The writer, which held the other reference, has ended.
        if let Some(Ok(exporter)) = otlp.map(Arc::try_unwrap) {
            exporter.shutdown().await;
        }
    }
}

/// The intake thread: takes records off the channel as they come, a batch window at a time,
/// and hands them to the backlog (which waits for room while the store takes writes). Ends
/// after a stop, with everything sent before the stop handed over ahead of it.
fn intake(mut rx: mpsc::Receiver<Msg>, backlog: &Backlog) {
    while let Some(first) = rx.blocking_recv() {
        let gather = matches!(first, Msg::Entry(_));
        let mut msgs = vec![first];
        if gather {
            // Sleeping rather than parking on the channel also spares every sender a wake-up.
            std::thread::sleep(BATCH_WINDOW);
        }
        while msgs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(msg) => msgs.push(msg),
                Err(_) => break,
            }
        }
        let Some(stop) = msgs.iter().position(|m| matches!(m, Msg::Stop(_))) else {
            backlog.push(msgs);
            continue;
        };
        let stop = msgs.remove(stop);
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            msgs.push(msg);
        }
        msgs.push(stop);
        backlog.push(msgs);
        return;
    }
}
