//! Reading a check's `parameters` once, when the hook is compiled, with messages that say what
//! is wrong and what to write instead.

use serde_json::{Map, Value};

use super::CheckError;

pub(super) struct Params<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<CheckError>,
}

impl<'a> Params<'a> {
    pub(super) fn new(map: &'a Map<String, Value>) -> Self {
        Params {
            map,
            errors: Vec::new(),
        }
    }

    /// A parameter; `null` counts as absent, as Portkey's UI writes it for unset fields.
    pub(super) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub(super) fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(CheckError::param(name, message));
    }

    pub(super) fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.get(name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(name, "expected true or false");
                default
            }
        }
    }

    /// A non-negative integer; `3.0` counts, as in JavaScript.
    pub(super) fn count(&mut self, name: &str, default: u64) -> u64 {
        let Some(v) = self.get(name) else {
            return default;
        };
        match v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }) {
            Some(n) => n,
            None => {
                self.error(name, format!("expected a non-negative integer, found {v}"));
                default
            }
        }
    }

    pub(super) fn string(&mut self, name: &str) -> Option<String> {
        match self.get(name) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.error(name, format!("expected a string, found {v}"));
                None
            }
        }
    }

    /// A string that must be there and not be empty; `what` says what it is for.
    pub(super) fn required_string(&mut self, name: &str, what: &str) -> String {
        match self.string(name) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                self.error(name, format!("must not be empty: {what}"));
                String::new()
            }
            None if self.get(name).is_some() => String::new(),
            None => {
                self.error(name, format!("required: {what}"));
                String::new()
            }
        }
    }

    /// A list of strings: a JSON array, or one comma-separated string as Portkey's UI sends.
    pub(super) fn list(&mut self, name: &str) -> Vec<String> {
        match self.get(name) {
            None => Vec::new(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => self.error(
                            &format!("{name}[{i}]"),
                            format!("expected a string, found {item}"),
                        ),
                    }
                }
                out
            }
            Some(v) => {
                self.error(name, format!("expected an array of strings, found {v}"));
                Vec::new()
            }
        }
    }

    /// A list that must have at least one item; `what` says what the items are.
    pub(super) fn required_list(&mut self, name: &str, what: &str) -> Vec<String> {
        let out = self.list(name);
        if out.is_empty() && self.errors.iter().all(|e| !e.is_about(name)) {
            self.error(name, format!("required: a non-empty array of {what}"));
        }
        out
    }

    /// One of `options` (exact spelling).
    pub(super) fn choice(
        &mut self,
        name: &str,
        options: &[&'static str],
        default: &'static str,
    ) -> &'static str {
        let Some(s) = self.string(name) else {
            return default;
        };
        match options.iter().find(|o| **o == s) {
            Some(o) => o,
            None => {
                self.error(
                    name,
                    format!(
                        "unknown value {s:?}; expected one of {}",
                        options.join(", ")
                    ),
                );
                default
            }
        }
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, Vec<CheckError>> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors)
        }
    }
}
