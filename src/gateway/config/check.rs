//! Building blocks shared by the config validators: the error sink, JSON paths, key
//! normalisation (camelCase → snake_case), "did you mean" suggestions and type checks whose
//! messages name the expected type and what was found.

use serde_json::{Map, Value};

use super::ValidationError;

/// Collects every error found, in the order the walk meets them.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<ValidationError>);

impl Errors {
    pub(super) fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// `expected an integer, found string "3"`.
    pub(super) fn expected(&mut self, path: &str, what: &str, found: &Value) {
        self.push(path, format!("expected {what}, found {}", describe(found)));
    }
}

/// `a.b` from `a` and `b`; the root path is "".
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// How a value reads in an error message: `string "3"`, `number 1.5`, `an array`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// A string as JSON, shortened so a pasted prompt does not flood the message.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        return Value::from(s).to_string();
    }
    let short: String = s.chars().take(MAX).collect();
    let quoted = Value::from(short).to_string();
    format!("{}...\"", &quoted[..quoted.len() - 1])
}

/// `onStatusCodes` → `on_status_codes`, `strictOpenAICompliance` → `strict_open_ai_compliance`.
/// snake_case input comes back unchanged.
pub(crate) fn snake_case(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The closest of `known` within edit distance 2, if any (first wins a tie).
pub(super) fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2 && *d < name.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `unknown field "stratgy"; did you mean "strategy"?`. Short lists of accepted names are
/// spelled out when nothing is close.
pub(super) fn unknown_field(e: &mut Errors, f: &Field, known: &[&str]) {
    let mut msg = format!("unknown field {}", quote(f.key));
    if let Some(s) = suggest(&f.name, known) {
        msg.push_str(&format!("; did you mean {}?", quote(s)));
    } else if known.len() <= 12 {
        msg.push_str(&format!("; expected one of {}", known.join(", ")));
    }
    e.push(&f.path, msg);
}

/// One key of a JSON object: as written (`key`, used in paths) and normalised (`name`).
pub(super) struct Field<'a> {
    pub(super) key: &'a str,
    pub(super) name: String,
    pub(super) value: &'a Value,
    pub(super) path: String,
}

/// The keys of `obj` in document order, with camelCase normalised to snake_case. A key that
/// normalises to one already seen (`overrideParams` next to `override_params`) is an error.
pub(super) fn fields<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    e: &mut Errors,
) -> Vec<Field<'a>> {
    let mut out: Vec<Field<'a>> = Vec::with_capacity(obj.len());
    for (key, value) in obj {
        let name = snake_case(key);
        let path = join(path, key);
        if let Some(first) = out.iter().find(|f| f.name == name) {
            e.push(
                &path,
                format!(
                    "duplicate field: {} and {} are the same setting",
                    quote(first.key),
                    quote(key)
                ),
            );
            continue;
        }
        out.push(Field {
            key,
            name,
            value,
            path,
        });
    }
    out
}

pub(super) fn get<'f, 'a>(fields: &'f [Field<'a>], name: &str) -> Option<&'f Field<'a>> {
    fields.iter().find(|f| f.name == name)
}

pub(super) fn object<'a>(
    v: &'a Value,
    path: &str,
    e: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        e.expected(path, "an object", v);
    }
    o
}

pub(super) fn array<'a>(v: &'a Value, path: &str, e: &mut Errors) -> Option<&'a Vec<Value>> {
    let a = v.as_array();
    if a.is_none() {
        e.expected(path, "an array", v);
    }
    a
}

/// An array with at least one item.
pub(super) fn non_empty_array<'a>(
    v: &'a Value,
    path: &str,
    e: &mut Errors,
) -> Option<&'a Vec<Value>> {
    let a = array(v, path, e)?;
    if a.is_empty() {
        e.push(path, "must not be empty");
        return None;
    }
    Some(a)
}

pub(super) fn string<'a>(v: &'a Value, path: &str, e: &mut Errors) -> Option<&'a str> {
    let s = v.as_str();
    if s.is_none() {
        e.expected(path, "a string", v);
    }
    s
}

pub(super) fn non_empty_string<'a>(v: &'a Value, path: &str, e: &mut Errors) -> Option<&'a str> {
    let s = string(v, path, e)?;
    if s.trim().is_empty() {
        e.push(path, "must not be empty");
        return None;
    }
    Some(s)
}

pub(super) fn boolean(v: &Value, path: &str, e: &mut Errors) -> Option<bool> {
    let b = v.as_bool();
    if b.is_none() {
        e.expected(path, "a boolean", v);
    }
    b
}

pub(super) fn number(v: &Value, path: &str, e: &mut Errors) -> Option<f64> {
    let n = v.as_f64();
    if n.is_none() {
        e.expected(path, "a number", v);
    }
    n
}

/// An integer; `3.0` counts, as it does in JavaScript.
pub(super) fn integer(v: &Value, path: &str, e: &mut Errors) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
        _ => None,
    };
    if n.is_none() {
        e.expected(path, "an integer", v);
    }
    n
}

/// An integer in `lo..=hi`: `must be between 0 and 5, found 9`.
pub(super) fn int_in(v: &Value, path: &str, lo: i64, hi: i64, e: &mut Errors) -> Option<i64> {
    let n = integer(v, path, e)?;
    if !(lo..=hi).contains(&n) {
        e.push(path, format!("must be between {lo} and {hi}, found {n}"));
        return None;
    }
    Some(n)
}

/// An integer of at least `min`: `must be >= 30000, found 100`.
pub(super) fn int_at_least(v: &Value, path: &str, min: i64, e: &mut Errors) -> Option<i64> {
    let n = integer(v, path, e)?;
    if n < min {
        e.push(path, format!("must be >= {min}, found {n}"));
        return None;
    }
    Some(n)
}

/// `must be a positive integer, found 0`.
pub(super) fn positive_int(v: &Value, path: &str, e: &mut Errors) -> Option<i64> {
    let n = integer(v, path, e)?;
    if n < 1 {
        e.push(path, format!("must be a positive integer, found {n}"));
        return None;
    }
    Some(n)
}

/// An array of HTTP status codes, each 100..=599.
pub(super) fn status_codes(v: &Value, path: &str, e: &mut Errors) {
    for (i, item) in array(v, path, e).into_iter().flatten().enumerate() {
        let p = index(path, i);
        if let Some(n) = integer(item, &p, e) {
            if !(100..=599).contains(&n) {
                e.push(
                    &p,
                    format!("must be an HTTP status code between 100 and 599, found {n}"),
                );
            }
        }
    }
}

pub(super) fn strings<'a>(v: &'a Value, path: &str, e: &mut Errors) -> Vec<(String, &'a str)> {
    let mut out = Vec::new();
    for (i, item) in array(v, path, e).into_iter().flatten().enumerate() {
        let p = index(path, i);
        if let Some(s) = string(item, &p, e) {
            out.push((p, s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_case_normalises_camel_and_keeps_snake() {
        assert_eq!(snake_case("onStatusCodes"), "on_status_codes");
        assert_eq!(snake_case("on_status_codes"), "on_status_codes");
        assert_eq!(
            snake_case("strictOpenAiCompliance"),
            "strict_open_ai_compliance"
        );
        assert_eq!(
            snake_case("strictOpenAICompliance"),
            "strict_open_ai_compliance"
        );
        assert_eq!(snake_case("awsAccessKeyId"), "aws_access_key_id");
        assert_eq!(snake_case("cbConfig"), "cb_config");
        assert_eq!(snake_case("$and"), "$and");
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let known = ["strategy", "targets", "retry"];
        assert_eq!(suggest("stratgy", &known), Some("strategy"));
        assert_eq!(suggest("target", &known), Some("targets"));
        assert_eq!(suggest("zzzzzz", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn describe_and_type_messages() {
        let mut e = Errors::default();
        assert_eq!(integer(&json!("3"), "retry.attempts", &mut e), None);
        assert_eq!(integer(&json!(3.0), "x", &mut e), Some(3));
        assert_eq!(integer(&json!(3.5), "y", &mut e), None);
        assert_eq!(
            e.0[0].to_string(),
            r#"retry.attempts: expected an integer, found string "3""#
        );
        assert_eq!(
            e.0[1].to_string(),
            "y: expected an integer, found number 3.5"
        );
        assert_eq!(describe(&json!(null)), "null");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!({})), "an object");
        assert_eq!(describe(&json!(true)), "boolean true");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("\"{}...\"", "x".repeat(40)));
    }

    #[test]
    fn ranges_and_status_codes() {
        let mut e = Errors::default();
        int_in(&json!(9), "a", 0, 5, &mut e);
        int_at_least(&json!(100), "b", 30000, &mut e);
        status_codes(&json!([429, 99, "500"]), "c", &mut e);
        let got: Vec<String> = e.0.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            got,
            [
                "a: must be between 0 and 5, found 9",
                "b: must be >= 30000, found 100",
                "c[1]: must be an HTTP status code between 100 and 599, found 99",
                r#"c[2]: expected an integer, found string "500""#,
            ]
        );
    }

    #[test]
    fn duplicate_spellings_of_one_field_are_reported() {
        let obj = json!({"override_params": {}, "overrideParams": {}});
        let mut e = Errors::default();
        let f = fields(obj.as_object().unwrap(), "targets[0]", &mut e);
        assert_eq!(f.len(), 1);
        assert_eq!(
            e.0[0].to_string(),
            r#"targets[0].overrideParams: duplicate field: "override_params" and "overrideParams" are the same setting"#
        );
    }
}
