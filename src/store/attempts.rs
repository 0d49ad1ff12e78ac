//! A record's attempts as its `attempts` column keeps them: each attempt without the fields
//! that equal its record's. Most requests make one attempt, to the provider and model that
//! answered, with the record's status; stored in full it was about half of the row (209 of
//! 466 bytes in the gateway bench), and every byte is written twice on SQLite (the WAL, then
//! the database). Rows written in full before read back as they are: a field present in the
//! column always wins over the record's.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use crate::api::logs::{Attempt, LogRecord};

#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    span_id: Cow<'a, str>,
    start_offset_ms: f64,
    latency_ms: f64,
    /// Absent: the record's value. Present (`null` included): the attempt's own.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    integration: Option<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<Cow<'a, str>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    model: Option<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    retry: u32,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    last_used_option: Option<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    error: Option<Option<Cow<'a, str>>>,
}

/// A field that is present, even as `null` (which `Option<Option<_>>` alone reads as absent).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The attempt's value where it differs from the record's.
fn unless_same<'a>(
    own: &'a Option<String>,
    record: &Option<String>,
) -> Option<Option<Cow<'a, str>>> {
    (own != record).then(|| own.as_deref().map(Cow::Borrowed))
}

/// The value a stored field gives: the attempt's own where present, else the record's.
fn or_record(stored: Option<Option<Cow<str>>>, record: &Option<String>) -> Option<String> {
    stored.map_or_else(|| record.clone(), |own| own.map(Cow::into_owned))
}

/// The column's text for `record.attempts`.
pub fn encode(record: &LogRecord) -> String {
    let stored: Vec<Stored> = record
        .attempts
        .iter()
        .map(|a| Stored {
            span_id: Cow::Borrowed(&a.span_id),
            start_offset_ms: a.start_offset_ms,
            latency_ms: a.latency_ms,
            integration: unless_same(&a.integration, &record.integration),
            provider: (record.provider.as_deref() != Some(&a.provider))
                .then_some(Cow::Borrowed(&a.provider)),
            model: unless_same(&a.model, &record.model),
            retry: a.retry,
            last_used_option: unless_same(&a.last_used_option, &record.last_used_option),
            status: (a.status != record.status).then_some(a.status),
            error: unless_same(&a.error, &record.error),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The attempts of `record` (read from its row, attempts aside) from the column's text; an
/// unreadable column reads as no attempts.
pub fn decode(text: &str, record: &LogRecord) -> Vec<Attempt> {
    let stored: Vec<Stored> = serde_json::from_str(text).unwrap_or_default();
    stored
        .into_iter()
        .map(|s| Attempt {
            span_id: s.span_id.into_owned(),
            start_offset_ms: s.start_offset_ms,
            latency_ms: s.latency_ms,
            integration: or_record(s.integration, &record.integration),
            provider: s.provider.map_or_else(
                || record.provider.clone().unwrap_or_default(),
                Cow::into_owned,
            ),
            model: or_record(s.model, &record.model),
            retry: s.retry,
            last_used_option: or_record(s.last_used_option, &record.last_used_option),
            status: s.status.unwrap_or(record.status),
            error: or_record(s.error, &record.error),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::test_support::request;

    /// An attempt with every field its record's, as `request()` makes it.
    fn like_record(r: &LogRecord) -> Attempt {
        Attempt {
            span_id: "5b6ae273fb252b3d".into(),
            start_offset_ms: 0.73,
            latency_ms: 1.5,
            integration: r.integration.clone(),
            provider: r.provider.clone().unwrap(),
            model: r.model.clone(),
            retry: 0,
            last_used_option: r.last_used_option.clone(),
            status: r.status,
            error: r.error.clone(),
        }
    }

    #[test]
    fn an_attempt_like_its_record_keeps_only_its_own_fields() {
        let mut r = request();
        r.attempts = vec![like_record(&r)];
        let text = encode(&r);
        assert_eq!(
            text,
            r#"[{"span_id":"5b6ae273fb252b3d","start_offset_ms":0.73,"latency_ms":1.5}]"#
        );
        assert_eq!(decode(&text, &r), r.attempts);
    }

    #[test]
    fn fields_that_differ_are_kept_nulls_included() {
        let mut r = request();
        let mut failed = like_record(&r);
        failed.integration = None;
        failed.provider = "anthropic".into();
        failed.model = Some("claude-sonnet-4".into());
        failed.last_used_option = None;
        failed.status = 529;
        failed.error = Some("overloaded".into());
        let mut retried = like_record(&r);
        retried.retry = 2;
        r.attempts = vec![failed, retried];
        let text = encode(&r);
        for kept in [
            r#""integration":null"#,
            r#""provider":"anthropic""#,
            r#""last_used_option":null"#,
            r#""status":529"#,
            r#""error":"overloaded""#,
            r#""retry":2"#,
        ] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
        assert_eq!(decode(&text, &r), r.attempts);
    }

    #[test]
    fn rows_written_in_full_read_back_as_they_are() {
        let mut r = request();
        let mut other = like_record(&r);
        other.integration = None;
        let full = serde_json::to_string(&vec![other.clone()]).unwrap();
        assert_eq!(decode(&full, &r), vec![other]);
        assert_eq!(decode("[]", &r), vec![]);
        assert_eq!(decode("not json", &r), vec![]);
        r.attempts.clear();
        assert_eq!(encode(&r), "[]");
    }
}
