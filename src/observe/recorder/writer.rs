//! The writer thread: commits what the backlog holds, in order, then publishes each committed
//! record to live subscribers, the metrics and the OTLP exporter. While the store refuses a
//! batch it retries with backoff; when idle it pings the store now and then, so its state is
//! known without traffic.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::backlog::{Backlog, Taken};
use super::{Committed, Msg, MAX_BATCH};
use crate::observe::metrics::Metrics;
use crate::observe::otlp::OtlpExporter;
use crate::observe::record::Entry;
use crate::store::logs::LogWriter;

/// Old records pruned per transaction.
const PRUNE_CHUNK: usize = 5000;
/// The first retry of a refused batch waits this long, doubling up to [`RETRY_MAX`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// An idle writer pings the store this often while it takes writes (while it refuses them,
/// every [`RETRY_MAX`]).
const PING_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Writer {
    pub store: LogWriter,
    pub publish: broadcast::Sender<Committed>,
    pub metrics: Arc<Metrics>,
    pub otlp: Option<Arc<OtlpExporter>>,
}

/// A shutdown gave up on a store that did not come back.
struct GaveUp;

pub(super) fn run(mut writer: Writer, backlog: Arc<Backlog>) {
    loop {
        let idle = if backlog.available() {
            PING_EVERY
        } else {
            RETRY_MAX
        };
        let done = match backlog.take(idle) {
            None => {
                writer.ping(&backlog);
                Ok(())
            }
            Some(Taken::Entries(batch)) => writer.commit(batch, &backlog),
            Some(Taken::Ack(Msg::Prune(before_ms))) => writer.prune(before_ms, &backlog),
            Some(Taken::Ack(Msg::Flush(ack))) => {
                let _ = ack.send(Ok(()));
                Ok(())
            }
            Some(Taken::Ack(Msg::Stop(ack))) => {
                let dropped = backlog.snapshot().dropped;
                if dropped > 0 {
                    eprintln!("warning: {dropped} request records were dropped while the store was unavailable");
                }
                let _ = ack.send(());
                return;
            }
            Some(Taken::Ack(Msg::Entry(_))) => unreachable!("records are taken as entries"),
        };
        if done.is_err() {
            let snapshot = backlog.snapshot();
            let lost = backlog.abandon();
            eprintln!(
                "error: {lost} request records could not be written before shutdown: the store is unavailable ({}); {} were dropped before",
                snapshot.refused.unwrap_or_default(),
                snapshot.dropped
            );
            return;
        }
    }
}

impl Writer {
    /// Commits a batch, retrying while the store refuses it (until a shutdown gives up).
    fn commit(&mut self, entries: Vec<Entry>, backlog: &Backlog) -> Result<(), GaveUp> {
        let mut pause = FIRST_RETRY;
        let seqs = loop {
            match self.store.insert(&entries) {
                Ok(seqs) => break seqs,
                Err(e) => {
                    backlog.refused(&e.to_string(), pause);
                    if !backlog.pause(pause) {
                        return Err(GaveUp);
                    }
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        };
        backlog.wrote(&entries);
        self.metrics.records_written(seqs.len() as u64);
        self.metrics.observe(entries.iter().map(|e| &e.record));
        // A record is shared only when someone takes it: live subscribers or the exporter.
        let live = self.publish.receiver_count() > 0;
        if !live && self.otlp.is_none() {
            return Ok(());
        }
        let mut exported = Vec::new();
        for (e, seq) in entries.into_iter().zip(seqs) {
            let record = Arc::new(e.into_record());
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
        Ok(())
    }

    /// Deletes the records made before `before_ms`, a chunk at a time, committing what
    /// arrived between chunks so that records never wait long.
    fn prune(&mut self, before_ms: i64, backlog: &Backlog) -> Result<(), GaveUp> {
        loop {
            let pruned = match self.store.prune(before_ms, PRUNE_CHUNK) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("warning: pruning old request records failed: {e}");
                    return Ok(());
                }
            };
            if pruned < PRUNE_CHUNK {
                return Ok(());
            }
            let batch = backlog.take_entries(MAX_BATCH);
            if !batch.is_empty() {
                self.commit(batch, backlog)?;
            }
        }
    }

    fn ping(&mut self, backlog: &Backlog) {
        match self.store.ping() {
            Ok(()) => backlog.wrote(&[]),
            Err(e) => backlog.refused(&e.to_string(), RETRY_MAX),
        }
    }
}
