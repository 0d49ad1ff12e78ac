use super::db::{self, params, Backend, Row};
use super::keys::patterns;
use super::{merge_defaults, new_id, new_slug, now, unique_or, Store, StoreError, StoreResult};
use crate::api::workspaces::{
    CreateWorkspace, UpdateWorkspace, Workspace, WorkspaceDefaults, WorkspaceFilter,
};
use crate::api::Paging;

const COLUMNS: &str =
    "id, slug, name, description, defaults, allowed_models, status, created_at, updated_at";

/// An id wins over a slug that happens to equal it.
const BY_ID_OR_SLUG: &str = "WHERE id = ?1 OR slug = ?1 ORDER BY id = ?1 DESC LIMIT 1";

fn row(r: &Row) -> db::Result<Workspace> {
    let defaults: String = r.get(4)?;
    Ok(Workspace {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        defaults: serde_json::from_str(&defaults).unwrap_or_default(),
        allowed_models: patterns(r.get(5)?),
        usage_limits: None,
        rate_limits: Vec::new(),
        status: r.get(6)?,
        created_at: r.get(7)?,
        last_updated_at: r.get(8)?,
        object: "workspace".into(),
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("no workspace with id or slug {id:?}"))
}

/// A unique violation names the column: the slug or the name.
fn taken(e: db::Error, slug: &str, name: &str) -> StoreError {
    let on_slug = e.violates("workspaces", "slug");
    unique_or(e, || {
        StoreError::Conflict(if on_slug {
            format!("a workspace with slug {slug:?} already exists")
        } else {
            format!("a workspace named {name:?} already exists")
        })
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

impl Store {
    /// `new` is checked by the caller; a missing slug is made from the name.
    pub fn create_workspace(&self, new: &CreateWorkspace) -> StoreResult<Workspace> {
        let (id, at) = (new_id(), now());
        let slug = new
            .slug
            .clone()
            .unwrap_or_else(|| new_slug("ws", &new.name, "ws"));
        self.conn()
            .execute(
                &format!("INSERT INTO workspaces ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?7)"),
                &params![
                    id,
                    slug,
                    new.name,
                    new.description,
                    json(&new.defaults.clone().unwrap_or_default()),
                    new.limits.allowed_models.as_ref().map(json),
                    at,
                ],
            )
            .map_err(|e| taken(e, &slug, &new.name))?;
        self.workspace(&id)
    }

    /// By id or slug.
    pub fn workspace(&self, id: &str) -> StoreResult<Workspace> {
        self.conn()
            .query_opt(
                &format!("SELECT {COLUMNS} FROM workspaces {BY_ID_OR_SLUG}"),
                &params![id],
                row,
            )?
            .ok_or_else(|| not_found(id))
    }

    /// Oldest first, so the default workspace leads.
    pub fn workspaces(
        &self,
        filter: &WorkspaceFilter,
        page: Paging,
    ) -> StoreResult<(u64, Vec<Workspace>)> {
        let mut conn = self.conn();
        let instr = match conn.backend() {
            Backend::Sqlite => "instr",
            Backend::Postgres => "strpos",
        };
        let condition = format!(
            "WHERE (CAST(?1 AS TEXT) IS NULL OR {instr}(lower(name), lower(?1)) > 0)
            AND (CAST(?2 AS TEXT) IS NULL OR name = ?2)"
        );
        let total: u64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM workspaces {condition}"),
            &params![filter.name, filter.exact_name],
            |r| r.get(0),
        )?;
        let items = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM workspaces {condition} ORDER BY created_at, id LIMIT ?3 OFFSET ?4"
            ),
            &params![filter.name, filter.exact_name, page.limit(), page.offset()],
            row,
        )?;
        Ok((total, items))
    }

    /// Every workspace, for the gateway's in-memory map.
    pub fn all_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        Ok(self
            .conn()
            .query_map(&format!("SELECT {COLUMNS} FROM workspaces"), &[], row)?)
    }

    pub fn update_workspace(&self, id: &str, change: &UpdateWorkspace) -> StoreResult<Workspace> {
        let current = self.workspace(id)?;
        let mut defaults: WorkspaceDefaults = current.defaults;
        if let Some(d) = &change.defaults {
            merge_defaults(
                &mut defaults.config_id,
                &mut defaults.metadata,
                d.config_id.as_deref(),
                &d.metadata,
            );
        }
        let name = change.name.as_ref().unwrap_or(&current.name);
        self.conn()
            .execute(
                "UPDATE workspaces SET name = ?2, description = ?3, defaults = ?4, allowed_models = ?5,
                    updated_at = ?6 WHERE id = ?1",
                &params![
                    current.id,
                    name,
                    change.description.as_ref().or(current.description.as_ref()),
                    json(&defaults),
                    change
                        .limits
                        .allowed_models
                        .as_ref()
                        .unwrap_or(&current.allowed_models)
                        .as_ref()
                        .map(json),
                    now(),
                ],
            )
            .map_err(|e| taken(e, &current.slug, name))?;
        self.workspace(&current.id)
    }

    /// Refused while the workspace has keys, so no key is left without one.
    pub fn delete_workspace(&self, id: &str) -> StoreResult<()> {
        let current = self.workspace(id)?;
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        let keys: i64 = tx.query_row(
            "SELECT COUNT(*) FROM api_keys WHERE workspace_id = ?1",
            &params![current.id],
            |r| r.get(0),
        )?;
        if keys > 0 {
            let (noun, pronoun) = if keys == 1 {
                ("API key", "it")
            } else {
                ("API keys", "them")
            };
            return Err(StoreError::Conflict(format!(
                "the workspace {:?} still has {keys} {noun}: delete {pronoun} first (`tollgate keys list -o json` shows each key's workspace_id)",
                current.slug
            )));
        }
        tx.execute("DELETE FROM workspaces WHERE id = ?1", &params![current.id])?;
        tx.commit()?;
        Ok(())
    }
}
