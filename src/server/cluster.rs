//! Several nodes on one Postgres database. An admin write changes what this node holds in
//! memory and announces the change; every node hears the others' announcements on a
//! listening connection of its own and reloads what changed, and reloads everything when that
//! connection comes back (announcements made while it was away are lost). The same
//! connection hears of every node's committed request records, which it reads back, in seq
//! order, for live tails.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::state::AppState;
use crate::api::logs::LogFilter;
use crate::observe::recorder::{Committed, LIVE_BACKLOG};
use crate::store::listen::{Heard, Listener};
use crate::store::StoreResult;

/// What an admin write changed in the memory of every node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "topic", rename_all = "snake_case")]
pub enum Topic {
    Keys,
    Integrations,
    Configs,
    Guardrails,
    Policies,
    Workspaces,
    Library,
    /// The cached answers of a workspace (all when `None`) in a namespace (all when `None`).
    CachePurge {
        workspace: Option<String>,
        namespace: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Announcement {
    node: String,
    #[serde(flatten)]
    topic: Topic,
}

pub struct Cluster {
    /// Names this node in its announcements, so that it skips its own.
    node: String,
    /// Every node's committed records, in seq order.
    records: broadcast::Sender<Committed>,
    /// Until [`listen`] takes it.
    listener: Mutex<Option<Listener>>,
}

impl Cluster {
    pub fn new(listener: Listener) -> Cluster {
        Cluster {
            node: crate::store::new_id(),
            records: broadcast::channel(LIVE_BACKLOG).0,
            listener: Mutex::new(Some(listener)),
        }
    }
}

/// How long the listener waits for news before it checks whether the server is closing.
const WAIT: Duration = Duration::from_millis(500);
/// The pause between attempts to reconnect the listener.
const RETRY: Duration = Duration::from_secs(1);
/// Records read back per query.
const PAGE: u32 = 1000;

impl AppState {
    /// Puts an admin change in force here and on the other nodes.
    pub fn changed(&self, topic: Topic) -> StoreResult<()> {
        self.apply(&topic)?;
        self.announce(topic);
        Ok(())
    }

    /// Tells the other nodes about a change already in force here. The change is stored by
    /// then, so a failure is a warning: nodes that miss it reload everything when their
    /// listener reconnects.
    pub fn announce(&self, topic: Topic) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let payload = Announcement {
            node: cluster.node.clone(),
            topic,
        };
        let payload = serde_json::to_string(&payload).expect("plain data");
        if let Err(e) = self.store.announce_change(&payload) {
            eprintln!("warning: the other nodes were not told of a change ({payload}): {e}");
        }
    }

    fn apply(&self, topic: &Topic) -> StoreResult<()> {
        match topic {
            Topic::Keys => self.reload_keys(),
            Topic::Integrations => self.reload_integrations(),
            Topic::Configs => self.reload_configs(),
            Topic::Guardrails => self.reload_guardrails(),
            Topic::Policies => self.reload_policies(),
            Topic::Workspaces => self.reload_workspaces(),
            Topic::Library => self.reload_library(),
            Topic::CachePurge {
                workspace,
                namespace,
            } => {
                self.cache.purge(workspace.as_deref(), namespace.as_deref());
                Ok(())
            }
        }
    }

    /// Live records for a tail: every node's on Postgres, this node's on SQLite.
    pub fn subscribe_records(&self) -> broadcast::Receiver<Committed> {
        match &self.cluster {
            Some(cluster) => cluster.records.subscribe(),
            None => self.recorder.subscribe(),
        }
    }
}

/// Starts the listener's thread on Postgres; nothing on SQLite. The thread ends once the
/// server is closing or gone.
pub fn listen(state: &Arc<AppState>, address: &str) -> Result<(), String> {
    let Some(cluster) = &state.cluster else {
        return Ok(());
    };
    let Some(mut listener) = cluster
        .listener
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return Ok(());
    };
    listener.set_node(address)?;
    let seen = state.store.last_log_seq().map_err(|e| e.to_string())?;
    let state = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("tollgate-listen".into())
        .spawn(move || follow(state, listener, seen))
        .map(drop)
        .map_err(|e| format!("starting the cluster listener: {e}"))
}

/// `seen`: the highest seq published to tails, or passed over while none listened.
fn follow(state: Weak<AppState>, mut listener: Listener, mut seen: i64) {
    let mut lost = false;
    loop {
        let heard = listener.next(WAIT);
        let Some(state) = state.upgrade() else {
            return;
        };
        if *state.closing.borrow() {
            return;
        }
        let heard = match heard {
            Ok(heard) => heard,
            Err(e) => {
                if !lost {
                    eprintln!(
                        "warning: {e}; changes made on other nodes are not applied here until \
                         it is back (retrying every {} s)",
                        RETRY.as_secs()
                    );
                }
                lost = true;
                drop(state);
                std::thread::sleep(RETRY);
                continue;
            }
        };
        for h in heard {
            match h {
                Heard::Connected => {
                    if std::mem::take(&mut lost) {
                        eprintln!("the listening connection to the database is back");
                    }
                    if let Err(e) = state.reload_all() {
                        eprintln!("warning: reloading after the listener reconnected: {e}");
                    }
                    seen = publish_records(&state, seen, None);
                }
                Heard::Change(payload) => hear_change(&state, &payload),
                Heard::Records(last) => seen = publish_records(&state, seen, Some(last)),
            }
        }
    }
}

fn hear_change(state: &AppState, payload: &str) {
    let applied = match serde_json::from_str::<Announcement>(payload) {
        Ok(a) if Some(&a.node) == state.cluster.as_ref().map(|c| &c.node) => return,
        Ok(a) => state.apply(&a.topic),
        // From a newer node, say: whatever it changed is in the store.
        Err(_) => state.reload_all(),
    };
    if let Err(e) = applied {
        eprintln!("warning: applying a change made on another node ({payload}): {e}");
    }
}

/// Publishes the records committed after `seen` to the tails, if any; returns the new `seen`.
/// `last` is the highest seq known committed (unknown after a reconnection).
fn publish_records(state: &AppState, seen: i64, last: Option<i64>) -> i64 {
    let Some(cluster) = &state.cluster else {
        return seen;
    };
    if cluster.records.receiver_count() == 0 {
        return match last {
            Some(last) => seen.max(last),
            None => state.store.last_log_seq().unwrap_or(seen),
        };
    }
    let mut seen = seen;
    loop {
        let rows = match state.store.logs_after(seen, &LogFilter::default(), PAGE) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("warning: reading other nodes' records for live tails: {e}");
                return seen;
            }
        };
        let full = rows.len() == PAGE as usize;
        for (seq, record) in rows {
            seen = seq;
            let _ = cluster.records.send(Committed {
                seq,
                record: Arc::new(record),
            });
        }
        if !full {
            return seen;
        }
    }
}
