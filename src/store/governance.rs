//! Budget and rate-limit policies (one table, `kind` telling them apart), manual resets and
//! budget events, and the request records counters are rebuilt from.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::db::{self, params, Db, Param, Row};
use super::log_blocks;
use super::{new_id, now, placeholders, Store, StoreError, StoreResult};
use crate::api::governance::{
    BudgetEvent, Condition, GroupBy, Owner, RateLimit, RateLimitPolicy, UsageLimitPolicy,
    UsageLimits, OWNER_API_KEY, OWNER_INTEGRATION, OWNER_WORKSPACE,
};
use crate::governance::{Rule, SpentRecord};
use crate::observe::record::{format_ms, now_ms};

pub const USAGE: &str = "usage_limit";
pub const RATE: &str = "rate_limit";

/// A policy as stored: its spec is a budget or a rate limit.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub conditions: Vec<Condition>,
    pub group_by: Vec<GroupBy>,
    pub spec: Value,
    pub status: String,
    pub owner: Option<Owner>,
    pub created_ms: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What a new or changed policy holds.
pub struct PolicyFields<'a> {
    pub name: &'a str,
    pub conditions: &'a [Condition],
    pub group_by: &'a [GroupBy],
    pub spec: Value,
    pub status: &'a str,
}

const COLUMNS: &str = "id, kind, name, conditions, group_by, spec, status, owner_type, owner_id, \
    created_ms, created_at, updated_at";

fn row(r: &Row) -> db::Result<PolicyRow> {
    let text = |i: usize| r.get::<String>(i);
    let owner_type: Option<String> = r.get(7)?;
    let owner_id: Option<String> = r.get(8)?;
    Ok(PolicyRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        conditions: serde_json::from_str(&text(3)?).unwrap_or_default(),
        group_by: serde_json::from_str(&text(4)?).unwrap_or_default(),
        spec: serde_json::from_str(&text(5)?).unwrap_or_default(),
        status: r.get(6)?,
        owner: owner_type
            .zip(owner_id)
            .map(|(kind, id)| Owner { kind, id }),
        created_ms: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

impl PolicyRow {
    pub fn usage(&self) -> Option<UsageLimitPolicy> {
        (self.kind == USAGE).then(|| UsageLimitPolicy {
            id: self.id.clone(),
            name: self.name.clone(),
            conditions: self.conditions.clone(),
            group_by: self.group_by.clone(),
            limits: serde_json::from_value(self.spec.clone()).unwrap_or_default(),
            status: self.status.clone(),
            owner: self.owner.clone(),
            created_at: self.created_at.clone(),
            last_updated_at: self.updated_at.clone(),
            object: "usage-limit-policy".into(),
        })
    }

    pub fn rate(&self) -> Option<RateLimitPolicy> {
        let limit: RateLimit = serde_json::from_value(self.spec.clone()).ok()?;
        (self.kind == RATE).then(|| RateLimitPolicy {
            id: self.id.clone(),
            name: self.name.clone(),
            conditions: self.conditions.clone(),
            group_by: self.group_by.clone(),
            limit,
            status: self.status.clone(),
            owner: self.owner.clone(),
            created_at: self.created_at.clone(),
            last_updated_at: self.updated_at.clone(),
            object: "rate-limit-policy".into(),
        })
    }

    pub fn rule(&self) -> Result<Rule, String> {
        match (self.usage(), self.rate()) {
            (Some(p), _) => Rule::budget(&p, self.created_ms),
            (_, Some(p)) => Rule::rate(&p),
            _ => Err(format!("policy {} has an unreadable spec", self.id)),
        }
    }
}

/// The condition that ties an owned policy to its owner.
pub fn owner_condition(owner: &Owner) -> Condition {
    let (key, value) = match owner.kind.as_str() {
        OWNER_API_KEY => ("api_key", owner.id.clone()),
        OWNER_WORKSPACE => ("workspace_id", owner.id.clone()),
        OWNER_INTEGRATION => ("provider", format!("@{}", owner.id)),
        other => unreachable!("owners are api_key, workspace or integration, not {other}"),
    };
    Condition {
        key: key.into(),
        value,
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("no policy with id {id:?}"))
}

impl Store {
    pub fn create_policy(
        &self,
        kind: &str,
        fields: &PolicyFields,
        owner: Option<&Owner>,
    ) -> StoreResult<String> {
        let (id, at) = (new_id(), now());
        self.conn().execute(
            &format!("INSERT INTO policies ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)"),
            &params![
                id,
                kind,
                fields.name,
                json(&fields.conditions),
                json(&fields.group_by),
                fields.spec.to_string(),
                fields.status,
                owner.map(|o| &o.kind),
                owner.map(|o| &o.id),
                now_ms(),
                at,
            ],
        )?;
        Ok(id)
    }

    pub fn policy(&self, id: &str) -> StoreResult<PolicyRow> {
        self.conn()
            .query_opt(
                &format!("SELECT {COLUMNS} FROM policies WHERE id = ?1"),
                &params![id],
                row,
            )?
            .ok_or_else(|| not_found(id))
    }

    /// Policies of `kind` (all kinds when `None`), oldest first.
    pub fn policies(&self, kind: Option<&str>) -> StoreResult<Vec<PolicyRow>> {
        Ok(self.conn().query_map(
            &format!(
                "SELECT {COLUMNS} FROM policies WHERE CAST(?1 AS TEXT) IS NULL OR kind = ?1 ORDER BY created_ms, id"
            ),
            &params![kind],
            row,
        )?)
    }

    pub fn owned_policies(&self, owner: &Owner) -> StoreResult<Vec<PolicyRow>> {
        Ok(self.conn().query_map(
            &format!(
                "SELECT {COLUMNS} FROM policies WHERE owner_type = ?1 AND owner_id = ?2 ORDER BY created_ms, id"
            ),
            &params![owner.kind, owner.id],
            row,
        )?)
    }

    pub fn update_policy(&self, id: &str, fields: &PolicyFields) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE policies SET name = ?2, conditions = ?3, group_by = ?4, spec = ?5, status = ?6,
                updated_at = ?7 WHERE id = ?1",
            &params![
                id,
                fields.name,
                json(&fields.conditions),
                json(&fields.group_by),
                fields.spec.to_string(),
                fields.status,
                now()
            ],
        )?;
        match changed {
            0 => Err(not_found(id)),
            _ => Ok(()),
        }
    }

    pub fn delete_policy(&self, id: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM policies WHERE id = ?1", &params![id])?;
        tx.execute(
            "DELETE FROM usage_resets WHERE policy_id = ?1",
            &params![id],
        )?;
        tx.commit()?;
        match n {
            0 => Err(not_found(id)),
            _ => Ok(()),
        }
    }

    /// Replaces what `owner` owns: its budget (if `usage` is given: `Some(None)` removes it)
    /// and its rate limits (if `rates` is given), in one transaction.
    pub fn set_owned_limits(
        &self,
        owner: &Owner,
        label: &str,
        usage: Option<Option<&UsageLimits>>,
        rates: Option<&[RateLimit]>,
    ) -> StoreResult<()> {
        let conditions = [owner_condition(owner)];
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        let insert = |tx: &mut db::Db, kind: &str, name: String, spec: Value| {
            tx.execute(
                &format!("INSERT INTO policies ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, '[]', ?5, 'active', ?6, ?7, ?8, ?9, ?9)"),
                &params![new_id(), kind, name, json(&conditions), spec.to_string(), owner.kind, owner.id, now_ms(), now()],
            )
        };
        if let Some(usage) = usage {
            let current: Option<String> = tx.query_opt(
                "SELECT id FROM policies WHERE owner_type = ?1 AND owner_id = ?2 AND kind = ?3",
                &params![owner.kind, owner.id, USAGE],
                |r| r.get(0),
            )?;
            match (current, usage) {
                // Keeps the policy's id, so its counters and resets carry over.
                (Some(id), Some(limits)) => {
                    tx.execute(
                        "UPDATE policies SET spec = ?2, updated_at = ?3 WHERE id = ?1",
                        &params![id, json(limits), now()],
                    )?;
                }
                (Some(id), None) => {
                    tx.execute("DELETE FROM policies WHERE id = ?1", &params![id])?;
                }
                (None, Some(limits)) => {
                    insert(
                        &mut tx,
                        USAGE,
                        format!("{label} budget"),
                        serde_json::to_value(limits).expect("data"),
                    )?;
                }
                (None, None) => {}
            }
        }
        if let Some(rates) = rates {
            tx.execute(
                "DELETE FROM policies WHERE owner_type = ?1 AND owner_id = ?2 AND kind = ?3",
                &params![owner.kind, owner.id, RATE],
            )?;
            for r in rates {
                let spec = serde_json::to_value(r).expect("data");
                let unit = spec["unit"].as_str().unwrap_or_default().to_string();
                insert(
                    &mut tx,
                    RATE,
                    format!(
                        "{label} {} per {unit}",
                        spec["type"].as_str().unwrap_or_default()
                    ),
                    spec,
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes everything `owner` owns, with the owner itself gone.
    pub fn delete_owned(&self, owner: &Owner) -> StoreResult<()> {
        self.conn().execute(
            "DELETE FROM policies WHERE owner_type = ?1 AND owner_id = ?2",
            &params![owner.kind, owner.id],
        )?;
        Ok(())
    }

    pub fn add_usage_reset(&self, policy_id: &str, value_key: &str, at_ms: i64) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO usage_resets (policy_id, value_key, reset_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (policy_id, value_key) DO UPDATE SET reset_ms = excluded.reset_ms",
            &params![policy_id, value_key, at_ms],
        )?;
        Ok(())
    }

    pub fn usage_resets(&self) -> StoreResult<HashMap<(String, String), i64>> {
        let rows = self.conn().query_map(
            "SELECT policy_id, value_key, reset_ms FROM usage_resets",
            &[],
            |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    pub fn add_budget_event(&self, e: &BudgetEvent, window_start_ms: i64) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO budget_events (id, policy_id, kind, value_key, usage, credit_limit,
                window_start_ms, created_ms, delivered, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &params![
                e.id,
                e.policy_id,
                e.kind,
                e.value_key,
                e.usage,
                e.credit_limit,
                window_start_ms,
                now_ms(),
                e.delivered,
                e.error
            ],
        )?;
        Ok(())
    }

    /// Events of one policy (or all), newest first.
    pub fn budget_events(&self, policy_id: Option<&str>) -> StoreResult<Vec<BudgetEvent>> {
        let rows = self.conn().query_map(
            "SELECT id, policy_id, kind, value_key, usage, credit_limit, window_start_ms,
                created_ms, delivered, error FROM budget_events
             WHERE CAST(?1 AS TEXT) IS NULL OR policy_id = ?1 ORDER BY created_ms DESC, id DESC LIMIT 1000",
            &params![policy_id],
            |r| {
                Ok(BudgetEvent {
                    id: r.get(0)?,
                    policy_id: r.get(1)?,
                    kind: r.get(2)?,
                    value_key: r.get(3)?,
                    usage: r.get(4)?,
                    credit_limit: r.get(5)?,
                    window_start: format_ms(r.get(6)?),
                    created_at: format_ms(r.get(7)?),
                    delivered: r.get(8)?,
                    error: r.get(9)?,
                })
            },
        )?;
        Ok(rows)
    }

    /// (policy, group value, window start) of every alert already sent.
    pub fn alerts_sent(&self) -> StoreResult<HashSet<(String, String, i64)>> {
        let rows = self.conn().query_map(
            "SELECT policy_id, value_key, window_start_ms FROM budget_events WHERE kind = 'alert'",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// Gateway requests since `from_ms` that reached a provider: what the counters count. With
    /// `keys`, only those keys' requests: on Postgres through the key index, on SQLite, which
    /// has no key index, through the blocks that may hold them (store/log_blocks.rs).
    pub fn spent_records(
        &self,
        from_ms: i64,
        keys: Option<&[String]>,
    ) -> StoreResult<Vec<SpentRecord>> {
        let mut values = vec![Param::Int(from_ms)];
        let by_key = match keys {
            Some(keys) => {
                values.extend(keys.iter().map(|k| Param::Text(k.as_str().into())));
                format!("AND api_key_id IN ({})", placeholders(2, keys.len()))
            }
            None => String::new(),
        };
        let select = |from: &str| {
            format!(
                "SELECT created_ms, api_key_id, integration, provider, model, metadata, cost,
                    input_tokens + output_tokens FROM {from}
                 WHERE created_ms >= ?1 AND kind = 'request' AND attempts != '[]'
                    AND api_key_id IS NOT NULL {by_key}"
            )
        };
        let mut conn = self.logs_conn();
        if let (Db::Sqlite(sqlite), Some(keys)) = (&*conn, keys) {
            let in_range = format!(
                "{} AND seq BETWEEN ?{} AND ?{}",
                select("logs NOT INDEXED"),
                values.len() + 1,
                values.len() + 2
            );
            return spent_by_blocks(sqlite, keys, from_ms, &in_range, &values);
        }
        Ok(conn.query_map(&select("logs"), &values, spent_record)?)
    }
}

/// The records of `keys` that `in_range` (a select of [`spent_record`]'s columns, its last two
/// parameters the bounds of `seq`) selects with `values`, read range by range from the blocks
/// that may hold them.
fn spent_by_blocks(
    conn: &rusqlite::Connection,
    keys: &[String],
    from_ms: i64,
    in_range: &str,
    values: &[Param],
) -> StoreResult<Vec<SpentRecord>> {
    // One snapshot, as the one query without keys reads: the summaries and the records agree.
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare(in_range)?;
    let mut records = Vec::new();
    for (first, last) in log_blocks::key_ranges(&tx, keys, from_ms)? {
        let bounds = [Param::Int(first), Param::Int(last)];
        let mut rows = stmt.query(rusqlite::params_from_iter(values.iter().chain(&bounds)))?;
        while let Some(row) = rows.next()? {
            records.push(spent_record(&Row::Sqlite(row))?);
        }
    }
    Ok(records)
}

fn spent_record(r: &Row) -> db::Result<SpentRecord> {
    let metadata: String = r.get(5)?;
    Ok(SpentRecord {
        created_ms: r.get(0)?,
        api_key: r.get(1)?,
        integration: r.get(2)?,
        provider: r.get::<Option<String>>(3)?.unwrap_or_default(),
        model: r.get::<Option<String>>(4)?.unwrap_or_default(),
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        cost: r.get(6)?,
        tokens: r.get(7)?,
    })
}
