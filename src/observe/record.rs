//! A record on its way from a request to the store: the wire record, plus what is kept beside
//! it (the time as a number, the bodies as the bytes that went over the wire).

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::api::logs::LogRecord;
use crate::gateway::providers::adapter::Usage;

pub struct Entry {
    /// Without bodies: they travel as bytes and are stored apart.
    pub record: LogRecord,
    /// When the record was made, in milliseconds since the Unix epoch; `record.created_at` is
    /// empty until [`Entry::into_record`] writes this out.
    pub created_ms: i64,
    pub request_body: Option<Bytes>,
    pub response_body: Option<Bytes>,
    /// `record.hook_results` already encoded (for the client's body), so the writer does not
    /// encode them again; `None` when they were not, or have changed since. When this is set,
    /// `record.hook_results` may be `None`: the worker that built the results frees them (a
    /// free on the writer's thread costs more), and [`Entry::into_record`] reads them back.
    pub hook_results_json: Option<String>,
}

impl Entry {
    /// The record as live tails and the exporter get it: its time written out, and its hook
    /// results decoded back from their JSON if only that was kept.
    pub fn into_record(self) -> LogRecord {
        let mut record = self.record;
        record.created_at = format_ms(self.created_ms);
        if record.hook_results.is_none() {
            record.hook_results = self
                .hook_results_json
                .and_then(|json| serde_json::from_str(&json).ok());
        }
        record
    }
}

/// The most of one body a record keeps; the rest is cut (and the stored text is then no
/// longer JSON, so it reads back as a string).
pub const MAX_LOGGED_BODY: usize = 1024 * 1024;

/// A body as the record keeps it: its own allocation of at most [`MAX_LOGGED_BODY`] bytes, so
/// a queued record never holds on to the (larger) buffer the body arrived in.
pub fn kept_body(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&bytes[..bytes.len().min(MAX_LOGGED_BODY)])
}

/// A JSON body as the record keeps it; see [`kept_body`].
pub fn kept_json(value: &serde_json::Value) -> Bytes {
    kept_body(&serde_json::to_vec(value).unwrap_or_default())
}

/// A duration in (fractional) milliseconds, as records show them.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Metadata as Portkey keeps it: every value a string (numbers and other JSON as their text).
pub fn metadata_strings(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(_) => (k, v),
            other => (k, Value::String(other.to_string())),
        })
        .collect()
}

/// A record of `kind` made at `created_ms` with a new id and nothing else known yet. Its
/// `created_at` is left empty: the record travels in an [`Entry`] with the time as `created_ms`,
/// the store keeps that, and [`Entry::into_record`] writes it out (on the writer's thread, and
/// only for live tails and the exporter).
pub fn blank(kind: &str, created_ms: i64) -> LogRecord {
    LogRecord {
        id: crate::store::new_id_at(created_ms),
        kind: kind.to_string(),
        created_at: String::new(),
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: None,
        span_name: None,
        api_key_id: None,
        api_key_name: None,
        integration: None,
        provider: None,
        model_requested: None,
        model: None,
        endpoint: String::new(),
        status: 0,
        latency_ms: 0.0,
        ttft_ms: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        cost: None,
        cache_status: "DISABLED".to_string(),
        retry_count: 0,
        last_used_option: None,
        metadata: Default::default(),
        stream: false,
        outcome: String::new(),
        error: None,
        attempts: Vec::new(),
        bodies_logged: false,
        hook_results: None,
        cost_saved: None,
        request_body: None,
        response_body: None,
    }
}

/// Copies a usage's token counts into a record.
pub fn set_tokens(record: &mut LogRecord, usage: Usage) {
    record.input_tokens = usage.prompt_tokens;
    record.output_tokens = usage.completion_tokens;
    record.cached_tokens = usage.cached_tokens;
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The last millisecond of year 9999, the last a four-digit year can show.
const MAX_FORMATTED_MS: i64 = 253_402_300_799_999;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT_DAYS: i64 = 719_468;
/// Milliseconds in a (UTC) day.
pub const DAY_MS: i64 = 86_400_000;

/// RFC 3339 with milliseconds, UTC: `2026-12-01T09:30:00.123Z`; a time outside the years
/// 0000–9999 shows as the epoch. Written by hand: every record formats one, and through
/// `time` and `format!` it took about 3,000 instructions.
pub fn format_ms(ms: i64) -> String {
    let ms = if (-EPOCH_SHIFT_DAYS * DAY_MS..=MAX_FORMATTED_MS).contains(&ms) {
        ms
    } else {
        0
    };
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (y, mo, d) = civil_date(days);
    let mut out = String::with_capacity(24);
    for (n, width, after) in [
        (y, 4, '-'),
        (mo, 2, '-'),
        (d, 2, 'T'),
        (in_day / 3_600_000, 2, ':'),
        (in_day / 60_000 % 60, 2, ':'),
        (in_day / 1000 % 60, 2, '.'),
        (in_day % 1000, 3, 'Z'),
    ] {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10i64.pow(place) % 10) as u8));
        }
        out.push(after);
    }
    out
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01, for days
/// from 0000-03-01 on: years are counted from March, so a leap day ends its year, and
/// 400-year eras repeat exactly.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let z = days + EPOCH_SHIFT_DAYS;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

/// A new span id: 16 hex digits, as W3C trace context spells them.
pub fn new_span_id() -> String {
    crate::store::secrets::hex(&rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_764_581_400_123), "2025-12-01T09:30:00.123Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_ms(MAX_FORMATTED_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ms(MAX_FORMATTED_MS + 1), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(-62_162_035_200_000), "0000-03-01T00:00:00.000Z");
        assert_eq!(format_ms(i64::MIN), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn times_print_as_the_time_crate_formats_them() {
        let spelled = |ms: i64| {
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap();
            let format = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            );
            t.format(&format).unwrap()
        };
        // Every day over four centuries (leap and century years included), at varied times.
        let mut ms = -2_208_988_800_000; // 1900-01-01
        while ms < 10_413_792_000_000 {
            assert_eq!(format_ms(ms), spelled(ms), "{ms}");
            ms += DAY_MS + 3_723_456;
        }
    }

    #[test]
    fn kept_bodies_are_cut_at_the_limit() {
        assert_eq!(kept_body(b"{}").as_ref(), b"{}");
        assert_eq!(
            kept_body(&vec![b'x'; MAX_LOGGED_BODY + 10]).len(),
            MAX_LOGGED_BODY
        );
    }

    #[test]
    fn span_ids_are_16_hex_digits() {
        let id = new_span_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_span_id());
    }
}
