//! Traces (a trace id's records as a span tree) and feedback on them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::logs::read;
use crate::api::error::ErrorBody;
use crate::api::logs::{CreateFeedback, FeedbackCreated, Trace};
use crate::api::scopes;
use crate::observe::record::now_ms;
use crate::observe::trace;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Body;
use crate::server::state::AppState;

type S = State<Arc<AppState>>;

#[utoipa::path(get, path = "/v1/traces/{trace_id}", tag = "logs",
    description = "The trace's records as a span tree: gateway requests with their upstream attempts as child spans, and custom spans under their parents.",
    responses((status = 200, body = Trace), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<Trace>> {
    caller.require(scopes::LOGS_VIEW)?;
    let id = trace_id.clone();
    let (records, feedback) = read(&state, move |s| {
        Ok((s.trace_records(&id)?, s.feedback_for(&id)?))
    })
    .await?;
    if records.is_empty() && feedback.is_empty() {
        return Err(ApiError::not_found(format!(
            "no records with trace id {trace_id:?}"
        )));
    }
    Ok(Json(trace::build(&trace_id, &records, feedback)))
}

fn check(f: &CreateFeedback) -> ApiResult<()> {
    if f.trace_id.trim().is_empty() {
        return Err(ApiError::invalid("trace_id must not be empty"));
    }
    if !(-10..=10).contains(&f.value) {
        return Err(ApiError::invalid(format!(
            "value {} must be a whole number from -10 to 10",
            f.value
        )));
    }
    if let Some(w) = f.weight.filter(|w| !(0.0..=1.0).contains(w)) {
        return Err(ApiError::invalid(format!("weight {w} must be from 0 to 1")));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/feedback", tag = "logs", request_body = CreateFeedback,
    responses((status = 200, body = FeedbackCreated), (status = 400, body = ErrorBody)))]
pub async fn create_feedback(
    State(state): S,
    caller: Caller,
    Body(f): Body<CreateFeedback>,
) -> ApiResult<Json<FeedbackCreated>> {
    caller.require(scopes::FEEDBACK_WRITE)?;
    check(&f)?;
    let created = read(&state, move |s| s.add_feedback(&f, now_ms())).await?;
    Ok(Json(FeedbackCreated {
        status: "success".into(),
        message: "feedback recorded".into(),
        feedback_ids: vec![created.id],
    }))
}

#[utoipa::path(put, path = "/v1/feedback/{id}", tag = "logs", request_body = CreateFeedback,
    responses((status = 200, body = FeedbackCreated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_feedback(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(f): Body<CreateFeedback>,
) -> ApiResult<Json<FeedbackCreated>> {
    caller.require(scopes::FEEDBACK_WRITE)?;
    check(&f)?;
    let fid = id.clone();
    read(&state, move |s| s.update_feedback(&fid, &f)).await?;
    Ok(Json(FeedbackCreated {
        status: "success".into(),
        message: "feedback updated".into(),
        feedback_ids: vec![id],
    }))
}
