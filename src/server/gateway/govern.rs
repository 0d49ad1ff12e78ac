//! Governance at each target a request tries: the model allow-lists of the key, its
//! workspace and the integration, then admission against every budget and rate limit that
//! applies. A refusal is an answer like an upstream's, so a fallback may try another target.

use axum::http::HeaderValue;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::respond::{Answer, AnswerBody};
use crate::governance::estimate::demand;
use crate::governance::ledger::Reason;
use crate::governance::rules::Kind;
use crate::governance::{Denial, Facts, Reservation};
use crate::observe::pricing::{self, Price};
use crate::observe::record::now_ms;
use crate::server::state::{AppState, IntegrationEntry};

/// The target a leaf resolved to, as governance sees it.
pub struct Target<'a> {
    pub integration: Option<(&'a str, &'a IntegrationEntry)>,
    pub provider: &'static str,
    pub model: &'a str,
    pub price: Option<Price>,
}

/// Portkey's hosted error body: `{"status":"failure","message":"Portkey Error: … Error Code:
/// NN", "error":{…}}`, with an OpenAI-style `type` so both SDKs read it.
fn refusal(status: u16, code: &str, kind: &str, message: &str) -> Answer {
    let e = super::respond::GatewayError::new(
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::FORBIDDEN),
        message,
    );
    Answer {
        body: AnswerBody::Json(json!({
            "status": "failure",
            "message": format!("Portkey Error: {message}. Error Code: {code}"),
            "error": {"message": message, "type": kind, "param": null, "code": code},
        })),
        gateway_exception: false,
        ..Answer::from_error(e, None)
    }
}

fn denied_model(whose: &str, patterns: &[String], facts: &Facts) -> Answer {
    refusal(
        403,
        "03",
        "permission_error",
        &format!(
            "model {} is not allowed for {whose}: its allowed_models are {}",
            facts.qualified_model(),
            if patterns.is_empty() {
                "empty (no model)".to_string()
            } else {
                patterns.join(", ")
            }
        ),
    )
}

fn check_models(call: &Call, target: &Target, facts: &Facts) -> Result<(), Box<Answer>> {
    let allows = |patterns: &[String]| patterns.iter().any(|p| facts.model_matches(p));
    if let Some((slug, entry)) = target.integration {
        if let Some(patterns) = entry.allowed_models.as_deref().filter(|p| !allows(p)) {
            let whose = format!("integration @{slug}");
            return Err(Box::new(denied_model(&whose, patterns, facts)));
        }
    }
    if let Some(patterns) = call.key.allowed_models.as_deref().filter(|p| !allows(p)) {
        let whose = format!("API key {:?}", call.key.name);
        return Err(Box::new(denied_model(&whose, patterns, facts)));
    }
    if let Some(w) = &call.workspace {
        if let Some(patterns) = w.allowed_models.as_deref().filter(|p| !allows(p)) {
            let whose = format!("workspace {}", w.slug);
            return Err(Box::new(denied_model(&whose, patterns, facts)));
        }
    }
    Ok(())
}

fn refused(denial: Denial, model: &str) -> Answer {
    let message = denial.message(model);
    match (denial.rule.kind, &denial.reason) {
        (Kind::Rate, Reason::Exceeded { .. }) => {
            let mut answer = refusal(429, "05", "rate_limit_exceeded", &message);
            answer.retry_after = denial.retry_after(now_ms()).map(HeaderValue::from);
            answer
        }
        (_, Reason::Unavailable(_)) => refusal(503, "06", "service_unavailable", &message),
        _ => refusal(412, "04", "budget_exceeded", &message),
    }
}

/// Checks the model and reserves the most this call can use, or refuses it.
pub fn admit(
    state: &AppState,
    call: &Call,
    target: &Target,
    body: &Map<String, Value>,
) -> Result<Reservation, Box<Answer>> {
    let facts = Facts {
        api_key: &call.key.id,
        workspace: call.key.workspace_id.as_deref(),
        integration: target.integration.map(|(slug, _)| slug),
        provider: target.provider,
        model: target.model,
        metadata: &call.metadata,
    };
    check_models(call, target, &facts)?;
    let max_output = pricing::lookup(target.provider, target.model).and_then(|i| i.max_output);
    let demand = demand(
        call.endpoint,
        call.raw_body.len(),
        body,
        target.price,
        max_output,
    );
    let mut counted = call.counted.lock().unwrap_or_else(|e| e.into_inner());
    state
        .governor
        .admit(&facts, &demand, &mut counted, now_ms())
        .map_err(|d| Box::new(refused(d, target.model)))
}
