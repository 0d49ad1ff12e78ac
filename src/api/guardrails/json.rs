//! `hook_results` written straight to JSON text. They go into the body of every guarded answer
//! and its record, and serde's generic path (calls per field, per `data` value and per string
//! fragment) took twice the instructions (docs/performance.md, issue 7). The text is the same
//! as `serde_json::to_string` gives: compact, fields in declaration order, `None` fields
//! skipped where the type skips them, non-finite floats as `null`.

use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Value;

use super::{CheckData, CheckResult, HookResult, HookResults};

impl HookResults {
    /// The same text as `serde_json::to_string(self)`.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"{\"before_request_hooks\":");
        list(&mut out, &self.before_request_hooks, hook);
        out.extend_from_slice(b",\"after_request_hooks\":");
        list(&mut out, &self.after_request_hooks, hook);
        out.push(b'}');
        // Only ever fails if a piece above were not UTF-8; serde then writes it.
        String::from_utf8(out)
            .ok()
            .or_else(|| serde_json::to_string(self).ok())
            .unwrap_or_default()
    }
}

fn hook(out: &mut Vec<u8>, h: &HookResult) {
    field(out, b"{\"id\":");
    string(out, &h.id);
    field(out, b",\"verdict\":");
    boolean(out, h.verdict);
    field(out, b",\"deny\":");
    boolean(out, h.deny);
    field(out, b",\"async\":");
    boolean(out, h.r#async);
    field(out, b",\"type\":");
    string(out, &h.r#type);
    field(out, b",\"transformed\":");
    boolean(out, h.transformed);
    field(out, b",\"checks\":");
    list(out, &h.checks, check);
    field(out, b",\"feedback\":");
    optional(out, h.feedback.as_ref());
    field(out, b",\"execution_time\":");
    float(out, h.execution_time);
    field(out, b",\"created_at\":");
    string(out, &h.created_at);
    if let Some(skipped) = h.skipped {
        field(out, b",\"skipped\":");
        boolean(out, skipped);
    }
    out.push(b'}');
}

fn check(out: &mut Vec<u8>, c: &CheckResult) {
    field(out, b"{\"id\":");
    string(out, &c.id);
    field(out, b",\"verdict\":");
    boolean(out, c.verdict);
    field(out, b",\"data\":");
    data(out, &c.data);
    if let Some(error) = &c.error {
        field(out, b",\"error\":");
        string(out, error);
    }
    field(out, b",\"execution_time\":");
    float(out, c.execution_time);
    field(out, b",\"created_at\":");
    string(out, &c.created_at);
    field(out, b",\"transformed\":");
    boolean(out, c.transformed);
    if let Some(log) = &c.log {
        field(out, b",\"log\":");
        value(out, log);
    }
    field(out, b",\"fail_on_error\":");
    boolean(out, c.fail_on_error);
    out.push(b'}');
}

/// The one definition of typed check data's JSON; serde writes it through this too.
pub(super) fn data(out: &mut Vec<u8>, d: &CheckData) {
    match d {
        CheckData::Json(v) => value(out, v),
        CheckData::Regex {
            pattern,
            not,
            matched,
        } => {
            field(out, b"{\"regexPattern\":");
            string(out, pattern);
            field(out, b",\"not\":");
            boolean(out, *not);
            field(out, b",\"matchedText\":");
            match matched {
                Some(m) => string(out, m),
                None => field(out, b"null"),
            }
            out.push(b'}');
        }
        CheckData::Count {
            key,
            count,
            min,
            max,
            not,
        } => {
            out.push(b'{');
            string(out, key);
            out.push(b':');
            integer(out, *count);
            field(out, b",\"min\":");
            integer(out, *min);
            field(out, b",\"max\":");
            integer(out, *max);
            field(out, b",\"not\":");
            boolean(out, *not);
            out.push(b'}');
        }
        CheckData::Pii { detected, redacted } => {
            field(out, b"{\"detected\":");
            list(out, detected, |out, d| {
                field(out, b"{\"category\":");
                string(out, d.category);
                field(out, b",\"count\":");
                integer(out, d.count);
                out.push(b'}');
            });
            field(out, b",\"redacted\":");
            boolean(out, *redacted);
            out.push(b'}');
        }
    }
}

fn field(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
}

fn list<T>(out: &mut Vec<u8>, items: &[T], write: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn optional(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        Some(v) => value(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => boolean(out, *b),
        // Writing into a Vec cannot fail.
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => integer(out, u),
            (None, Some(i)) => {
                let _ = CompactFormatter.write_i64(out, i);
            }
            _ => {
                let _ = CompactFormatter.write_f64(out, n.as_f64().unwrap_or_default());
            }
        },
        Value::String(s) => string(out, s),
        Value::Array(items) => list(out, items, value),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                value(out, v);
            }
            out.push(b'}');
        }
    }
}

fn integer(out: &mut Vec<u8>, n: u64) {
    let _ = CompactFormatter.write_u64(out, n);
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// As serde_json writes an `f64`: `null` when it is not finite.
fn float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = CompactFormatter.write_f64(out, f);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A JSON string: copied as it is when nothing in it needs escaping (the usual case), else
/// escaped by serde_json.
fn string(out: &mut Vec<u8>, s: &str) {
    // Without an early exit the scan compiles to vector compares.
    let plain = s.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{CheckData, CheckResult, Detected, HookResult, HookResults};

    fn check(id: &str, data: impl Into<CheckData>, time: f64) -> CheckResult {
        CheckResult {
            id: id.into(),
            verdict: true,
            data: data.into(),
            error: None,
            execution_time: time,
            created_at: "2026-12-01T22:50:00.000Z".into(),
            transformed: false,
            log: None,
            fail_on_error: false,
        }
    }

    fn regex(matched: Option<&str>) -> CheckData {
        CheckData::Regex {
            pattern: "(?i)pass\\s*\"".into(),
            not: true,
            matched: matched.map(String::from),
        }
    }

    fn count() -> CheckData {
        CheckData::Count {
            key: "wordCount",
            count: 187,
            min: 0,
            max: u64::MAX,
            not: false,
        }
    }

    fn pii() -> CheckData {
        let detected = |category, count| Detected { category, count };
        CheckData::Pii {
            detected: vec![detected("EMAIL_ADDRESS", 2), detected("SSN", 1)],
            redacted: true,
        }
    }

    /// Typed data is the object the checks built with `json!` before it had types, keys in
    /// the same order, and equal to that JSON.
    #[test]
    fn typed_data_is_the_json_the_checks_wrote() {
        let cases = [
            (
                regex(Some("Password =")),
                json!({"regexPattern": "(?i)pass\\s*\"", "not": true, "matchedText": "Password ="}),
            ),
            (
                regex(None),
                json!({"regexPattern": "(?i)pass\\s*\"", "not": true, "matchedText": null}),
            ),
            (
                count(),
                json!({"wordCount": 187, "min": 0, "max": u64::MAX, "not": false}),
            ),
            (
                pii(),
                json!({"detected": [{"category": "EMAIL_ADDRESS", "count": 2},
                                    {"category": "SSN", "count": 1}], "redacted": true}),
            ),
        ];
        for (typed, want) in cases {
            assert_eq!(serde_json::to_string(&typed).unwrap(), want.to_string());
            assert_eq!(typed, CheckData::Json(want));
        }
        assert_ne!(count(), CheckData::Json(json!({"wordCount": 186})));
    }

    #[test]
    fn the_same_text_as_serde_json() {
        let awkward = "quote \" backslash \\ slash / nl \n tab \t cr \r bs \u{8} ff \u{c} \
                       ctl \u{1}\u{1f} del \u{7f} é 😀 \u{2028} end";
        let mut errored = check("default.webhook", json!({"explanation": awkward}), f64::NAN);
        errored.error = Some(awkward.to_string());
        errored.log = Some(json!({"request": {"url": "http://x/\"y\""}, "n": [1, -2, 0.5]}));
        errored.fail_on_error = true;
        let numbers = json!({
            "u": u64::MAX, "i": i64::MIN, "zero": 0, "float": 0.1, "whole": 3.0,
            "tiny": 1e-7, "huge": 1e300, "neg": -0.0, "empty": {}, "none": [], "null": null,
            awkward: [true, false, awkward, {"nested": {"deeper": [[]]}}],
        });
        let input = HookResult {
            id: "pg-guard \"1\"".into(),
            verdict: false,
            deny: true,
            r#async: false,
            r#type: "guardrail".into(),
            transformed: true,
            checks: vec![
                check("default.regexMatch", numbers, 0.012_345_678_9),
                errored,
                check(
                    "portkey.pii",
                    json!({"detected": [], "redacted": false}),
                    f64::INFINITY,
                ),
                check("default.regexMatch", regex(Some(awkward)), 0.5),
                check("default.regexMatch", regex(None), 0.5),
                check("default.wordCount", count(), 0.25),
                check("portkey.pii", pii(), 0.75),
            ],
            feedback: Some(json!({"value": 5, "weight": 1.5, "metadata": {"failedChecks": "a,b"}})),
            execution_time: 1234.5,
            created_at: "2026-12-01T22:50:00.000Z".into(),
            skipped: None,
        };
        let mut output = input.clone();
        output.feedback = None;
        output.skipped = Some(true);
        output.checks.clear();
        output.execution_time = 0.0;
        for results in [
            HookResults::default(),
            HookResults {
                before_request_hooks: vec![input.clone()],
                after_request_hooks: vec![output, input],
            },
        ] {
            let want = serde_json::to_string(&results).unwrap();
            assert_eq!(results.to_json(), want);
        }
    }
}
