//! Parsers for argument values shared by several commands.

use serde_json::{Map, Value};

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
