//! The routers. Each Lambda serves one; `cooper serve` merges them all. One code path, two hosts.

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};

use crate::context::{limit_headers, request_context};
use crate::error::ApiError;
use crate::json::BODY_LIMIT_BYTES;
use crate::routes::{access_requests, admin, approvals, credentials, factors, targets};
use crate::state::{AdminState, EnrollState, IssueState, States};
pub use crate::table::Operation;
use crate::table::Table;

fn issue_table() -> Table<IssueState> {
    Table::new()
        .post("/v1/credentials", credentials::issue_credentials)
        .post("/v1/console", credentials::console)
        .get("/v1/targets", targets::list_targets)
        .get("/v1/whoami", targets::whoami)
        .post("/v1/approvals", approvals::open)
        .get("/v1/approvals", approvals::list)
        .get("/v1/approvals/{id}", approvals::view)
        .post("/v1/approvals/{id}/approve", approvals::approve)
        .post("/v1/access-requests", access_requests::open)
        .get("/v1/access-requests", access_requests::list)
        .get("/v1/access-requests/{id}", access_requests::get)
        .post("/v1/access-requests/{id}/approve", access_requests::approve)
        .post("/v1/access-requests/{id}/deny", access_requests::deny)
        .post("/v1/access-requests/{id}/cancel", access_requests::cancel)
        .get(OPENAPI_PATH, openapi)
}

fn enroll_table() -> Table<EnrollState> {
    Table::new()
        .post("/v1/sessions", factors::login)
        .post("/v1/sessions/oidc", factors::oidc_session)
        .post("/v1/sessions/logout", factors::logout)
        .post("/v1/totp/enrollment", factors::start_enrollment)
        .post("/v1/totp/enrollment/confirm", factors::confirm_enrollment)
        .put("/v1/password", factors::set_password)
}

fn admin_table() -> Table<AdminState> {
    use admin::*;
    Table::new()
        .get("/v1/admin/accounts", list_accounts)
        .post("/v1/admin/accounts", create_account)
        .get("/v1/admin/accounts/{id}", get_account)
        .put("/v1/admin/accounts/{id}", update_account)
        .delete("/v1/admin/accounts/{id}", delete_account)
        .get("/v1/admin/targets", list_targets)
        .post("/v1/admin/targets", create_target)
        .get("/v1/admin/targets/{name}", get_target)
        .put("/v1/admin/targets/{name}", update_target)
        .delete("/v1/admin/targets/{name}", delete_target)
        .get("/v1/admin/users", list_users)
        .post("/v1/admin/users", create_user)
        .get("/v1/admin/users/{name}", get_user)
        .put("/v1/admin/users/{name}", update_user)
        .delete("/v1/admin/users/{name}", delete_user)
        .post("/v1/admin/users/{name}/totp/reset", reset_totp)
        .post(
            "/v1/admin/users/{name}/sessions/revoke",
            revoke_user_sessions,
        )
        .post("/v1/admin/revocations", revoke_aws_sessions)
        .get("/v1/admin/users/{name}/tokens", list_tokens)
        .post("/v1/admin/users/{name}/tokens", issue_token)
        .post(
            "/v1/admin/users/{name}/enrollment-code",
            issue_enrollment_code,
        )
        .delete("/v1/admin/tokens/{id}", revoke_token)
        .get("/v1/admin/groups", list_groups)
        .post("/v1/admin/groups", create_group)
        .get("/v1/admin/groups/{name}", get_group)
        .put("/v1/admin/groups/{name}", update_group)
        .delete("/v1/admin/groups/{name}", delete_group)
        .put("/v1/admin/groups/{name}/members/{user}", add_member)
        .delete("/v1/admin/groups/{name}/members/{user}", remove_member)
        .get("/v1/admin/grants", list_grants)
        .post("/v1/admin/grants", create_grant)
        .delete("/v1/admin/grants", delete_grant)
        .get("/v1/admin/admins", list_admins)
        .post("/v1/admin/admins", create_admin)
        .delete("/v1/admin/admins", delete_admin)
        .get("/v1/admin/audit", audit)
}

/// Which function serves an operation: the three API functions, by name.
pub fn operations() -> Vec<(&'static str, Operation)> {
    let tagged = |function, table: Vec<Operation>| table.into_iter().map(move |op| (function, op));
    tagged("issue-credentials", issue_table().operations)
        .chain(tagged("enroll-totp", enroll_table().operations))
        .chain(tagged("admin-targets", admin_table().operations))
        .collect()
}

/// The issue-credentials function's routes (and the API's own description).
pub fn issue_credentials(state: IssueState) -> Router {
    issue_table().router.with_state(state)
}

/// The enroll-totp function's routes.
pub fn enroll_totp(state: EnrollState) -> Router {
    enroll_table().router.with_state(state)
}

/// The admin-targets function's routes.
pub fn admin_targets(state: AdminState) -> Router {
    admin_table().router.with_state(state)
}

/// Where the API serves its OpenAPI 3.1 description, without authentication.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The OpenAPI 3.1 description of every operation: `docs/openapi.json` as committed, compacted
/// by the build script (the same document in half the bytes).
pub const OPENAPI: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// This OpenAPI document
#[cfg_attr(feature = "openapi", utoipa::path(
    get, path = "/v1/openapi.json", operation_id = "getOpenApi", tag = "meta", security(),
    responses((status = 200, description = "The OpenAPI 3.1 description of the API.", body = Object,
        headers(("Cache-Control" = crate::schema::PublicCache)))),
))]
pub(crate) async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        OPENAPI,
    )
        .into_response()
}

/// No route: a JSON 404 under `/v1`, a page elsewhere.
#[cfg(feature = "web")]
async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path() == "/v1" || uri.path().starts_with("/v1/") {
        ApiError::not_found().into_response()
    } else {
        crate::web::not_found_page()
    }
}

/// Every function's routes together, as `cooper serve` hosts them.
pub fn all(states: States) -> Router {
    issue_credentials(states.issue)
        .merge(enroll_totp(states.enroll))
        .merge(admin_targets(states.admin))
}

/// Wraps routes (one function's, or several merged) with what every response needs: a request
/// id, errors as JSON, JSON 404/405s, and the header and body limits.
pub fn edge(routes: Router) -> Router {
    layers(routes.fallback(|| async { ApiError::not_found() }))
}

/// As `edge`, for hosts that serve the web console too: a path outside `/v1` that nothing
/// serves gets a page, not JSON (the API functions keep `edge`, and carry no page).
#[cfg(feature = "web")]
pub fn edge_with_pages(routes: Router) -> Router {
    layers(routes.fallback(fallback))
}

fn layers(routes: Router) -> Router {
    routes
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(limit_headers))
        .layer(middleware::from_fn(request_context))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

    /// The API's operations: the three functions', and the console's under `/v1` (SAML).
    fn routed() -> BTreeSet<(String, String)> {
        #[cfg_attr(not(feature = "web"), allow(unused_mut))]
        let mut ops: Vec<Operation> = operations().into_iter().map(|(_, op)| op).collect();
        #[cfg(feature = "web")]
        ops.extend(crate::web::saml_operations());
        ops.into_iter()
            .map(|op| (op.method.to_owned(), op.path.to_owned()))
            .collect()
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
        let paths = doc["paths"].as_object().expect("the document has paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| (m.to_uppercase(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routed_operations() {
        let routed = routed();
        #[cfg_attr(feature = "web", allow(unused_mut))]
        let mut documented = documented();
        // SAML sign-in is served by the console's function: not there without it.
        #[cfg(not(feature = "web"))]
        documented.retain(|(_, path)| !path.starts_with("/v1/saml/"));
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routed but not in docs/openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn the_openapi_document_is_3_1_and_every_operation_answers_errors_in_the_one_error_shape() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                let op = &item[*method];
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: operationId {id:?} missing or repeated"
                );
                assert_eq!(
                    op["responses"]["default"]["$ref"], "#/components/responses/Error",
                    "{method} {path} must answer errors with the Error response"
                );
            }
        }
    }

    /// docs/security.md has an entry (a heading naming `METHOD /path`) for every routed
    /// operation: a route cannot be added without its threats written down.
    #[test]
    fn the_threat_model_has_an_entry_for_every_route() {
        let model = include_str!("../../../docs/security.md");
        let headings: Vec<&str> = model.lines().filter(|l| l.starts_with('#')).collect();
        #[cfg_attr(not(feature = "web"), allow(unused_mut))]
        let mut routes = routed();
        #[cfg(feature = "web")]
        routes.extend(
            crate::web::operations()
                .into_iter()
                .chain(crate::web::saml_operations())
                .map(|op| (op.method.to_owned(), op.path.to_owned())),
        );
        let missing: Vec<String> = routes
            .into_iter()
            .map(|(method, path)| format!("`{method} {path}`"))
            .filter(|entry| !headings.iter().any(|h| h.contains(entry.as_str())))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/security.md has no entry for: {}",
            missing.join(", ")
        );
    }

    /// The SAM template's HTTP API routes each function exactly the operations its router serves
    /// (the admin function takes `/v1/admin/{proxy+}`, so it is checked by prefix).
    #[test]
    fn the_sam_template_routes_each_operation_to_the_function_that_serves_it() {
        let template = include_str!("../../../template.yaml");
        let mut binary = "";
        let mut events: BTreeSet<(String, String, String)> = BTreeSet::new();
        for line in template.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("Binary:") {
                binary = name.trim();
            }
            if let Some(props) = line.split("Type: HttpApi, Properties: {").nth(1) {
                let field = |key: &str| {
                    props
                        .split(',')
                        .find_map(|part| part.trim().strip_prefix(key))
                        .map(|v| {
                            v.trim_end_matches(['}', ' '])
                                .trim()
                                .trim_matches('"')
                                .to_owned()
                        })
                        .expect("an HttpApi event names its method and path")
                };
                events.insert((binary.to_owned(), field("Method:"), field("Path:")));
            }
        }
        let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
        for (function, op) in operations() {
            if function == "admin-targets" {
                assert!(
                    op.path.starts_with("/v1/admin/"),
                    "{op:?} is outside the admin function's route"
                );
                expected.insert((function.into(), "ANY".into(), "/v1/admin/{proxy+}".into()));
            } else {
                expected.insert((function.into(), op.method.into(), op.path.into()));
            }
        }
        // The web console's pages go to their own function, and SAML sign-in to another (only
        // where they are built in).
        #[cfg(feature = "web")]
        for (function, ops) in [
            ("web-console", crate::web::operations()),
            ("saml-signin", crate::web::saml_operations()),
        ] {
            for op in ops {
                expected.insert((function.into(), op.method.into(), op.path.into()));
            }
        }
        #[cfg(not(feature = "web"))]
        events.retain(|(binary, _, _)| binary != "web-console" && binary != "saml-signin");
        assert_eq!(events, expected);
    }
}
