//! The checks: compiled from a check id and its `parameters`, then evaluated against a
//! request or an answer.

mod content;
mod json;
mod params;
mod redact;
mod remote;
mod request;

use std::sync::Arc;

use serde_json::{Map, Value};

use self::params::Params;
use super::{pii, Body, Subject};
use crate::api::guardrails::CheckData;

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
    "default.jsonSchema",
    "default.jsonKeys",
    "default.modelWhitelist",
    "default.requiredMetadataKeys",
    "default.allowedRequestTypes",
    "default.validUrls",
    "default.webhook",
    "default.log",
    "default.regexReplace",
    "portkey.pii",
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

    /// The path of the check's id, or of the parameter within `params_path`.
    pub(crate) fn path(&self, id_path: &str, params_path: &str) -> String {
        match &self.param {
            None => id_path.to_string(),
            Some(p) => format!("{params_path}.{p}"),
        }
    }
}

/// One check, ready to run.
#[derive(Debug)]
pub(crate) struct CompiledCheck {
    pub(crate) id: Arc<str>,
    pub(crate) enabled: bool,
    pub(crate) fail_on_error: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Content(content::Content),
    Json(json::JsonCheck),
    Request(request::RequestCheck),
    Remote(remote::RemoteCheck),
    Rewrite(redact::Rewrite),
}

/// What a check says about one body.
pub(super) struct Found {
    pub(super) verdict: bool,
    pub(super) data: CheckData,
    pub(super) edit: Option<Edit>,
}

impl Found {
    fn new(verdict: bool, data: impl Into<CheckData>) -> Self {
        Found {
            verdict,
            data: data.into(),
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
    pub(super) body: Body<'a>,
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
        Some(("portkey" | "default", "pii")) => Some(Kind::Rewrite(redact::Rewrite::pii(&mut p))),
        Some(("default", "regexReplace")) => {
            Some(Kind::Rewrite(redact::Rewrite::regex_replace(&mut p)))
        }
        Some(("default", name)) => content::compile(name, &mut p)
            .map(Kind::Content)
            .or_else(|| json::compile(name, &mut p).map(Kind::Json))
            .or_else(|| request::compile(name, &mut p).map(Kind::Request))
            .or_else(|| remote::compile(name, &mut p).map(Kind::Remote)),
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
        id: id.into(),
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
            Kind::Json(c) => Ok(c.evaluate(input)),
            Kind::Request(c) => Ok(c.evaluate(input)),
            Kind::Remote(c) => c.evaluate(input).await,
            Kind::Rewrite(c) => Ok(c.evaluate(input)),
        }
    }

    /// Whether evaluating waits on something else (a webhook): only such checks gain from
    /// running concurrently.
    pub(super) fn waits(&self) -> bool {
        matches!(self.kind, Kind::Remote(_))
    }

    /// This check's redaction applied to `body`, when it redacts and found something there.
    pub(super) fn redact(&self, subject: &Subject, body: &Value) -> Option<Value> {
        match &self.kind {
            Kind::Rewrite(r) => r.rewrite(
                subject,
                Body::Json(body),
                &mut [0; pii::Category::ALL.len()],
            ),
            _ => None,
        }
    }
}
