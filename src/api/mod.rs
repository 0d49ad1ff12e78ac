//! Wire types shared by the client and the server: the one definition of each admin resource.
//! Shapes and field names follow Portkey's admin API (portkey-wire.md section 6).

pub mod audit;
pub mod cache;
pub mod configs;
pub mod error;
pub mod governance;
pub mod guardrails;
pub mod integrations;
pub mod keys;
pub mod logs;
pub mod prompts;
pub mod scopes;
pub mod workspaces;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// For update fields where null means "remove" and absence "unchanged": `Some(None)` is null.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `{"object":"list","total":N,"data":[...]}`, the envelope of newer Portkey list responses.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub object: String,
    pub total: u64,
    pub data: Vec<T>,
}

impl<T> List<T> {
    pub fn new(total: u64, data: Vec<T>) -> Self {
        List {
            object: "list".into(),
            total,
            data,
        }
    }
}

/// Portkey's paging: `current_page` is 0-based.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    #[serde(default, alias = "currentPage")]
    pub current_page: u32,
    #[serde(default = "default_page_size", alias = "pageSize")]
    pub page_size: u32,
}

pub const MAX_PAGE_SIZE: u32 = 1000;

fn default_page_size() -> u32 {
    100
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            current_page: 0,
            page_size: default_page_size(),
        }
    }
}

impl Paging {
    pub fn limit(&self) -> u32 {
        self.page_size.clamp(1, MAX_PAGE_SIZE)
    }
    pub fn offset(&self) -> u64 {
        u64::from(self.current_page) * u64::from(self.limit())
    }
}

/// `{"success":true,"data":...}`, the envelope of older Portkey resources (configs).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Success<T> {
    pub success: bool,
    /// Set on lists: how many items there are across all pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub data: T,
}

impl<T> Success<T> {
    pub fn new(data: T) -> Self {
        Success {
            success: true,
            total: None,
            data,
        }
    }
}

impl<T> Success<Vec<T>> {
    pub fn list(total: u64, data: Vec<T>) -> Self {
        Success {
            total: Some(total),
            ..Success::new(data)
        }
    }
}

/// `GET /v1/health`: answered (200) while the server runs, whatever its store's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the store is unavailable (the gateway keeps serving).
    pub status: String,
    pub version: String,
    /// `None` only from servers that did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreHealth>,
}

pub const STORE_AVAILABLE: &str = "available";
pub const STORE_UNAVAILABLE: &str = "unavailable";

/// The store as the request recorder last found it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreHealth {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// `available` (it takes writes) or `unavailable`.
    pub state: String,
    /// When it entered that state (RFC 3339).
    pub since: String,
    /// Why it is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Request records not yet written (held in memory while the store is unavailable).
    pub queued_records: u64,
    /// Request records dropped since the server started because the queue was full while the
    /// store was unavailable.
    pub dropped_records: u64,
    /// The most records held while the store is unavailable.
    pub queue_limit: u64,
}

/// `30d`, `24h`, `90m`, `45s`, `2w` → seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30d, 24h, 90m or 45s"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text:?}: unit must be s, m, h, d or w (e.g. 30d)")),
    };
    n.checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{text:?} must be above zero and not absurdly large"))
}
