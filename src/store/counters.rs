//! Budget and rate-limit counters shared by the nodes of one Postgres database (docs/postgres.md,
//! "Budgets and rate limits across nodes"). Admission claims with one conditional `UPDATE` per
//! counter, which Postgres re-checks on the newest row after waiting for its lock, so the
//! nodes' claims together never pass a limit. What each node holds and leases is also kept per
//! node, so the others give it back when the node stops being seen.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::db::{self, params, Db};
use super::{new_id, Location, Store, StoreResult};
use crate::governance::lease;
use crate::governance::shared::{
    Admission, Claim, Current, Listed, Release, Shared, SharedCounters, SharedKey, Synced,
};
use crate::observe::record::now_ms;

/// A node not seen for this long is taken for dead: what it held is given back.
pub const NODE_TIMEOUT_MS: i64 = 30_000;

/// A counter nothing holds, untouched this long and no longer current for any rule in force
/// on the node that looks, is dropped.
const IDLE_MS: i64 = 60_000;

/// After a failure, calls fail at once for this long, so governed requests do not queue up
/// behind a database that is gone.
const BACK_OFF_MS: i64 = 1_000;

pub struct PgCounters {
    /// A connection of its own, so admissions do not wait behind admin reads.
    conn: Mutex<Db>,
    node_id: String,
    /// Until when calls fail at once, and why.
    down_until: AtomicI64,
    last_error: Mutex<String>,
}

const KEY: &str = "rule_id = ?1::text AND counting = ?2::text AND grp = ?3::text \
    AND window_start = ?4::int8";

/// Reads `used, reserved, leased` from column `from` on.
fn values(r: &db::Row, from: usize) -> db::Result<Shared> {
    Ok(Shared {
        used: r.get(from)?,
        reserved: r.get(from + 1)?,
        leased: r.get(from + 2)?,
    })
}

impl Store {
    /// On Postgres, the counters this node shares with the others on the same database, with
    /// the node registered as alive; `None` on SQLite, whose node is the only one.
    pub fn shared_counters(&self) -> StoreResult<Option<Arc<dyn SharedCounters>>> {
        let Location::Postgres(_) = &self.location else {
            return Ok(None);
        };
        let counters = PgCounters {
            conn: Mutex::new(super::connect(&self.location)?),
            node_id: new_id(),
            down_until: AtomicI64::new(0),
            last_error: Mutex::default(),
        };
        counters
            .with(|db| counters.heartbeat(db, now_ms()).map(drop))
            .map_err(super::StoreError::Other)?;
        Ok(Some(Arc::new(counters)))
    }
}

impl PgCounters {
    fn with<T>(&self, f: impl FnOnce(&mut Db) -> db::Result<T>) -> Result<T, String> {
        let last_error = || self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms() < self.down_until.load(Ordering::Relaxed) {
            return Err(last_error().clone());
        }
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|e| {
            let message = format!("database error: {e}");
            // Postgres refusing a statement says nothing of the connection; a lost, refused
            // or silent one, or a server shutting down, means the database is not there.
            if e.is_unavailable() {
                *last_error() = message.clone();
                self.down_until
                    .store(now_ms() + BACK_OFF_MS, Ordering::Relaxed);
            }
            message
        })
    }

    /// Says this node is alive; true if the others had taken it for dead (its row was gone).
    fn heartbeat(&self, db: &mut Db, now: i64) -> db::Result<bool> {
        // xmax is 0 in a row the statement inserted, not in one it updated.
        db.query_row(
            "INSERT INTO governance_nodes (node_id, seen_ms) VALUES (?1, ?2)
             ON CONFLICT (node_id) DO UPDATE SET seen_ms = excluded.seen_ms
             RETURNING xmax = 0",
            &params![self.node_id, now],
            |r| r.get(0),
        )
    }

    /// Holds `claim` if it fits; `None` if it does not, or the counter does not exist yet.
    fn claim(&self, db: &mut Db, c: &Claim) -> db::Result<Option<Shared>> {
        let k = &c.key;
        db.query_opt(
            &format!(
                "WITH c AS (
                    UPDATE governance_counters
                    SET used = used + ?6::float8, reserved = reserved + ?5::float8,
                        updated_ms = ?9::int8
                    WHERE {KEY} AND used < ?7::float8
                        AND used + reserved + leased + ?5::float8 + ?6::float8 <= ?8::float8
                    RETURNING used, reserved, leased
                ), held AS (
                    INSERT INTO governance_holds AS h
                        (node_id, rule_id, counting, grp, window_start, amount)
                    SELECT ?10::text, ?1::text, ?2::text, ?3::text, ?4::int8, ?5::float8
                    FROM c WHERE ?5::float8 > 0
                    ON CONFLICT (node_id, rule_id, counting, grp, window_start)
                    DO UPDATE SET amount = h.amount + excluded.amount
                )
                SELECT used, reserved, leased FROM c"
            ),
            &params![
                k.rule_id,
                k.counting,
                k.group,
                k.window_start,
                c.hold,
                c.count,
                c.below,
                c.at_most,
                now_ms(),
                self.node_id
            ],
            |r| values(r, 0),
        )
    }

    fn find(db: &mut Db, k: SharedKey) -> db::Result<Option<Shared>> {
        db.query_opt(
            &format!("SELECT used, reserved, leased FROM governance_counters WHERE {KEY}"),
            &params![k.rule_id, k.counting, k.group, k.window_start],
            |r| values(r, 0),
        )
    }

    fn seed_row(db: &mut Db, k: SharedKey, seed: f64) -> db::Result<Shared> {
        // The no-op update makes RETURNING give the row another node made first.
        db.query_row(
            "INSERT INTO governance_counters AS c
                (rule_id, counting, grp, window_start, used, reserved, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
             ON CONFLICT (rule_id, counting, grp, window_start)
             DO UPDATE SET updated_ms = c.updated_ms
             RETURNING used, reserved, leased",
            &params![
                k.rule_id,
                k.counting,
                k.group,
                k.window_start,
                seed,
                now_ms()
            ],
            |r| values(r, 0),
        )
    }

    /// Holds `claim`, making its counter first if needed; `Err(now)` with the counter when
    /// it does not fit.
    fn claim_or_refuse(&self, db: &mut Db, c: &Claim) -> db::Result<Result<Shared, Shared>> {
        if let Some(held) = self.claim(db, c)? {
            return Ok(Ok(held));
        }
        let found = match PgCounters::find(db, c.key)? {
            Some(found) => found,
            None => {
                PgCounters::seed_row(db, c.key, c.seed)?;
                if let Some(held) = self.claim(db, c)? {
                    return Ok(Ok(held));
                }
                PgCounters::find(db, c.key)?.unwrap_or_default()
            }
        };
        Ok(Err(found))
    }
}

/// The order counters are locked in, the same on every node, so two admissions never wait on
/// each other's locks.
fn lock_order(claims: &[Claim]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by_key(|i| {
        let k = &claims[*i].key;
        (k.rule_id, k.counting, k.group, k.window_start)
    });
    order
}

impl SharedCounters for PgCounters {
    fn reserve(&self, claims: &[Claim]) -> Result<Admission, String> {
        self.with(|db| {
            if let [only] = claims {
                return Ok(match self.claim_or_refuse(db, only)? {
                    Ok(held) => Admission::Held(vec![held]),
                    Err(found) => Admission::Refused(0, found),
                });
            }
            let mut tx = db.transaction()?;
            let mut held = vec![Shared::default(); claims.len()];
            for i in lock_order(claims) {
                match self.claim_or_refuse(&mut tx, &claims[i])? {
                    Ok(values) => held[i] = values,
                    // Dropping the transaction rolls back the claims made so far.
                    Err(found) => return Ok(Admission::Refused(i, found)),
                }
            }
            tx.commit()?;
            Ok(Admission::Held(held))
        })
    }

    fn settle(&self, r: &Release) -> Result<Option<(f64, Shared)>, String> {
        let k = &r.key;
        // Moves no more than this node still holds and leases: if the others took it for dead
        // and gave its holds and leases back already, the counter's are someone else's.
        self.with(|db| {
            db.query_opt(
                &format!(
                    "WITH h AS (
                        SELECT amount, leased, LEAST(leased, ?5::float8) AS moved
                        FROM governance_holds WHERE node_id = ?10::text AND {KEY} FOR UPDATE
                    ), f AS (
                        SELECT moved, LEAST(amount + moved, ?6::float8) AS released,
                            LEAST(leased - moved, ?8::float8) AS given
                        FROM h
                    ), mine AS (
                        UPDATE governance_holds g
                        SET amount = g.amount + f.moved - f.released,
                            leased = g.leased - f.moved - f.given
                        FROM f
                        WHERE g.node_id = ?10::text AND g.rule_id = ?1::text
                            AND g.counting = ?2::text AND g.grp = ?3::text
                            AND g.window_start = ?4::int8
                    ), c AS (
                        UPDATE governance_counters
                        SET used = used + ?7::float8,
                            reserved = GREATEST(reserved
                                + COALESCE((SELECT moved - released FROM f), 0), 0),
                            leased = GREATEST(leased
                                - COALESCE((SELECT moved + given FROM f), 0), 0),
                            updated_ms = ?9::int8
                        WHERE {KEY}
                        RETURNING used, reserved, leased
                    )
                    SELECT used - ?7::float8, used, reserved, leased FROM c"
                ),
                &params![
                    k.rule_id,
                    k.counting,
                    k.group,
                    k.window_start,
                    r.from_lease,
                    r.release,
                    r.spent,
                    r.give_back,
                    now_ms(),
                    self.node_id
                ],
                |row| Ok((row.get(0)?, values(row, 1)?)),
            )
        })
    }

    fn lease(
        &self,
        k: SharedKey,
        seed: f64,
        demand: f64,
        limit: f64,
    ) -> Result<(f64, Shared), String> {
        let locked = |db: &mut Db| {
            db.query_opt(
                &format!(
                    "SELECT used, reserved, leased, (SELECT count(*) FROM governance_nodes)
                     FROM governance_counters WHERE {KEY} FOR UPDATE"
                ),
                &params![k.rule_id, k.counting, k.group, k.window_start],
                |r| Ok((values(r, 0)?, r.get::<i64>(3)?)),
            )
        };
        self.with(|db| {
            let mut tx = db.transaction()?;
            let (found, nodes) = match locked(&mut tx)? {
                Some(found) => found,
                None => {
                    PgCounters::seed_row(&mut tx, k, seed)?;
                    locked(&mut tx)?.unwrap_or_default()
                }
            };
            let headroom = limit - found.used - found.reserved - found.leased;
            let amount = lease::size(headroom, nodes.max(0) as u64, demand);
            if amount <= 0.0 {
                tx.commit()?;
                return Ok((0.0, found));
            }
            let after = tx.query_row(
                &format!(
                    "WITH mine AS (
                        INSERT INTO governance_holds AS h
                            (node_id, rule_id, counting, grp, window_start, amount, leased)
                        VALUES (?7::text, ?1::text, ?2::text, ?3::text, ?4::int8, 0, ?5::float8)
                        ON CONFLICT (node_id, rule_id, counting, grp, window_start)
                        DO UPDATE SET leased = h.leased + excluded.leased
                    )
                    UPDATE governance_counters SET leased = leased + ?5::float8,
                        updated_ms = ?6::int8
                    WHERE {KEY}
                    RETURNING used, reserved, leased"
                ),
                &params![
                    k.rule_id,
                    k.counting,
                    k.group,
                    k.window_start,
                    amount,
                    now_ms(),
                    self.node_id
                ],
                |r| values(r, 0),
            )?;
            tx.commit()?;
            Ok((amount, after))
        })
    }

    fn seed(&self, key: SharedKey, seed: f64) -> Result<Shared, String> {
        self.with(|db| PgCounters::seed_row(db, key, seed))
    }

    fn reset(&self, k: SharedKey) -> Result<Shared, String> {
        self.with(|db| {
            db.query_row(
                "INSERT INTO governance_counters AS c
                    (rule_id, counting, grp, window_start, used, reserved, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)
                 ON CONFLICT (rule_id, counting, grp, window_start)
                 DO UPDATE SET used = 0, updated_ms = excluded.updated_ms
                 RETURNING used, reserved, leased",
                &params![k.rule_id, k.counting, k.group, k.window_start, now_ms()],
                |r| values(r, 0),
            )
        })
    }

    fn sync(&self, now: i64, current: &[Current]) -> Result<Synced, String> {
        let current = serde_json::Value::Array(
            current
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "rule_id": c.rule_id, "counting": c.counting, "window_start": c.window_start
                    })
                })
                .collect(),
        )
        .to_string();
        const CURRENT: &str = "WITH r AS (SELECT * FROM jsonb_to_recordset(?1::jsonb)
            AS r(rule_id text, counting text, window_start bigint))";
        self.with(|db| {
            let forgotten = self.heartbeat(db, now)?;
            db.execute(
                "WITH dead AS (
                    DELETE FROM governance_nodes WHERE seen_ms < ?1 RETURNING node_id
                 ), gone AS (
                    DELETE FROM governance_holds WHERE node_id IN (SELECT node_id FROM dead)
                    RETURNING rule_id, counting, grp, window_start, amount, leased
                 ), freed AS (
                    SELECT rule_id, counting, grp, window_start, SUM(amount) AS amount,
                        SUM(leased) AS leased
                    FROM gone GROUP BY rule_id, counting, grp, window_start
                 )
                 UPDATE governance_counters c SET reserved = GREATEST(c.reserved - f.amount, 0),
                    leased = GREATEST(c.leased - f.leased, 0)
                 FROM freed f WHERE c.rule_id = f.rule_id AND c.counting = f.counting
                    AND c.grp = f.grp AND c.window_start = f.window_start",
                &params![now - NODE_TIMEOUT_MS],
            )?;
            db.execute(
                "DELETE FROM governance_holds
                 WHERE amount <= 0.000000001 AND leased <= 0.000000001",
                &[],
            )?;
            db.execute(
                &format!(
                    "{CURRENT} DELETE FROM governance_counters c
                     WHERE c.reserved <= 0.000000001 AND c.leased <= 0.000000001
                        AND c.updated_ms < ?2::int8
                        AND NOT EXISTS (SELECT 1 FROM r WHERE r.rule_id = c.rule_id
                            AND r.counting = c.counting AND r.window_start = c.window_start)"
                ),
                &params![current, now - IDLE_MS],
            )?;
            let listed = db.query_map(
                &format!(
                    "{CURRENT} SELECT c.rule_id, c.grp, c.window_start, c.used, c.reserved,
                        c.leased
                     FROM governance_counters c JOIN r ON r.rule_id = c.rule_id
                        AND r.counting = c.counting AND r.window_start = c.window_start"
                ),
                &params![current],
                |r| {
                    Ok(Listed {
                        rule_id: r.get(0)?,
                        group: r.get(1)?,
                        window_start: r.get(2)?,
                        values: values(r, 3)?,
                    })
                },
            )?;
            Ok(Synced { listed, forgotten })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str) -> SharedKey<'_> {
        SharedKey {
            rule_id: "pol-1",
            counting: "c1",
            group,
            window_start: 0,
        }
    }

    /// A claim against a limit of 10.
    fn claim(group: &str, hold: f64) -> Claim<'_> {
        Claim {
            key: key(group),
            seed: 0.0,
            hold,
            count: 0.0,
            below: 10.0 - 1e-9,
            at_most: 10.0 + 1e-9,
        }
    }

    /// A held claim of `group` settled.
    fn settled(group: &str, release: f64, spent: f64) -> Release<'_> {
        Release {
            key: key(group),
            from_lease: 0.0,
            release,
            spent,
            give_back: 0.0,
        }
    }

    fn shared(used: f64, reserved: f64) -> Shared {
        Shared {
            used,
            reserved,
            leased: 0.0,
        }
    }

    /// The shared counters of two nodes on a new database, or `None` with a note.
    fn two_nodes() -> Option<(Arc<dyn SharedCounters>, Arc<dyn SharedCounters>)> {
        let Some(store) = crate::store::tests::postgres_store() else {
            eprintln!("note: skipped: shared counters need TOLLGATE_TEST_DATABASE_URL");
            return None;
        };
        let node = || store.shared_counters().unwrap().unwrap();
        Some((node(), node()))
    }

    #[test]
    fn claims_hold_all_or_nothing_and_a_dead_nodes_holds_are_given_back() {
        let Some((a, b)) = two_nodes() else {
            return;
        };
        assert_eq!(
            a.reserve(&[claim("g", 6.0)]).unwrap(),
            Admission::Held(vec![shared(0.0, 6.0)])
        );
        assert_eq!(
            b.reserve(&[claim("h", 1.0), claim("g", 5.0)]).unwrap(),
            Admission::Refused(1, shared(0.0, 6.0))
        );
        // Nothing of the refused admission stays held: all of h's limit is free.
        assert_eq!(
            b.reserve(&[claim("h", 10.0)]).unwrap(),
            Admission::Held(vec![shared(0.0, 10.0)])
        );

        // Node a is not seen for longer than the timeout: b gives back what it held.
        b.sync(now_ms() + NODE_TIMEOUT_MS + 1, &[]).unwrap();
        assert_eq!(
            b.reserve(&[claim("g", 5.0)]).unwrap(),
            Admission::Held(vec![shared(0.0, 5.0)])
        );
        assert_eq!(
            b.settle(&settled("g", 5.0, 4.0)).unwrap(),
            Some((0.0, shared(4.0, 0.0)))
        );
        // a's late settlement adds its spend but gives back nothing it no longer holds.
        assert_eq!(
            a.settle(&settled("g", 6.0, 6.0)).unwrap(),
            Some((4.0, shared(10.0, 0.0)))
        );
        assert_eq!(
            a.reserve(&[claim("g", 0.5)]).unwrap(),
            Admission::Refused(0, shared(10.0, 0.0))
        );
        assert_eq!(a.reset(key("g")).unwrap(), shared(0.0, 0.0));
        assert_eq!(
            a.reserve(&[claim("g", 0.5)]).unwrap(),
            Admission::Held(vec![shared(0.0, 0.5)])
        );
    }

    #[test]
    fn leases_count_against_the_limit_shrink_near_it_and_go_back_with_a_dead_node() {
        let Some((a, b)) = two_nodes() else {
            return;
        };
        let leased = |used, reserved, leased| Shared {
            used,
            reserved,
            leased,
        };
        // Two live nodes: a lease is at most a quarter of the headroom, and the demand asked.
        assert_eq!(
            a.lease(key("g"), 0.0, 1.0, 10.0).unwrap(),
            (1.0, leased(0.0, 0.0, 1.0))
        );
        assert_eq!(
            a.lease(key("g"), 0.0, 100.0, 10.0).unwrap(),
            (2.25, leased(0.0, 0.0, 3.25))
        );
        // Leases hold headroom as claims do: 6.75 is left.
        assert_eq!(
            b.reserve(&[claim("g", 7.0)]).unwrap(),
            Admission::Refused(0, leased(0.0, 0.0, 3.25))
        );
        assert_eq!(
            b.reserve(&[claim("g", 6.0)]).unwrap(),
            Admission::Held(vec![leased(0.0, 6.0, 3.25)])
        );
        // Near the limit the lease shrinks to a quarter of the 0.75 left.
        assert_eq!(
            b.lease(key("g"), 0.0, 100.0, 10.0).unwrap(),
            (0.1875, leased(0.0, 6.0, 3.4375))
        );
        // a admitted 2 against its lease, and settles one of them at 1.5; then gives back 0.25.
        let sent = |from_lease, release, spent, give_back| Release {
            key: key("g"),
            from_lease,
            release,
            spent,
            give_back,
        };
        assert_eq!(
            a.settle(&sent(2.0, 1.0, 1.5, 0.25)).unwrap(),
            Some((0.0, leased(1.5, 7.0, 1.1875)))
        );
        // a holds 1 for a request in flight and 1 of lease: the dead node's part goes back.
        b.sync(now_ms() + NODE_TIMEOUT_MS + 1, &[]).unwrap();
        assert_eq!(
            b.reserve(&[claim("g", 0.5)]).unwrap(),
            Admission::Held(vec![leased(1.5, 6.5, 0.1875)])
        );
        // a hears it was taken for dead; what it sends after moves nothing it no longer has.
        assert!(a.sync(now_ms(), &[]).unwrap().forgotten);
        assert!(!a.sync(now_ms(), &[]).unwrap().forgotten);
        assert_eq!(
            a.settle(&sent(1.0, 2.0, 1.0, 1.0)).unwrap(),
            Some((1.5, leased(2.5, 6.5, 0.1875)))
        );
    }
}
