//! Records as CSV (RFC 4180): a fixed column list, fields quoted when they need it, CRLF line
//! ends, and structured values (metadata, bodies) as JSON text.

use std::borrow::Cow;

use serde_json::Value;

use crate::api::logs::LogRecord;

type Column = (&'static str, fn(&LogRecord) -> String);

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn json(value: &Option<Value>) -> String {
    value.as_ref().map(Value::to_string).unwrap_or_default()
}

const COLUMNS: &[Column] = &[
    ("id", |r| r.id.clone()),
    ("created_at", |r| r.created_at.clone()),
    ("kind", |r| r.kind.clone()),
    ("trace_id", |r| r.trace_id.clone()),
    ("span_id", |r| r.span_id.clone()),
    ("parent_span_id", |r| text(&r.parent_span_id)),
    ("span_name", |r| text(&r.span_name)),
    ("api_key_id", |r| text(&r.api_key_id)),
    ("api_key_name", |r| text(&r.api_key_name)),
    ("integration", |r| text(&r.integration)),
    ("provider", |r| text(&r.provider)),
    ("model_requested", |r| text(&r.model_requested)),
    ("model", |r| text(&r.model)),
    ("endpoint", |r| r.endpoint.clone()),
    ("status", |r| r.status.to_string()),
    ("outcome", |r| r.outcome.clone()),
    ("error", |r| text(&r.error)),
    ("latency_ms", |r| r.latency_ms.to_string()),
    ("ttft_ms", |r| {
        r.ttft_ms.map(|t| t.to_string()).unwrap_or_default()
    }),
    ("input_tokens", |r| r.input_tokens.to_string()),
    ("output_tokens", |r| r.output_tokens.to_string()),
    ("cached_tokens", |r| r.cached_tokens.to_string()),
    ("cost", |r| {
        r.cost.map(|c| c.to_string()).unwrap_or_default()
    }),
    ("cache_status", |r| r.cache_status.clone()),
    ("retry_count", |r| r.retry_count.to_string()),
    ("last_used_option", |r| text(&r.last_used_option)),
    ("stream", |r| r.stream.to_string()),
    ("attempts", |r| r.attempts.len().to_string()),
    ("metadata", |r| {
        Value::Object(r.metadata.clone()).to_string()
    }),
];

const BODY_COLUMNS: &[Column] = &[
    ("request_body", |r| json(&r.request_body)),
    ("response_body", |r| json(&r.response_body)),
];

/// The columns written: the fixed list, and the bodies when they were asked for.
pub struct Layout {
    columns: Vec<Column>,
}

impl Layout {
    pub fn new(include_bodies: bool) -> Layout {
        let mut columns = COLUMNS.to_vec();
        if include_bodies {
            columns.extend_from_slice(BODY_COLUMNS);
        }
        Layout { columns }
    }

    pub fn header(&self) -> String {
        line(self.columns.iter().map(|(name, _)| name.to_string()))
    }

    pub fn row(&self, record: &LogRecord) -> String {
        line(self.columns.iter().map(|(_, value)| value(record)))
    }
}

fn line(fields: impl Iterator<Item = String>) -> String {
    let mut out = fields
        .map(|f| quote(&f).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

fn quote(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote(""), "");
    }

    #[test]
    fn metadata_is_json_text_and_bodies_are_extra_columns() {
        let record: LogRecord = serde_json::from_value(serde_json::json!({
            "id": "log-1", "kind": "request", "created_at": "2026-12-01T09:00:00.000Z",
            "trace_id": "tr", "span_id": "sp", "parent_span_id": null, "span_name": null,
            "api_key_id": null, "api_key_name": null, "integration": null, "provider": null,
            "model_requested": null, "model": null, "endpoint": "/v1/chat/completions",
            "status": 500, "latency_ms": 12.5, "ttft_ms": null, "input_tokens": 0,
            "output_tokens": 0, "cached_tokens": 0, "cost": null, "cache_status": "DISABLED",
            "retry_count": -1, "last_used_option": null, "metadata": {"team": "a,b"},
            "stream": false, "outcome": "error", "error": "boom, \"bad\"", "attempts": [],
            "bodies_logged": true, "request_body": {"model": "x"}
        }))
        .unwrap();
        let plain = Layout::new(false);
        assert!(plain.header().starts_with("id,created_at,kind,"));
        assert!(plain.header().ends_with(",metadata\r\n"));
        let row = plain.row(&record);
        assert!(row.contains(",\"boom, \"\"bad\"\"\","), "{row}");
        assert!(
            row.ends_with(",\"{\"\"team\"\":\"\"a,b\"\"}\"\r\n"),
            "{row}"
        );
        assert!(row.contains(",12.5,,0,0,0,,DISABLED,-1,"), "{row}");
        let bodies = Layout::new(true);
        assert!(bodies.header().ends_with(",request_body,response_body\r\n"));
        assert!(bodies
            .row(&record)
            .ends_with(",\"{\"\"model\"\":\"\"x\"\"}\",\r\n"));
    }
}
