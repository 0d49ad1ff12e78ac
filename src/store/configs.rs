use serde_json::Value;

use super::db::{self, params, Row};
use super::{new_id, new_slug, now, total, unique_or, Store, StoreError, StoreResult};
use crate::api::configs::{Config, ConfigUpdated, ConfigVersion, UpdateConfig};
use crate::api::Paging;

/// Each config joined with its newest version.
const SELECT: &str = "SELECT c.id, c.slug, c.name, v.config, c.is_default, c.status, v.version_id,
        v.version, c.created_at, c.updated_at
    FROM configs c JOIN config_versions v ON v.config_id = c.id
    AND v.version = (SELECT MAX(version) FROM config_versions WHERE config_id = c.id)";

fn row(r: &Row) -> db::Result<Config> {
    let config: String = r.get(3)?;
    Ok(Config {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        config: serde_json::from_str(&config).unwrap_or(Value::Null),
        is_default: r.get(4)?,
        status: r.get(5)?,
        version_id: r.get(6)?,
        version: r.get(7)?,
        created_at: r.get(8)?,
        last_updated_at: r.get(9)?,
        object: "config".into(),
    })
}

fn not_found(slug: &str) -> StoreError {
    StoreError::NotFound(format!("no config with slug {slug:?}"))
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a config named {name:?} already exists"))
}

impl Store {
    pub fn create_config(
        &self,
        name: &str,
        config: &Value,
        is_default: bool,
    ) -> StoreResult<Config> {
        let (id, version_id, slug, at) = (new_id(), new_id(), new_slug("pc", name, "cfg"), now());
        {
            let mut conn = self.conn();
            let mut tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO configs (id, slug, name, is_default, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                &params![id, slug, name, is_default, at],
            )
            .map_err(|e| unique_or(e, || name_taken(name)))?;
            tx.execute(
                "INSERT INTO config_versions (version_id, config_id, version, config, created_at) VALUES (?1, ?2, 1, ?3, ?4)",
                &params![version_id, id, config.to_string(), at],
            )?;
            tx.commit()?;
        }
        self.config(&slug)
    }

    pub fn config(&self, slug: &str) -> StoreResult<Config> {
        self.conn()
            .query_opt(&format!("{SELECT} WHERE c.slug = ?1"), &params![slug], row)?
            .ok_or_else(|| not_found(slug))
    }

    pub fn configs(&self, page: Paging) -> StoreResult<(u64, Vec<Config>)> {
        let mut conn = self.conn();
        let total = total(&mut conn, "configs", "", &[])?;
        let items = conn.query_map(
            &format!("{SELECT} ORDER BY c.created_at, c.slug LIMIT ?1 OFFSET ?2"),
            &params![page.limit(), page.offset()],
            row,
        )?;
        Ok((total, items))
    }

    /// Every config at its newest version, for the gateway's in-memory map.
    pub fn all_configs(&self) -> StoreResult<Vec<Config>> {
        Ok(self.conn().query_map(SELECT, &[], row)?)
    }

    /// Every update adds a version; the previous ones are kept.
    pub fn update_config(&self, slug: &str, change: &UpdateConfig) -> StoreResult<ConfigUpdated> {
        let current = self.config(slug)?;
        let name = change.name.as_deref().unwrap_or(&current.name);
        let config = change.config.as_ref().unwrap_or(&current.config);
        let status = change.status.as_deref().unwrap_or(&current.status);
        let (version_id, version, at) = (new_id(), current.version + 1, now());
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        tx.execute(
            "UPDATE configs SET name = ?2, status = ?3, updated_at = ?4 WHERE id = ?1",
            &params![current.id, name, status, at],
        )
        .map_err(|e| unique_or(e, || name_taken(name)))?;
        tx.execute(
            "INSERT INTO config_versions (version_id, config_id, version, config, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &params![version_id, current.id, version, config.to_string(), at],
        )?;
        tx.commit()?;
        Ok(ConfigUpdated {
            version_id,
            version,
        })
    }

    /// Newest first.
    pub fn config_versions(&self, slug: &str) -> StoreResult<Vec<ConfigVersion>> {
        let current = self.config(slug)?;
        let versions = self.conn().query_map(
            "SELECT version_id, version, config, created_at FROM config_versions WHERE config_id = ?1 ORDER BY version DESC",
            &params![current.id],
            |r| {
                Ok(ConfigVersion {
                    version_id: r.get(0)?,
                    version: r.get(1)?,
                    slug: current.slug.clone(),
                    name: current.name.clone(),
                    config: r.get(2)?,
                    format: "json".into(),
                    created_at: r.get(3)?,
                    object: "config".into(),
                })
            },
        )?;
        Ok(versions)
    }

    pub fn delete_config(&self, slug: &str) -> StoreResult<()> {
        match self
            .conn()
            .execute("DELETE FROM configs WHERE slug = ?1", &params![slug])?
        {
            0 => Err(not_found(slug)),
            _ => Ok(()),
        }
    }
}
