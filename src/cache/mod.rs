//! The response cache: successful answers kept in memory, bounded in bytes (least recently
//! used evicted first) and in time (each entry's `max_age`), found by exact match on the
//! normalised request or, in the semantic mode, by a prompt embedding's similarity. Every
//! change is also sent to a writer task that keeps the store's copy, so the cache survives a
//! restart; a lookup never touches the database.

pub mod key;
mod memory;
pub mod semantic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub use key::{Key, Parts};
use memory::Memory;

/// `--cache-size` when not given, in megabytes.
pub const DEFAULT_SIZE_MB: u64 = 128;

/// Bookkeeping counted into an entry's size beside its bodies.
const ENTRY_OVERHEAD: usize = 200;

/// What the client got.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A JSON body.
    Json(Bytes),
    /// A stream's frames (`data: ...\n\n` events), replayed in order.
    Frames(Vec<Bytes>),
}

#[derive(Debug)]
pub struct Entry {
    pub key: Key,
    /// Set on entries with an embedding: the semantic neighbours they may match.
    pub group: Option<Key>,
    pub embedding: Option<Vec<f32>>,
    /// The caller's workspace id (empty for organisation keys).
    pub partition: String,
    pub namespace: Option<String>,
    pub answer: Answer,
    pub integration: Option<String>,
    /// The model as sent.
    pub model: Option<String>,
    /// What the answer cost when it was made: what each hit saves.
    pub cost: Option<f64>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl Entry {
    pub fn size(&self) -> usize {
        let answer = match &self.answer {
            Answer::Json(b) => b.len(),
            Answer::Frames(f) => f.iter().map(|b| b.len() + 16).sum(),
        };
        let embedding = self.embedding.as_ref().map_or(0, |e| e.len() * 4);
        let texts = [&self.integration, &self.model, &self.namespace]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum::<usize>();
        ENTRY_OVERHEAD + answer + embedding + texts + self.partition.len()
    }
}

/// How a request met the cache: `x-portkey-cache-status` (`DISABLED` when none applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Hit,
    SemanticHit,
    Miss,
    SemanticMiss,
    Refresh,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::SemanticHit => "SEMANTIC HIT",
            Status::Miss => "MISS",
            Status::SemanticMiss => "SEMANTIC MISS",
            Status::Refresh => "REFRESH",
        }
    }

    pub fn is_hit(self) -> bool {
        matches!(self, Status::Hit | Status::SemanticHit)
    }
}

/// What the writer task applies to the store, in order.
#[derive(Debug)]
pub enum Write {
    Put(Arc<Entry>),
    Delete(Vec<Key>),
}

/// Lookups since the server started, by outcome.
#[derive(Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub semantic_hits: AtomicU64,
    pub misses: AtomicU64,
    pub semantic_misses: AtomicU64,
    pub refreshes: AtomicU64,
}

impl Counters {
    pub fn count(&self, status: Status) {
        let counter = match status {
            Status::Hit => &self.hits,
            Status::SemanticHit => &self.semantic_hits,
            Status::Miss => &self.misses,
            Status::SemanticMiss => &self.semantic_misses,
            Status::Refresh => &self.refreshes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Entries and bytes of one namespace (`None`: requests without one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub entries: u64,
    pub bytes: u64,
}

pub struct Snapshot {
    pub total: Tally,
    pub max_bytes: u64,
    pub namespaces: BTreeMap<Option<String>, Tally>,
}

pub struct Cache {
    memory: Mutex<Memory>,
    pub counters: Counters,
    /// Taken at shutdown, which ends the writer task once it has applied the rest.
    writes: Mutex<Option<UnboundedSender<Write>>>,
}

impl Cache {
    /// A cache of at most `max_bytes`, and the receiving end of its writes for the store.
    pub fn new(max_bytes: usize) -> (Cache, UnboundedReceiver<Write>) {
        let (tx, rx) = unbounded_channel();
        let cache = Cache {
            memory: Mutex::new(Memory::new(max_bytes)),
            counters: Counters::default(),
            writes: Mutex::new(Some(tx)),
        };
        (cache, rx)
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, write: Write) {
        if let Some(tx) = &*self.writes.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(write);
        }
    }

    fn forget(&self, gone: Vec<Key>) {
        if !gone.is_empty() {
            self.send(Write::Delete(gone));
        }
    }

    /// Replaces what the cache holds with the store's entries, newest first, as far as the
    /// bound allows; returns the keys of those left out, for the store to delete.
    pub fn load(&self, entries: Vec<Entry>) -> Vec<Key> {
        let mut memory = self.memory();
        *memory = Memory::new(memory.max_bytes());
        let mut left_out = Vec::new();
        for entry in entries {
            let key = entry.key;
            if memory.bytes() + entry.size() > memory.max_bytes() {
                left_out.push(key);
                continue;
            }
            memory.put(Arc::new(entry));
        }
        left_out
    }

    pub fn get(&self, key: &Key, now_ms: i64) -> Option<Arc<Entry>> {
        let mut gone = Vec::new();
        let found = self.memory().get(key, now_ms, &mut gone);
        self.forget(gone);
        found
    }

    pub fn nearest(
        &self,
        group: &Key,
        embedding: &[f32],
        threshold: f64,
        now_ms: i64,
    ) -> Option<Arc<Entry>> {
        let mut gone = Vec::new();
        let found = self
            .memory()
            .nearest(group, embedding, threshold, now_ms, &mut gone);
        self.forget(gone);
        found
    }

    pub fn put(&self, entry: Entry) {
        let entry = Arc::new(entry);
        let evicted = self.memory().put(entry.clone());
        if let Some(evicted) = evicted {
            self.forget(evicted);
            self.send(Write::Put(entry));
        }
    }

    /// Removes the entries of `partition` (every partition when `None`) in `namespace` (every
    /// namespace when `None`); returns how many.
    pub fn purge(&self, partition: Option<&str>, namespace: Option<&str>) -> u64 {
        let gone = self.memory().remove_where(|e| {
            partition.is_none_or(|p| e.partition == p)
                && namespace.is_none_or(|n| e.namespace.as_deref() == Some(n))
        });
        let n = gone.len() as u64;
        self.forget(gone);
        n
    }

    /// Removes the expired entries.
    pub fn sweep(&self, now_ms: i64) {
        let gone = self.memory().remove_where(|e| e.expires_ms <= now_ms);
        self.forget(gone);
    }

    /// Sizes, overall and per namespace, of `partition`'s entries (all when `None`).
    pub fn snapshot(&self, partition: Option<&str>) -> Snapshot {
        let memory = self.memory();
        let mut snapshot = Snapshot {
            total: Tally::default(),
            max_bytes: memory.max_bytes() as u64,
            namespaces: BTreeMap::new(),
        };
        for e in memory
            .entries()
            .filter(|e| partition.is_none_or(|p| e.partition == p))
        {
            for tally in [
                &mut snapshot.total,
                snapshot.namespaces.entry(e.namespace.clone()).or_default(),
            ] {
                tally.entries += 1;
                tally.bytes += e.size() as u64;
            }
        }
        snapshot
    }

    /// Stops sending writes: the writer task ends after applying those already sent.
    pub fn close(&self) {
        self.writes.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
