//! The audit log of admin changes: written once per change, listed newest first.

use serde_json::Value;

use super::db::{self, params, Param, Row};

use super::{Store, StoreError, StoreResult};
use crate::api::audit::{AuditFilter, AuditLog};
use crate::api::logs::parse_time_bound;
use crate::observe::record::format_ms;

const COLUMNS: &str = "id, created_ms, method, uri, resource_type, resource_id, action, \
    actor_key_id, actor_name, actor_key_type, workspace_id, client_ip, user_agent, request_id, \
    response_status_code, before, after";

fn json_text(value: Option<&Value>) -> Option<String> {
    value.map(Value::to_string)
}

fn row(r: &Row) -> db::Result<AuditLog> {
    let json = |i: usize| -> db::Result<Option<Value>> {
        let text: Option<String> = r.get(i)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(AuditLog {
        id: r.get(0)?,
        created_at: format_ms(r.get(1)?),
        method: r.get(2)?,
        uri: r.get(3)?,
        resource_type: r.get(4)?,
        resource_id: r.get(5)?,
        action: r.get(6)?,
        user_id: r.get(7)?,
        user_name: r.get(8)?,
        user_type: r.get(9)?,
        workspace_id: r.get(10)?,
        client_ip: r.get(11)?,
        user_agent: r.get(12)?,
        request_id: r.get(13)?,
        response_status_code: r.get(14)?,
        before: json(15)?,
        after: json(16)?,
        object: "audit-log".into(),
    })
}

/// The filter as a WHERE clause and its parameters; times may be relative to `now`.
fn clause(
    f: &AuditFilter,
    now: time::OffsetDateTime,
) -> StoreResult<(String, Vec<Param<'static>>)> {
    let bound = |v: &str| -> StoreResult<Param<'static>> {
        let t = parse_time_bound(v, now).map_err(StoreError::Invalid)?;
        Ok(Param::Int((t.unix_timestamp_nanos() / 1_000_000) as i64))
    };
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(v) = &f.start_time {
        conditions.push("created_ms >= ?");
        values.push(bound(v)?);
    }
    if let Some(v) = &f.end_time {
        conditions.push("created_ms < ?");
        values.push(bound(v)?);
    }
    let texts = [
        (
            "method = ?",
            f.method.as_ref().map(|m| m.to_ascii_uppercase()),
        ),
        ("resource_type = ?", f.resource_type.clone()),
        ("resource_id = ?", f.resource_id.clone()),
        ("action = ?", f.action.clone()),
        ("actor_key_id = ?", f.user_id.clone()),
        ("workspace_id = ?", f.workspace_id.clone()),
        ("client_ip = ?", f.client_ip.clone()),
    ];
    for (condition, value) in texts {
        if let Some(v) = value {
            conditions.push(condition);
            values.push(Param::Text(v.into()));
        }
    }
    if let Some(code) = f.response_status_code {
        conditions.push("response_status_code = ?");
        values.push(Param::Int(code.into()));
    }
    let sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    Ok((sql, values))
}

impl Store {
    pub fn insert_audit_log(&self, created_ms: i64, log: &AuditLog) -> StoreResult<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO audit_logs ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            &params![
                log.id,
                created_ms,
                log.method,
                log.uri,
                log.resource_type,
                log.resource_id,
                log.action,
                log.user_id,
                log.user_name,
                log.user_type,
                log.workspace_id,
                log.client_ip,
                log.user_agent,
                log.request_id,
                log.response_status_code,
                json_text(log.before.as_ref()),
                json_text(log.after.as_ref()),
            ],
        )?;
        Ok(())
    }

    /// How many changes match, and the requested page of them, newest first.
    pub fn audit_logs(
        &self,
        f: &AuditFilter,
        now: time::OffsetDateTime,
    ) -> StoreResult<(u64, Vec<AuditLog>)> {
        let (filter, values) = clause(f, now)?;
        let page = f.paging();
        let mut conn = self.conn();
        let total = super::total(&mut conn, "audit_logs", &filter, &values)?;
        let records = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM audit_logs {filter} \
                 ORDER BY created_ms DESC, seq DESC LIMIT {} OFFSET {}",
                page.limit(),
                page.offset()
            ),
            &values,
            row,
        )?;
        Ok((total, records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_parameterised_sql() {
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        let f = AuditFilter {
            start_time: Some("1h".into()),
            method: Some("put".into()),
            user_id: Some("k1".into()),
            response_status_code: Some(403),
            ..AuditFilter::default()
        };
        let (sql, values) = clause(&f, now).unwrap();
        assert_eq!(
            sql,
            "WHERE created_ms >= ? AND method = ? AND actor_key_id = ? AND response_status_code = ?"
        );
        assert_eq!(
            values,
            vec![
                Param::Int(1_796_122_800_000),
                Param::Text("PUT".into()),
                Param::Text("k1".into()),
                Param::Int(403),
            ]
        );
        assert_eq!(clause(&AuditFilter::default(), now).unwrap().0, "");
        let bad = AuditFilter {
            end_time: Some("yesterday".into()),
            ..AuditFilter::default()
        };
        assert!(matches!(clause(&bad, now), Err(StoreError::Invalid(_))));
    }
}
