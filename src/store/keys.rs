use super::db::{self, params, Param, Row};
use super::{
    format_time, merge_defaults, new_id, now, parse_time, secrets, Store, StoreError, StoreResult,
};
use crate::api::keys::{ApiKey, ApiKeyCreated, ApiKeyRotated, KeyDefaults, UpdateApiKey};
use crate::api::Paging;

/// What the server needs to authenticate a caller; loaded into memory, never the secret.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub workspace_id: Option<String>,
    pub scopes: Vec<String>,
    pub defaults: KeyDefaults,
    pub status: String,
    pub expires_at: Option<time::OffsetDateTime>,
    pub hash: String,
    /// Model patterns the key may use; `None`: every model.
    pub allowed_models: Option<Vec<String>>,
    /// A rotated-out secret's hash and when it stops working.
    pub previous: Option<(String, time::OffsetDateTime)>,
}

pub struct NewKey {
    pub name: String,
    pub description: Option<String>,
    pub key_type: String,
    pub workspace_id: Option<String>,
    pub scopes: Vec<String>,
    pub defaults: KeyDefaults,
    pub expires_at: Option<String>,
    pub allowed_models: Option<Vec<String>>,
    /// `api` for keys made through the API, `auto` for the first admin key.
    pub creation_mode: &'static str,
}

const COLUMNS: &str =
    "id, masked, name, description, key_type, workspace_id, status, scopes, defaults,
    creation_mode, expires_at, previous_expires_at, created_at, updated_at, allowed_models";

fn row(r: &Row) -> db::Result<ApiKey> {
    let scopes: String = r.get(7)?;
    let defaults: String = r.get(8)?;
    let transition: Option<String> = r.get(11)?;
    let transition =
        transition.filter(|t| parse_time(t).is_some_and(|t| t > time::OffsetDateTime::now_utc()));
    Ok(ApiKey {
        id: r.get(0)?,
        key: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        key_type: r.get(4)?,
        workspace_id: r.get(5)?,
        status: r.get(6)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        defaults: serde_json::from_str(&defaults).unwrap_or_default(),
        usage_limits: None,
        rate_limits: Vec::new(),
        allowed_models: patterns(r.get(14)?),
        creation_mode: r.get(9)?,
        expires_at: r.get(10)?,
        key_transition_expires_at: transition,
        created_at: r.get(12)?,
        last_updated_at: r.get(13)?,
        object: "api-key".into(),
    })
}

/// A stored allow-list: a JSON array, or NULL for none.
pub(super) fn patterns(column: Option<String>) -> Option<Vec<String>> {
    column.and_then(|text| serde_json::from_str(&text).ok())
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("no API key with id {id:?}"))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

fn merged_defaults(current: &KeyDefaults, change: Option<&KeyDefaults>) -> KeyDefaults {
    let mut merged = current.clone();
    if let Some(change) = change {
        merge_defaults(
            &mut merged.config_id,
            &mut merged.metadata,
            change.config_id.as_deref(),
            &change.metadata,
        );
        if change.log_bodies.is_some() {
            merged.log_bodies = change.log_bodies;
        }
    }
    merged
}

impl Store {
    pub fn count_api_keys(&self) -> StoreResult<u64> {
        super::total(&mut self.conn(), "api_keys", "", &[])
    }

    /// Creates a key; the returned secret exists nowhere else.
    pub fn create_api_key(&self, new: &NewKey) -> StoreResult<ApiKeyCreated> {
        let (id, key, at) = (new_id(), secrets::new_api_key(), now());
        self.conn().execute(
            "INSERT INTO api_keys (id, name, description, key_type, workspace_id, hash, masked, scopes,
                defaults, creation_mode, expires_at, created_at, updated_at, allowed_models)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
            &params![
                id,
                new.name,
                new.description,
                new.key_type,
                new.workspace_id,
                secrets::hash_api_key(&key),
                secrets::mask(&key),
                json(&new.scopes),
                json(&new.defaults),
                new.creation_mode,
                new.expires_at,
                at,
                new.allowed_models.as_ref().map(json),
            ],
        )?;
        Ok(ApiKeyCreated {
            id,
            key,
            object: "api-key".into(),
        })
    }

    pub fn api_key(&self, id: &str) -> StoreResult<ApiKey> {
        self.conn()
            .query_opt(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
                &params![id],
                row,
            )?
            .ok_or_else(|| not_found(id))
    }

    /// Keys of the given types, oldest first.
    pub fn api_keys(&self, types: &[&str], page: Paging) -> StoreResult<(u64, Vec<ApiKey>)> {
        let n = types.len();
        let filter = format!("WHERE key_type IN ({})", super::placeholders(1, n));
        let mut values: Vec<Param> = types.iter().map(|t| Param::Text((*t).into())).collect();
        let mut conn = self.conn();
        let total = super::total(&mut conn, "api_keys", &filter, &values)?;
        values.extend([
            Param::Int(page.limit().into()),
            Param::Int(page.offset() as i64),
        ]);
        let items = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM api_keys {filter} ORDER BY created_at, id \
                 LIMIT ?{} OFFSET ?{}",
                n + 1,
                n + 2
            ),
            &values,
            row,
        )?;
        Ok((total, items))
    }

    pub fn update_api_key(&self, id: &str, change: &UpdateApiKey) -> StoreResult<ApiKey> {
        let current = self.api_key(id)?;
        self.conn().execute(
            "UPDATE api_keys SET name = ?2, description = ?3, scopes = ?4, defaults = ?5, expires_at = ?6,
                updated_at = ?7, allowed_models = ?8 WHERE id = ?1",
            &params![
                id,
                change.name.as_ref().unwrap_or(&current.name),
                change.description.as_ref().or(current.description.as_ref()),
                json(change.scopes.as_ref().unwrap_or(&current.scopes)),
                json(&merged_defaults(&current.defaults, change.defaults.as_ref())),
                change.expires_at.as_ref().or(current.expires_at.as_ref()),
                now(),
                change
                    .limits
                    .allowed_models
                    .as_ref()
                    .unwrap_or(&current.allowed_models)
                    .as_ref()
                    .map(json),
            ],
        )?;
        self.api_key(id)
    }

    pub fn delete_api_key(&self, id: &str) -> StoreResult<()> {
        match self
            .conn()
            .execute("DELETE FROM api_keys WHERE id = ?1", &params![id])?
        {
            0 => Err(not_found(id)),
            _ => Ok(()),
        }
    }

    /// Gives the key a new secret; the old one keeps working for `grace_ms`.
    pub fn rotate_api_key(&self, id: &str, grace_ms: u64) -> StoreResult<ApiKeyRotated> {
        let key = secrets::new_api_key();
        // Stored times have whole seconds: round the end up so a grace is never cut short.
        let until = (grace_ms > 0).then(|| {
            let end = time::OffsetDateTime::now_utc()
                + time::Duration::milliseconds(grace_ms.min(i64::MAX as u64 / 2) as i64);
            format_time(
                end + time::Duration::nanoseconds(i64::from(
                    (1_000_000_000 - end.nanosecond()) % 1_000_000_000,
                )),
            )
        });
        let changed = self.conn().execute(
            "UPDATE api_keys SET previous_hash = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN NULL ELSE hash END,
                previous_expires_at = ?3, hash = ?2, masked = ?4, updated_at = ?5 WHERE id = ?1",
            &params![
                id,
                secrets::hash_api_key(&key),
                until,
                secrets::mask(&key),
                now()
            ],
        )?;
        if changed == 0 {
            return Err(not_found(id));
        }
        Ok(ApiKeyRotated {
            id: id.into(),
            key,
            key_transition_expires_at: until,
        })
    }

    /// Every key, for the server's in-memory index.
    pub fn key_records(&self) -> StoreResult<Vec<KeyRecord>> {
        let records = self.conn().query_map(
            "SELECT id, name, key_type, workspace_id, scopes, defaults, status, expires_at, hash,
                previous_hash, previous_expires_at, allowed_models FROM api_keys",
            &[],
            |r| {
                let scopes: String = r.get(4)?;
                let defaults: String = r.get(5)?;
                let expires_at: Option<String> = r.get(7)?;
                let previous_hash: Option<String> = r.get(9)?;
                let previous_until: Option<String> = r.get(10)?;
                Ok(KeyRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    key_type: r.get(2)?,
                    workspace_id: r.get(3)?,
                    scopes: serde_json::from_str(&scopes).unwrap_or_default(),
                    defaults: serde_json::from_str(&defaults).unwrap_or_default(),
                    status: r.get(6)?,
                    expires_at: expires_at.as_deref().and_then(parse_time),
                    hash: r.get(8)?,
                    allowed_models: patterns(r.get(11)?),
                    previous: previous_hash.zip(previous_until.as_deref().and_then(parse_time)),
                })
            },
        )?;
        Ok(records)
    }
}
