//! What a check found. The checks a guarded request usually runs (regexMatch, the counts, pii)
//! give typed data, which is written out without building a JSON map per check
//! (docs/performance.md, issue 7); every other check's data, and data read back, is JSON.
//! Both are written as the same JSON object.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum CheckData {
    /// regexMatch: `{"regexPattern", "not", "matchedText"}`.
    Regex {
        pattern: Arc<str>,
        not: bool,
        matched: Option<String>,
    },
    /// sentenceCount, wordCount or characterCount: `{"<key>": count, "min", "max", "not"}`.
    Count {
        key: &'static str,
        count: u64,
        min: u64,
        max: u64,
        not: bool,
    },
    /// pii: `{"detected": [{"category", "count"}], "redacted"}`.
    Pii {
        detected: Vec<Detected>,
        redacted: bool,
    },
    /// Any other check's data, and data read back from a record or a body.
    Json(Value),
}

/// How many findings of one category the pii check made.
#[derive(Debug, Clone)]
pub struct Detected {
    pub category: &'static str,
    pub count: u64,
}

impl CheckData {
    pub fn to_value(&self) -> Value {
        match self {
            CheckData::Json(v) => v.clone(),
            typed => {
                let mut text = Vec::new();
                super::json::data(&mut text, typed);
                serde_json::from_slice(&text).unwrap_or_default()
            }
        }
    }
}

impl From<Value> for CheckData {
    fn from(v: Value) -> Self {
        CheckData::Json(v)
    }
}

/// Equal when they are the same JSON, typed or not.
impl PartialEq for CheckData {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CheckData::Json(a), CheckData::Json(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }
}

/// Typed data goes through the one writer of its JSON ([`super::json`]).
impl Serialize for CheckData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CheckData::Json(v) => v.serialize(s),
            typed => typed.to_value().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CheckData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(CheckData::Json)
    }
}
