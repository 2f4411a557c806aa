//! The routers. Each Lambda serves one; `cooper serve` merges them all. One code path, two hosts.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};

use crate::context::request_context;
use crate::error::ApiError;
use crate::json::BODY_LIMIT_BYTES;
use crate::routes::{admin, approvals, credentials, factors, targets};
use crate::state::{AdminState, EnrollState, IssueState, States};

/// The issue-credentials function's routes.
pub fn issue_credentials(state: IssueState) -> Router {
    Router::new()
        .route("/v1/credentials", post(credentials::issue_credentials))
        .route("/v1/console", post(credentials::console))
        .route("/v1/targets", get(targets::list_targets))
        .route("/v1/whoami", get(targets::whoami))
        .route("/v1/approvals", post(approvals::open))
        .route("/v1/approvals/{id}", get(approvals::view))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .with_state(state)
}

/// The enroll-totp function's routes.
pub fn enroll_totp(state: EnrollState) -> Router {
    Router::new()
        .route("/v1/sessions", post(factors::login))
        .route("/v1/sessions/oidc", post(factors::oidc_session))
        .route("/v1/totp/enrollment", post(factors::start_enrollment))
        .route(
            "/v1/totp/enrollment/confirm",
            post(factors::confirm_enrollment),
        )
        .route("/v1/password", put(factors::set_password))
        .with_state(state)
}

/// The admin-targets function's routes.
pub fn admin_targets(state: AdminState) -> Router {
    admin::routes().with_state(state)
}

/// Every function's routes together, as `cooper serve` hosts them.
pub fn all(states: States) -> Router {
    issue_credentials(states.issue)
        .merge(enroll_totp(states.enroll))
        .merge(admin_targets(states.admin))
}

/// Wraps routes (one function's, or several merged) with what every response needs: a request
/// id, errors as JSON, JSON 404/405s, and the body limit.
pub fn edge(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(request_context))
}
