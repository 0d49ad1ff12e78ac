use serde_json::{Map, Value};

use super::db::{self, params, Row};
use super::{new_id, now, secrets, total, unique_or, Store, StoreError, StoreResult};
use crate::api::integrations::{CreateIntegration, Integration, UpdateIntegration};
use crate::api::Paging;

const COLUMNS: &str = "id, slug, name, provider, description, configurations, masked_key, \
    created_at, updated_at, allowed_models";

fn row(r: &Row) -> db::Result<Integration> {
    let configurations: String = r.get(5)?;
    Ok(Integration {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        ai_provider_id: r.get(3)?,
        description: r.get(4)?,
        configurations: serde_json::from_str(&configurations).unwrap_or_default(),
        masked_key: r.get(6)?,
        usage_limits: None,
        rate_limits: Vec::new(),
        allowed_models: super::keys::patterns(r.get(9)?),
        status: "active".into(),
        created_at: r.get(7)?,
        last_updated_at: r.get(8)?,
        object: "integration".into(),
    })
}

fn not_found(slug: &str) -> StoreError {
    StoreError::NotFound(format!("no integration with slug {slug:?}"))
}

impl Store {
    pub fn create_integration(&self, new: &CreateIntegration) -> StoreResult<Integration> {
        let id = new_id();
        let at = now();
        let secret = new.key.as_deref().filter(|k| !k.is_empty());
        self.conn().execute(
            &format!("INSERT INTO integrations ({COLUMNS}, secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)"),
            &params![
                id,
                new.slug,
                new.name.clone().unwrap_or_else(|| new.slug.clone()),
                new.ai_provider_id,
                new.description,
                Value::Object(new.configurations.clone()).to_string(),
                secret.map(secrets::mask),
                at,
                new.limits.allowed_models.as_ref().map(|m| Value::from(m.clone()).to_string()),
                secret.map(|k| self.cipher.seal(&id, k)),
            ],
        )
        .map_err(|e| {
            unique_or(e, || {
                StoreError::Conflict(format!(
                    "an integration with slug {:?} already exists",
                    new.slug
                ))
            })
        })?;
        self.integration(&new.slug)
    }

    pub fn integration(&self, slug: &str) -> StoreResult<Integration> {
        self.conn()
            .query_opt(
                &format!("SELECT {COLUMNS} FROM integrations WHERE slug = ?1"),
                &params![slug],
                row,
            )?
            .ok_or_else(|| not_found(slug))
    }

    pub fn integrations(&self, page: Paging) -> StoreResult<(u64, Vec<Integration>)> {
        let mut conn = self.conn();
        let total = total(&mut conn, "integrations", "", &[])?;
        let items = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM integrations ORDER BY created_at, slug LIMIT ?1 OFFSET ?2"
            ),
            &params![page.limit(), page.offset()],
            row,
        )?;
        Ok((total, items))
    }

    /// Every integration with its decrypted secret, for the gateway's in-memory map.
    pub fn integration_entries(&self) -> StoreResult<Vec<(Integration, Option<String>)>> {
        let rows = self.conn().query_map(
            &format!("SELECT {COLUMNS}, secret FROM integrations"),
            &[],
            |r| Ok((row(r)?, r.get::<Option<Vec<u8>>>(10)?)),
        )?;
        rows.into_iter()
            .map(|(i, sealed)| {
                let secret = sealed.map(|s| self.cipher.open(&i.id, &s)).transpose()?;
                Ok((i, secret))
            })
            .collect()
    }

    pub fn update_integration(
        &self,
        slug: &str,
        change: &UpdateIntegration,
    ) -> StoreResult<Integration> {
        let current = self.integration(slug)?;
        let mut configurations = current.configurations;
        merge_configurations(&mut configurations, change.configurations.as_ref());
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        tx.execute(
            "UPDATE integrations SET name = ?2, description = ?3, configurations = ?4, updated_at = ?5,
                allowed_models = ?6 WHERE id = ?1",
            &params![
                current.id,
                change.name.as_ref().unwrap_or(&current.name),
                change.description.as_ref().or(current.description.as_ref()),
                Value::Object(configurations).to_string(),
                now(),
                change
                    .limits
                    .allowed_models
                    .as_ref()
                    .unwrap_or(&current.allowed_models)
                    .as_ref()
                    .map(|m| Value::from(m.clone()).to_string()),
            ],
        )?;
        if let Some(key) = &change.key {
            let (sealed, masked) = if key.is_empty() {
                (None, None)
            } else {
                (
                    Some(self.cipher.seal(&current.id, key)),
                    Some(secrets::mask(key)),
                )
            };
            tx.execute(
                "UPDATE integrations SET secret = ?2, masked_key = ?3 WHERE id = ?1",
                &params![current.id, sealed, masked],
            )?;
        }
        tx.commit()?;
        drop(conn);
        self.integration(slug)
    }

    pub fn delete_integration(&self, slug: &str) -> StoreResult<()> {
        match self
            .conn()
            .execute("DELETE FROM integrations WHERE slug = ?1", &params![slug])?
        {
            0 => Err(not_found(slug)),
            _ => Ok(()),
        }
    }
}

/// Keys of `change` replace those in `current`; a null value removes the key.
fn merge_configurations(current: &mut Map<String, Value>, change: Option<&Map<String, Value>>) {
    for (k, v) in change.into_iter().flatten() {
        if v.is_null() {
            current.remove(k);
        } else {
            current.insert(k.clone(), v.clone());
        }
    }
}
