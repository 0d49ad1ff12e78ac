//! Integration tests: the real binary against a real server on port 0 with a temp data dir.

mod audit;
mod cache;
mod cluster;
mod common;
mod configs;
mod contexts;
mod db_cli;
mod generated;
mod governance;
mod governance_nodes;
mod guardrails;
mod integrations;
mod keys;
mod logs_cli;
mod prompts;
mod prompts_cli;
mod providers;
mod python_sdk;
mod request_log;
mod routing;
mod server;
mod store_outage;
mod upstream;
mod vertex_service_account;
mod workspaces;
