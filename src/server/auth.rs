//! Who is calling: the API key from `x-portkey-api-key` or `Authorization: Bearer`, resolved
//! against an in-memory index so no request waits on the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
use crate::store::secrets::hash_api_key;
use crate::store::KeyRecord;

pub const PORTKEY_API_KEY: &str = "x-portkey-api-key";

/// Key hash → record. A rotated-out secret's hash maps to the same record while its grace lasts.
#[derive(Default)]
pub struct KeyIndex(RwLock<HashMap<String, Arc<KeyRecord>>>);

impl KeyIndex {
    pub fn replace(&self, records: Vec<KeyRecord>) {
        let mut map = HashMap::with_capacity(records.len() * 2);
        for record in records {
            let record = Arc::new(record);
            if let Some((previous, _)) = &record.previous {
                map.insert(previous.clone(), record.clone());
            }
            map.insert(record.hash.clone(), record);
        }
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// Key id → its workspace, for counting old records against workspace rules.
    pub fn workspaces(&self) -> HashMap<String, Option<String>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| (r.id.clone(), r.workspace_id.clone()))
            .collect()
    }

    pub fn authenticate(&self, secret: &str) -> Result<Arc<KeyRecord>, ApiError> {
        let hash = hash_api_key(secret);
        let record = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        let now = time::OffsetDateTime::now_utc();
        if record.hash != hash {
            let still_valid = record
                .previous
                .as_ref()
                .is_some_and(|(_, until)| *until > now);
            if !still_valid {
                return Err(ApiError::unauthorized(
                    "this API key was rotated and its grace period has ended",
                ));
            }
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::unauthorized("this API key has expired"));
        }
        if record.status != "active" {
            return Err(ApiError::unauthorized(format!(
                "this API key is {}",
                record.status
            )));
        }
        Ok(record)
    }
}

/// The authenticated caller of a route.
pub struct Caller(pub Arc<KeyRecord>);

impl Caller {
    pub fn has(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the API key {:?} lacks the {scope} scope",
                self.0.name
            )))
        }
    }
}

/// The key a request carries. `x-portkey-api-key` wins, so the Portkey SDK's placeholder
/// `Authorization: Bearer OPENAI_API_KEY` beside it is ignored.
pub fn presented_key(parts: &Parts) -> Option<&str> {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header(PORTKEY_API_KEY)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .or_else(|| {
            header("authorization").and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .map(str::trim)
            })
        })
        .filter(|k| !k.is_empty())
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let key = presented_key(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "missing API key: send it in the x-portkey-api-key header or as Authorization: Bearer",
            )
        })?;
        state.keys.authenticate(key).map(Caller)
    }
}
