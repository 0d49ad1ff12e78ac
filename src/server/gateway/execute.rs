//! Runs a routing config: `single`, `fallback`, `loadbalance` and `conditional`, nested to any
//! depth, with Portkey's inheritance and fallback stop rule.

use std::sync::Arc;

use axum::http::StatusCode;
use futures_util::future::BoxFuture;

use super::attempt;
use super::call::Call;
use super::guard;
use super::respond::{Answer, GatewayError};
use crate::gateway::conditions;
use crate::gateway::routing::{Inherited, Mode, Node};
use crate::server::state::AppState;

pub async fn run(state: &Arc<AppState>, call: &Call) -> Answer {
    match call.config.clone() {
        Some(node) => walk(state, call, &node, &Inherited::default(), "config".into()).await,
        None => {
            let direct = Node {
                weight: 1.0,
                ..Node::default()
            };
            attempt::leaf(state, call, &direct, &Inherited::default(), None).await
        }
    }
}

/// Fallback moves on unless the answer is final: with `on_status_codes`, any status outside
/// the list is final; without it, a success is, and so is a guardrail's refusal (446), which
/// falls back only where listed.
fn is_final(node: &Node, answer: &Answer) -> bool {
    answer.gateway_exception
        || match &node.on_status_codes {
            Some(codes) => !codes.contains(&answer.status),
            None => answer.is_success() || answer.status == guard::DENIED,
        }
}

fn no_route(message: &str, path: &str) -> Answer {
    Answer::from_error(
        GatewayError::new(StatusCode::BAD_REQUEST, message),
        Some(path.to_string()),
    )
}

fn walk<'a>(
    state: &'a Arc<AppState>,
    call: &'a Call,
    node: &'a Node,
    parent: &'a Inherited,
    path: String,
) -> BoxFuture<'a, Answer> {
    Box::pin(async move {
        let inherited = node.inherit(parent);
        let child = |i: usize| {
            walk(
                state,
                call,
                &node.targets[i],
                &inherited,
                format!("{path}.targets[{i}]"),
            )
        };
        match node.mode {
            None => attempt::leaf(state, call, node, &inherited, Some(path.clone())).await,
            Some(Mode::Single) if !node.targets.is_empty() => child(0).await,
            Some(Mode::Loadbalance) => match node.pick_weighted(state.roll()) {
                Some(i) => child(i).await,
                None => no_route("every loadbalance target has weight 0", &path),
            },
            Some(Mode::Conditional) => {
                let ctx = conditions::Context {
                    metadata: &call.metadata,
                    params: &call.body,
                    pathname: &call.pathname,
                };
                let chosen = node
                    .conditions
                    .iter()
                    .find(|(query, _)| conditions::matches(query, &ctx))
                    .map(|(_, then)| then.as_str())
                    .or(node.default.as_deref());
                match chosen.map(|name| (name, node.target_named(name))) {
                    Some((_, Some(i))) => child(i).await,
                    Some((name, None)) => no_route(
                        &format!("Invalid target name found in the query router: {name}"),
                        &path,
                    ),
                    None => no_route("Query router did not resolve to any valid target", &path),
                }
            }
            Some(Mode::Fallback) => {
                let mut last = None;
                for i in 0..node.targets.len() {
                    let answer = child(i).await;
                    if is_final(node, &answer) {
                        return answer;
                    }
                    last = Some(answer);
                }
                last.unwrap_or_else(|| no_route("the fallback has no targets", &path))
            }
            Some(Mode::Single) => no_route("the single strategy has no targets", &path),
        }
    })
}
