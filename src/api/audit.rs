//! The audit log: one record per admin change (what is recorded: `server::audit`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::Paging;

/// One admin change: who made it, what it was, when, from where, and the resource before and
/// after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditLog {
    pub id: String,
    pub created_at: String,
    pub method: String,
    /// The request's path and query.
    pub uri: String,
    /// The path's first segment after `/v1`: `integrations`, `configs`, `api-keys`, ...
    pub resource_type: String,
    /// The slug or id the change was made to; null when a create was refused.
    pub resource_id: Option<String>,
    /// `create`, `update`, `delete`, or the named action of a POST such as `rotate`.
    pub action: String,
    /// The id of the API key that made the change.
    pub user_id: String,
    /// That key's name when the change was made.
    pub user_name: String,
    /// That key's type: `organisation-service` or `workspace-service`.
    pub user_type: String,
    pub workspace_id: Option<String>,
    /// The TCP peer's address.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request's `x-request-id`, or one made by the server and returned in that header.
    pub request_id: String,
    pub response_status_code: u16,
    /// The resource as the API shows it (secrets masked) before the change; null for a create
    /// and for a refused change.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The resource after the change; null for a delete and for a refused change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub object: String,
}

/// `{"object":"list","total":N,"records":[...]}`, Portkey's audit-log envelope.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditLogList {
    pub object: String,
    pub total: u64,
    pub records: Vec<AuditLog>,
}

/// The filters of `GET /v1/audit-logs`; each one given must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Changes at or after this time: RFC 3339, or a duration before now such as `1d`
    pub start_time: Option<String>,
    /// Changes before this time: RFC 3339, or a duration before now
    pub end_time: Option<String>,
    /// `POST`, `PUT`, `PATCH` or `DELETE`
    pub method: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    /// The id of the API key that made the change
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub response_status_code: Option<u16>,
    pub client_ip: Option<String>,
    /// 0-based
    #[serde(alias = "currentPage")]
    pub current_page: Option<u32>,
    /// 1 to 1000, default 100
    #[serde(alias = "pageSize")]
    pub page_size: Option<u32>,
}

impl AuditFilter {
    pub fn paging(&self) -> Paging {
        let default = Paging::default();
        Paging {
            current_page: self.current_page.unwrap_or(default.current_page),
            page_size: self.page_size.unwrap_or(default.page_size),
        }
    }

    /// The filter as a query string (`start_time=1d&action=update`), empty when none is set.
    pub fn to_query(&self) -> String {
        let Ok(Value::Object(fields)) = serde_json::to_value(self) else {
            unreachable!("a struct of options serialises to an object")
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            match value {
                Value::Null => {}
                Value::String(text) => {
                    query.append_pair(&name, &text);
                }
                other => {
                    query.append_pair(&name, &other.to_string());
                }
            }
        }
        query.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_query_strings() {
        let f = AuditFilter {
            start_time: Some("1d".into()),
            resource_type: Some("api-keys".into()),
            response_status_code: Some(403),
            page_size: Some(20),
            ..AuditFilter::default()
        };
        assert_eq!(
            f.to_query(),
            "start_time=1d&resource_type=api-keys&response_status_code=403&page_size=20"
        );
        assert_eq!(AuditFilter::default().to_query(), "");
        assert_eq!(f.paging().page_size, 20);
        assert_eq!(f.paging().current_page, 0);
        assert_eq!(AuditFilter::default().paging().page_size, 100);
    }
}
