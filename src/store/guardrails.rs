//! Saved guardrails: named checks and actions, referred to from configs by their `pg-` slug.

use super::db::{self, params, Row};
use super::{new_id, new_slug, now, unique_or, Store, StoreError, StoreResult};
use crate::api::guardrails::{Actions, CheckSpec, Guardrail, UpdateGuardrail};
use crate::api::Paging;

const COLUMNS: &str =
    "id, slug, name, workspace_id, checks, actions, version_id, status, created_at, updated_at";

const BY_ID_OR_SLUG: &str = "WHERE id = ?1 OR slug = ?1 ORDER BY id = ?1 DESC LIMIT 1";

fn row(r: &Row) -> db::Result<Guardrail> {
    let checks: String = r.get(4)?;
    let actions: String = r.get(5)?;
    Ok(Guardrail {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        workspace_id: r.get(3)?,
        checks: serde_json::from_str(&checks).unwrap_or_default(),
        actions: serde_json::from_str(&actions).unwrap_or_default(),
        version_id: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        last_updated_at: r.get(9)?,
        object: "guardrail".into(),
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("no guardrail with id or slug {id:?}"))
}

/// What a new guardrail holds, checked by the caller.
pub struct NewGuardrail<'a> {
    pub name: &'a str,
    pub workspace_id: Option<&'a str>,
    pub checks: &'a [CheckSpec],
    pub actions: &'a Actions,
}

impl Store {
    pub fn create_guardrail(&self, new: &NewGuardrail) -> StoreResult<Guardrail> {
        let (id, at) = (new_id(), now());
        let slug = new_slug("pg", new.name, "guard");
        self.conn()
            .execute(
                &format!("INSERT INTO guardrails ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?8)"),
                &params![
                    id,
                    slug,
                    new.name,
                    new.workspace_id,
                    json(&new.checks),
                    json(new.actions),
                    new_id(),
                    at
                ],
            )
            .map_err(|e| {
                unique_or(e, || {
                    StoreError::Conflict(format!(
                        "a guardrail with slug {slug:?} already exists; try again"
                    ))
                })
            })?;
        self.guardrail(&id)
    }

    /// By id or slug.
    pub fn guardrail(&self, id: &str) -> StoreResult<Guardrail> {
        self.conn()
            .query_opt(
                &format!("SELECT {COLUMNS} FROM guardrails {BY_ID_OR_SLUG}"),
                &params![id],
                row,
            )?
            .ok_or_else(|| not_found(id))
    }

    /// Oldest first.
    pub fn guardrails(&self, page: Paging) -> StoreResult<(u64, Vec<Guardrail>)> {
        let mut conn = self.conn();
        let total = super::total(&mut conn, "guardrails", "", &[])?;
        let items = conn.query_map(
            &format!("SELECT {COLUMNS} FROM guardrails ORDER BY created_at, id LIMIT ?1 OFFSET ?2"),
            &params![page.limit(), page.offset()],
            row,
        )?;
        Ok((total, items))
    }

    /// Every guardrail, for the gateway's in-memory map.
    pub fn all_guardrails(&self) -> StoreResult<Vec<Guardrail>> {
        Ok(self
            .conn()
            .query_map(&format!("SELECT {COLUMNS} FROM guardrails"), &[], row)?)
    }

    /// Fields left out stay; every update gives a new `version_id`.
    pub fn update_guardrail(&self, id: &str, change: &UpdateGuardrail) -> StoreResult<Guardrail> {
        let current = self.guardrail(id)?;
        self.conn().execute(
            "UPDATE guardrails SET name = ?2, checks = ?3, actions = ?4, version_id = ?5,
                updated_at = ?6 WHERE id = ?1",
            &params![
                current.id,
                change.name.as_ref().unwrap_or(&current.name),
                json(change.checks.as_ref().unwrap_or(&current.checks)),
                json(change.actions.as_ref().unwrap_or(&current.actions)),
                new_id(),
                now()
            ],
        )?;
        self.guardrail(&current.id)
    }

    pub fn delete_guardrail(&self, id: &str) -> StoreResult<()> {
        let n = self
            .conn()
            .execute("DELETE FROM guardrails WHERE id = ?1", &params![id])?;
        if n == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }
}
