//! How one request record looks: a table row, a field list, and a line of `logs tail`.

use serde_json::Value;

use crate::api::logs::{Attempt, LogRecord};
use crate::cli::units::{duration, timestamp, tokens, usd};
use crate::output::{cell, Fields, Row};

/// The widths of the row's columns on a `logs tail` line (the last one is not padded).
const LINE_WIDTHS: [usize; 8] = [20, 6, 8, 24, 10, 11, 10, 36];

fn model(record: &LogRecord) -> Option<&str> {
    record
        .model
        .as_deref()
        .or(record.model_requested.as_deref())
}

impl Row for LogRecord {
    const HEADERS: &'static [&'static str] = &[
        "TIME", "STATUS", "LATENCY", "MODEL", "PROVIDER", "TOKENS", "COST", "TRACE", "ID",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            timestamp(&self.created_at),
            self.status.to_string(),
            duration(self.latency_ms),
            cell(model(self)),
            cell(self.provider.as_deref()),
            tokens(self.input_tokens, self.output_tokens),
            usd(self.cost),
            self.trace_id.clone(),
            self.id.clone(),
        ]
    }
}

/// The row's cells in fixed-width columns, for one line per record as they arrive.
pub fn line(record: &LogRecord) -> String {
    let cells = record.cells();
    let mut text = String::new();
    for (i, cell) in cells.iter().enumerate() {
        match LINE_WIDTHS.get(i) {
            Some(width) => text.push_str(&format!("{cell:<width$}  ")),
            None => text.push_str(cell),
        }
    }
    text
}

fn attempt(a: &Attempt) -> String {
    let retry = if a.retry > 0 {
        format!(" (retry {})", a.retry)
    } else {
        String::new()
    };
    format!(
        "{} {} {} after {} in {}{retry}{}",
        a.integration.as_deref().unwrap_or(&a.provider),
        a.model.as_deref().unwrap_or("-"),
        a.status,
        duration(a.start_offset_ms),
        duration(a.latency_ms),
        a.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
    )
}

impl Fields for LogRecord {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let key = match (&self.api_key_name, &self.api_key_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            (name, id) => cell(name.as_deref().or(id.as_deref())),
        };
        vec![
            ("id", self.id.clone()),
            ("kind", self.kind.clone()),
            ("created_at", self.created_at.clone()),
            ("trace_id", self.trace_id.clone()),
            ("span", span(self)),
            ("api key", key),
            ("endpoint", self.endpoint.clone()),
            ("model requested", cell(self.model_requested.as_deref())),
            ("model", cell(self.model.as_deref())),
            ("provider", cell(self.provider.as_deref())),
            ("integration", cell(self.integration.as_deref())),
            ("status", format!("{} ({})", self.status, self.outcome)),
            ("error", cell(self.error.as_deref())),
            ("latency", duration(self.latency_ms)),
            ("first token", cell(self.ttft_ms.map(duration).as_deref())),
            ("stream", self.stream.to_string()),
            (
                "tokens in/out/cached",
                format!(
                    "{}/{}/{}",
                    self.input_tokens, self.output_tokens, self.cached_tokens
                ),
            ),
            ("cost", usd(self.cost)),
            ("cache", self.cache_status.clone()),
            ("retries", self.retry_count.to_string()),
            ("answered by", cell(self.last_used_option.as_deref())),
            ("attempts", attempts(&self.attempts)),
            ("metadata", Value::Object(self.metadata.clone()).to_string()),
        ]
    }
}

/// One line per upstream call; `-` for a record without any (a custom span).
fn attempts(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "-".into();
    }
    attempts.iter().map(attempt).collect::<Vec<_>>().join("\n")
}

fn span(record: &LogRecord) -> String {
    let mut text = record.span_id.clone();
    if let Some(name) = &record.span_name {
        text = format!("{name} ({text})");
    }
    if let Some(parent) = &record.parent_span_id {
        text.push_str(&format!(", parent {parent}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord {
        serde_json::from_value(serde_json::json!({
            "id": "log-1", "kind": "request", "created_at": "2026-12-01T09:00:00.123Z",
            "trace_id": "tr-1", "span_id": "sp-1", "parent_span_id": null, "span_name": null,
            "api_key_id": "k1", "api_key_name": "ci", "integration": "openai-dev",
            "provider": "openai", "model_requested": "@openai-dev/gpt-4o", "model": null,
            "endpoint": "/v1/chat/completions", "status": 200, "latency_ms": 1234.0,
            "ttft_ms": null, "input_tokens": 7, "output_tokens": 3, "cached_tokens": 0,
            "cost": null, "cache_status": "DISABLED", "retry_count": 0,
            "last_used_option": null, "metadata": {}, "stream": false, "outcome": "success",
            "error": null, "attempts": [], "bodies_logged": true
        }))
        .unwrap()
    }

    #[test]
    fn a_row_falls_back_to_the_requested_model_and_shows_unknown_cost_as_a_dash() {
        let cells = record().cells();
        assert_eq!(cells[3], "@openai-dev/gpt-4o");
        assert_eq!(cells[5], "7/3");
        assert_eq!(cells[6], "-");
        assert_eq!(cells.len(), LogRecord::HEADERS.len());
    }

    #[test]
    fn a_tail_line_pads_every_column_but_the_last() {
        let text = line(&record());
        assert!(text.starts_with("2026-12-01 09:00:00Z  200     1.23 s    @openai-dev/gpt-4o"));
        assert!(text.ends_with("tr-1                                  log-1"));
    }
}
