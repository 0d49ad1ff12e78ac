//! The filter flags shared by `logs list|tail|export` and `usage`, and the query they become.

use clap::Args;

use crate::api::logs::{parse_time_bound, LogFilter, StatusFilter};
use crate::cli::args::parse_pair;

#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)
    #[arg(long, value_parser = time_bound, value_name = "TIME")]
    since: Option<String>,
    /// Only records before this time: RFC 3339 or a duration before now
    #[arg(long, value_parser = time_bound, value_name = "TIME")]
    until: Option<String>,
    /// The model, e.g. gpt-4o
    #[arg(long)]
    model: Option<String>,
    /// The provider, e.g. openai
    #[arg(long)]
    provider: Option<String>,
    /// A status code (429) or class (5xx)
    #[arg(long, value_parser = StatusFilter::parse, value_name = "CODE|CLASS")]
    status: Option<StatusFilter>,
    /// The user (metadata _user)
    #[arg(long)]
    user: Option<String>,
    /// The API key that made the request, by id or name
    #[arg(long, value_name = "ID|NAME")]
    key: Option<String>,
    /// A metadata value the records must carry (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    metadata: Vec<(String, String)>,
    /// Only the records of this trace
    #[arg(long)]
    trace_id: Option<String>,
    /// Only records that cost at least this much, in USD
    #[arg(long, value_parser = non_negative, value_name = "USD")]
    min_cost: Option<f64>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> LogFilter {
        LogFilter {
            since: self.since.clone(),
            until: self.until.clone(),
            model: self.model.clone(),
            provider: self.provider.clone(),
            status: self.status,
            api_key: self.key.clone(),
            trace_id: self.trace_id.clone(),
            user: self.user.clone(),
            metadata: self.metadata.clone(),
            min_cost: self.min_cost,
            ..LogFilter::default()
        }
    }
}

/// Checks a time bound here, so a typo is a usage error; the server reads the same text.
pub fn time_bound(text: &str) -> Result<String, String> {
    parse_time_bound(text, time::OffsetDateTime::now_utc()).map(|_| text.trim().to_string())
}

fn non_negative(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a number ≥ 0"))
}

/// `path?since=1h&...`, or `path` alone for an empty filter.
pub fn with_query(path: &str, filter: &LogFilter) -> String {
    let pairs = filter.to_pairs();
    if pairs.is_empty() {
        return path.to_string();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

/// One path segment, percent-encoded (ids and metadata keys come from the user).
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        let filter = LogFilter {
            since: Some("1h".into()),
            metadata: vec![("team".into(), "a&b c".into())],
            ..LogFilter::default()
        };
        assert_eq!(
            with_query("/v1/logs", &filter),
            "/v1/logs?since=1h&metadata.team=a%26b+c"
        );
        assert_eq!(with_query("/v1/logs", &LogFilter::default()), "/v1/logs");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn bad_bounds_and_costs_are_usage_errors() {
        assert_eq!(time_bound("7d"), Ok("7d".into()));
        assert!(time_bound("2026-12-01T09:00:00Z").is_ok());
        assert!(time_bound("yesterday").is_err());
        assert!(non_negative("-1").is_err());
        assert_eq!(non_negative("0.25"), Ok(0.25));
    }
}
