//! Postgres's LISTEN/NOTIFY between the nodes that share a database: each node announces its
//! admin changes and its committed request records, and hears the others' on one connection of
//! its own. A SQLite store has one node, so there is nothing to announce or hear.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::db::{self, params, Db};
use super::{Location, Store, StoreError, StoreResult};

/// Admin changes; the payload is the server's (what changed, on which node).
const CHANGES: &str = "tollgate_changes";
/// Committed request records; the payload is the highest seq of the commit.
pub(super) const RECORDS: &str = "tollgate_records";
/// What the listening connection is called in `pg_stat_activity`, followed by the node's
/// address.
const APPLICATION_NAME: &str = "tollgate-listen";

/// Something the nodes announced, or the news that some may have been missed.
#[derive(Debug)]
pub enum Heard {
    /// The listener reconnected: whatever was announced while it was away is lost.
    Connected,
    Change(String),
    /// The records up to this seq are committed.
    Records(i64),
}

/// The dedicated listening connection, reconnected on the next call after it is lost.
pub struct Listener {
    url: String,
    application_name: String,
    client: Option<postgres::Client>,
}

impl Listener {
    /// Names the connection after the node's address, so an operator sees whose it is.
    pub fn set_node(&mut self, address: &str) -> Result<(), String> {
        self.application_name = format!("{APPLICATION_NAME} {address}");
        match &mut self.client {
            Some(client) => {
                let sql = format!(
                    "SET application_name = '{}'",
                    self.application_name.replace('\'', "''")
                );
                db::blocking(|| client.batch_execute(&sql))
                    .map_err(|e| format!("naming the listening connection: {}", db::Error::Pg(e)))
            }
            None => Ok(()),
        }
    }

    /// Waits up to `wait` for announcements and returns them, oldest first. An error means the
    /// database cannot be reached now; call again later to retry.
    pub fn next(&mut self, wait: Duration) -> Result<Vec<Heard>, String> {
        let mut heard = Vec::new();
        let client = match &mut self.client {
            Some(client) => client,
            None => {
                let client = self.connect()?;
                heard.push(Heard::Connected);
                self.client.insert(client)
            }
        };
        let received: Result<Vec<_>, _> = {
            let mut notifications = client.notifications();
            let first = notifications.timeout_iter(wait).next();
            match first {
                Ok(Some(first)) => notifications.iter().collect().map(|mut rest: Vec<_>| {
                    rest.insert(0, first);
                    rest
                }),
                other => other.map(|_| Vec::new()),
            }
        };
        let lost = match received {
            Ok(list) => {
                heard.extend(list.iter().filter_map(|n| match n.channel() {
                    CHANGES => Some(Heard::Change(n.payload().to_string())),
                    RECORDS => n.payload().parse().ok().map(Heard::Records),
                    _ => None,
                }));
                client
                    .is_closed()
                    .then(|| "the server closed it".to_string())
            }
            Err(e) => Some(db::Error::Pg(e).to_string()),
        };
        if let Some(why) = lost {
            self.client = None;
            if heard.is_empty() {
                return Err(format!("the listening connection was lost: {why}"));
            }
        }
        Ok(heard)
    }

    fn connect(&self) -> Result<postgres::Client, String> {
        // pg_config's keepalives notice a peer that vanished without closing, which a
        // connection that only waits would otherwise never learn.
        let mut config = db::pg_config(&self.url)?;
        config.application_name(&self.application_name);
        let mut client = db::connect_client(&config, &self.url)?;
        let listen = format!("LISTEN {CHANGES}; LISTEN {RECORDS}");
        db::blocking(|| client.batch_execute(&listen))
            .map_err(|e| format!("LISTEN failed: {}", db::Error::Pg(e)))?;
        Ok(client)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The client owns a runtime, which may not be dropped on an async task's thread.
        if let Some(client) = self.client.take() {
            db::blocking(move || drop(client));
        }
    }
}

impl Store {
    /// A listener to what the other nodes announce, already listening, so that whatever is
    /// loaded after this call misses no change; `None` on SQLite.
    pub fn listener(&self) -> StoreResult<Option<Listener>> {
        let Location::Postgres(url) = &self.location else {
            return Ok(None);
        };
        let mut listener = Listener {
            url: url.clone(),
            application_name: APPLICATION_NAME.into(),
            client: None,
        };
        listener.client = Some(listener.connect().map_err(StoreError::Other)?);
        Ok(Some(listener))
    }

    /// Tells the other nodes about an admin change; nothing to do on SQLite.
    pub fn announce_change(&self, payload: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        if let Db::Pg(_) = &*conn {
            conn.execute(
                &format!("SELECT pg_notify('{CHANGES}', ?1)"),
                &params![payload],
            )?;
        }
        Ok(())
    }

    /// The highest seq of the records, 0 when there are none.
    pub fn last_log_seq(&self) -> StoreResult<i64> {
        let mut conn = self.logs_conn();
        Ok(conn
            .query_row("SELECT MAX(seq) FROM logs", &[], |r| {
                r.get::<Option<i64>>(0)
            })?
            .unwrap_or(0))
    }
}
