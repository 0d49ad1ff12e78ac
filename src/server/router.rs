//! Every route of the server, in one function. The OpenAPI document is built from the same
//! route list, so it cannot drift from what is served.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::gateway;
use super::handlers::{
    analytics, audit, cache, configs, guardrails, health, integrations, keys, logs, policies,
    prompts, traces, workspaces,
};
use super::state::AppState;
use crate::gateway::providers::adapter::Endpoint;

/// Admin request bodies are small documents; anything larger is a mistake.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "tollgate admin API", description = "Control plane of the tollgate AI gateway. Paths and shapes follow Portkey's admin API."),
    modifiers(&Security),
    security(("x-portkey-api-key" = []), ("bearer" = []))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "x-portkey-api-key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-portkey-api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(integrations::create, integrations::list))
        .routes(routes!(
            integrations::get,
            integrations::update,
            integrations::delete
        ))
        .routes(routes!(configs::create, configs::list))
        .routes(routes!(configs::get, configs::update, configs::delete))
        .routes(routes!(configs::versions))
        .routes(routes!(keys::list))
        .routes(routes!(keys::own))
        .routes(routes!(keys::create))
        .routes(routes!(keys::get, keys::update, keys::delete))
        .routes(routes!(keys::rotate))
        .routes(routes!(logs::list, logs::create))
        .routes(routes!(logs::count))
        .routes(routes!(logs::stream))
        .routes(routes!(logs::get))
        .routes(routes!(logs::metrics))
        .routes(routes!(traces::get))
        .routes(routes!(traces::create_feedback))
        .routes(routes!(traces::update_feedback))
        .routes(routes!(analytics::by_dimension))
        .routes(routes!(analytics::by_metadata))
        .routes(routes!(analytics::by_time))
        .routes(routes!(policies::create_budget, policies::list_budgets))
        .routes(routes!(policies::budgets_status))
        .routes(routes!(
            policies::get_budget,
            policies::update_budget,
            policies::delete_budget
        ))
        .routes(routes!(policies::entities))
        .routes(routes!(policies::events))
        .routes(routes!(policies::reset))
        .routes(routes!(policies::create_rate, policies::list_rates))
        .routes(routes!(
            policies::get_rate,
            policies::update_rate,
            policies::delete_rate
        ))
        .routes(routes!(workspaces::create, workspaces::list))
        .routes(routes!(
            workspaces::get,
            workspaces::update,
            workspaces::delete
        ))
        .routes(routes!(audit::list))
        .routes(routes!(cache::stats))
        .routes(routes!(cache::purge))
        .routes(routes!(guardrails::create, guardrails::list))
        .routes(routes!(
            guardrails::get,
            guardrails::update,
            guardrails::delete
        ))
        .routes(routes!(prompts::create, prompts::list))
        .routes(routes!(prompts::get, prompts::update, prompts::delete))
        .routes(routes!(prompts::versions))
        .routes(routes!(prompts::version, prompts::label_version))
        .routes(routes!(prompts::make_default))
        .routes(routes!(prompts::create_label, prompts::labels))
        .routes(routes!(
            prompts::label,
            prompts::update_label,
            prompts::delete_label
        ))
        .routes(routes!(prompts::create_partial, prompts::list_partials))
        .routes(routes!(
            prompts::get_partial,
            prompts::update_partial,
            prompts::delete_partial
        ))
        .routes(routes!(prompts::partial_versions))
        .routes(routes!(prompts::publish_partial))
        .routes(routes!(prompts::create_collection, prompts::collections))
        .routes(routes!(
            prompts::collection,
            prompts::update_collection,
            prompts::delete_collection
        ))
        .split_for_parts();
    let data_plane = Router::new()
        .route(
            "/v1/chat/completions",
            post(gateway::endpoint(Endpoint::Chat)),
        )
        .route(
            "/v1/completions",
            post(gateway::endpoint(Endpoint::Completions)),
        )
        .route(
            "/v1/embeddings",
            post(gateway::endpoint(Endpoint::Embeddings)),
        )
        .route(
            "/v1/responses",
            post(gateway::endpoint(Endpoint::Responses)),
        )
        .route("/v1/models", get(gateway::models))
        .route("/v1/prompts/{id}/render", post(gateway::prompt_render))
        .route(
            "/v1/prompts/{id}/completions",
            post(gateway::prompt_completions),
        )
        .layer(DefaultBodyLimit::max(gateway::BODY_LIMIT));
    let document: Arc<str> = openapi
        .to_json()
        .expect("the OpenAPI document serialises")
        .into();
    router
        .route(
            "/v1/openapi.json",
            get(
                move || async move { ([(CONTENT_TYPE, "application/json")], document.to_string()) },
            ),
        )
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::audit::record,
        ))
        .merge(data_plane)
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}
