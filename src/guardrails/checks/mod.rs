//! The checks: compiled from a check id and its `parameters`, then evaluated against a
//! request or an answer.

mod content;
mod params;

use std::fmt;

use serde_json::{Map, Value};

use self::params::Params;
use super::Subject;

/// Every check id the engine runs (`default.pii` is accepted for `portkey.pii`).
pub(crate) const SUPPORTED: &[&str] = &[
    "default.regexMatch",
    "default.sentenceCount",
    "default.wordCount",
    "default.characterCount",
    "default.endsWith",
    "default.alllowercase",
    "default.alluppercase",
    "default.contains",
    "default.notNull",
];

/// A problem with a check: its id (`param` None) or one of its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckError {
    pub(crate) param: Option<String>,
    pub(crate) message: String,
}

impl CheckError {
    fn param(name: &str, message: impl Into<String>) -> Self {
        CheckError {
            param: Some(name.to_string()),
            message: message.into(),
        }
    }

    fn is_about(&self, name: &str) -> bool {
        self.param.as_deref() == Some(name)
    }

    /// `path: message`, with the path of the check's id or of the parameter within
    /// `params_path`.
    pub(crate) fn at(&self, id_path: &str, params_path: &str) -> String {
        match &self.param {
            None => format!("{id_path}: {}", self.message),
            Some(p) => format!("{params_path}.{p}: {}", self.message),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.param {
            None => f.write_str(&self.message),
            Some(p) => write!(f, "{p}: {}", self.message),
        }
    }
}

/// One check, ready to run.
#[derive(Debug)]
pub(crate) struct CompiledCheck {
    pub(crate) id: String,
    pub(crate) enabled: bool,
    pub(crate) fail_on_error: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Content(content::Content),
}

/// What a check says about one body.
pub(super) struct Found {
    pub(super) verdict: bool,
    pub(super) data: Value,
    pub(super) edit: Option<Edit>,
}

impl Found {
    fn new(verdict: bool, data: Value) -> Self {
        Found {
            verdict,
            data,
            edit: None,
        }
    }
}

/// How a check changed the body it looked at.
pub(super) enum Edit {
    /// A whole new body (a webhook's `transformedData`).
    Replace(Value),
    /// This check's redaction applied to the body; [`CompiledCheck::redact`] applies it again
    /// to another body.
    Redacted(Value),
}

/// What checks see: the subject, the body under check (the request before the call, the
/// answer after it, as earlier sequential checks left it) and that body's current text.
pub(super) struct Input<'a> {
    pub(super) subject: &'a Subject<'a>,
    pub(super) body: &'a Value,
    pub(super) text: &'a str,
    pub(super) http: &'a reqwest::Client,
}

/// Compiles check `id` (`plugin.check`) with its parameters.
pub(crate) fn compile(
    id: &str,
    parameters: &Map<String, Value>,
) -> Result<CompiledCheck, Vec<CheckError>> {
    let mut p = Params::new(parameters);
    let fail_on_error = p.flag("failOnError", false);
    let kind = match id.split_once('.') {
        Some(("default", name)) => content::compile(name, &mut p).map(Kind::Content),
        _ => None,
    };
    let Some(kind) = kind else {
        return Err(vec![CheckError {
            param: None,
            message: format!(
                "unsupported check {id:?}; supported: {}",
                SUPPORTED.join(", ")
            ),
        }]);
    };
    let kind = p.finish(kind)?;
    Ok(CompiledCheck {
        id: id.to_string(),
        enabled: true,
        fail_on_error,
        kind,
    })
}

impl CompiledCheck {
    /// The check's verdict on `input`, or why it could not decide.
    pub(super) async fn evaluate(&self, input: &Input<'_>) -> Result<Found, String> {
        match &self.kind {
            Kind::Content(c) => c.evaluate(input),
        }
    }

    /// This check's redaction applied to `body`, when it redacts and found something there.
    pub(super) fn redact(&self, _subject: &Subject, _body: &Value) -> Option<Value> {
        None
    }
}
