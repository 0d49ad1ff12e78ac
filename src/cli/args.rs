//! Arguments, and parsers of argument values, shared by several commands.

use std::path::PathBuf;

use serde_json::{Map, Value};

pub use crate::api::parse_duration;
use crate::store::Location;

/// Where the store is (`serve` and `db`).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]
    #[arg(long, env = crate::env::TOLLGATE_DATA_DIR, hide_env_values = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The Postgres database that holds everything, instead of SQLite in the data dir, e.g.
    /// postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite
    #[arg(long, env = crate::env::TOLLGATE_DATABASE_URL, hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
}

impl StoreArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(crate::env::default_data_dir)
    }

    pub fn database_url(&self) -> Option<String> {
        self.database_url.clone().filter(|url| !url.is_empty())
    }

    pub fn location(&self) -> Location {
        Location::of(&self.data_dir(), self.database_url().as_deref())
    }
}

/// `key=value` → (key, value).
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

pub fn metadata(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// RFC 3339 time `seconds` from now.
pub fn from_now(seconds: u64) -> String {
    crate::store::format_time(
        time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds as i64),
    )
}

/// `a,b , c` → `["a","b","c"]`, dropping empty items.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("90m"), Ok(5_400));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("10").unwrap_err().contains("unit"));
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn pairs_and_lists() {
        assert_eq!(parse_pair("team=ml"), Ok(("team".into(), "ml".into())));
        assert_eq!(parse_pair("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert!(parse_pair("novalue").is_err());
        assert_eq!(split_list("a, b,,c"), vec!["a", "b", "c"]);
    }
}
