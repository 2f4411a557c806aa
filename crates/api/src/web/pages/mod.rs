//! The pages. Each handler parses, calls the use case the JSON route calls, and renders; one
//! file per part of the console, the shared answers and form parsing here.

mod access;
mod admin;
mod approvals;
mod factors;
pub(crate) mod saml;
mod signin;
mod targets;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::access::Identity;
use cooper_core::admin::AdminCall;
use cooper_core::admin::store::AuditQuery;
use cooper_core::admin::store::PageRequest;
use cooper_core::audit::RequestMeta;
use cooper_core::catalog::ReachableTarget;
use cooper_core::factors::FactorError;
use cooper_core::issue::Issuance;
use cooper_core::model::approvals::ApprovalId;
use cooper_core::model::{GrantScope, TargetKind};
use cooper_core::names::{AccessKeyId, AccountId, Partition, Reason, TargetName, UserName};
use cooper_core::totp::TotpCode;
use maud::{Markup, html};
use secrecy::{ExposeSecret, SecretString};
use time::format_description::well_known::Rfc3339;

use super::html::{
    self, FormError, Frame, Input, Nav, code_field, copyable, csrf, field, scoped_code_field,
};
use super::session::{self, Session};
use super::{WebState, assets};
use crate::context::Meta;
use crate::error::ApiError;
use crate::qr;
use crate::routes::approvals::{ApprovalState, ApprovalView};
use crate::routes::credentials::CredentialsBody;
use crate::routes::targets::TargetView;
use crate::table::{Operation, Table};
use subtle::ConstantTimeEq;

/// The console's pages (the web-console function).
fn pages(table: Table<WebState>) -> Table<WebState> {
    table
        .get("/", signin::home)
        .get("/signin", signin::signin_page)
        .post("/signin", signin::signin)
        .post("/signout", signin::signout)
        .get("/signin/oidc/callback", signin::oidc_callback)
        .get("/signin/oidc/{provider}", signin::oidc_start)
        .get("/enroll", signin::enroll_page)
        .post("/enroll", signin::enroll_start)
        .post("/enroll/confirm", signin::enroll_confirm)
        .get("/targets", targets::targets_page)
        .get("/targets/{name}", targets::target_page)
        .post("/console", targets::console)
        .post("/credentials", targets::credentials)
        .get("/authenticator", factors::authenticator_page)
        .post("/authenticator", factors::authenticator_start)
        .post("/authenticator/confirm", factors::authenticator_confirm)
        .get("/approvals", approvals::approvals_page)
        .post("/approvals", approvals::approvals_open)
        .get("/approvals/{id}", approvals::approval_page)
        .post("/approvals/{id}/approve", approvals::approval_approve)
        .get("/access-requests", access::access_page)
        .post("/access-requests", access::access_open)
        .get("/access-requests/{id}", access::request_page)
        .post("/access-requests/{id}/approve", access::request_approve)
        .post("/access-requests/{id}/deny", access::request_deny)
        .post("/access-requests/{id}/cancel", access::request_cancel)
        .get("/admin", admin::admin_page)
        .get("/admin/accounts", admin::admin_accounts)
        .get("/admin/accounts/{id}", admin::admin_account)
        .get("/admin/users", admin::admin_users)
        .get("/admin/groups", admin::admin_groups)
        .get("/assets/{file}", asset)
}

/// SAML sign-in's endpoints (the saml-signin function): apart from the pages, so that only
/// the function that reads SAML responses links the XML signature stack.
fn saml_sign_in(table: Table<WebState>) -> Table<WebState> {
    table
        .get("/v1/saml/{provider}/metadata", saml::metadata)
        .get("/v1/saml/{provider}/login", saml::login)
        .post_large("/v1/saml/{provider}/acs", saml::acs, saml::ACS_BODY_LIMIT)
        .post("/v1/sessions/saml", saml::redeem)
}

fn serve(table: Table<WebState>, state: WebState) -> axum::Router {
    let web = state.web.clone();
    table
        .router
        .layer(middleware::from_fn_with_state(web, super::security_headers))
        .with_state(state)
}

/// The pages' routes and SAML sign-in's, together (`cooper serve`).
pub fn routes(state: WebState) -> axum::Router {
    serve(saml_sign_in(pages(Table::new())), state)
}

/// The pages' routes alone (the web-console function).
pub fn page_routes(state: WebState) -> axum::Router {
    serve(pages(Table::new()), state)
}

/// SAML sign-in's routes alone (the saml-signin function).
pub fn saml_routes(state: WebState) -> axum::Router {
    serve(saml_sign_in(Table::new()), state)
}

/// The operations the pages serve (for the SAM template's check).
pub fn operations() -> Vec<Operation> {
    pages(Table::new()).operations
}

/// The operations SAML sign-in serves.
pub fn saml_operations() -> Vec<Operation> {
    saml_sign_in(Table::new()).operations
}
// ---------------------------------------------------------------------------------------------
// Answers

struct Answer {
    status: StatusCode,
    body: Markup,
    cookies: Vec<HeaderValue>,
}

impl Answer {
    fn ok(body: Markup) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            cookies: Vec::new(),
        }
    }

    fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookies.extend(cookie);
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body.into_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        for cookie in self.cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

fn see_other(base: &str, path: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{base}{path}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The page for a path no page serves (also used outside the web routes: it sets its own
/// policy).
pub fn not_found_page() -> Response {
    let frame = Frame {
        base: "",
        title: "Not found",
        user: None,
        admin: false,
        nav: Nav::None,
    };
    let body = html! { p { "There is no page here. " a href="/" { "Go to the start page" } "." } };
    let mut response = Answer::ok(html::layout(&frame, body))
        .status(StatusCode::NOT_FOUND)
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Which form field a refusal is about, by its code.
fn field_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "totp_required"
        | "totp_invalid"
        | "totp_replayed"
        | "totp_not_enrolled"
        | "locked_out"
        | "no_pending_enrollment" => "totp",
        "approver_totp_invalid"
        | "approver_totp_replayed"
        | "approver_locked_out"
        | "approver_not_enrolled" => "approver_totp",
        "not_an_approver" | "self_approval" | "approver_bootstrapped_by_requester" => "approver",
        "approval_required"
        | "approval_mismatch"
        | "approval_expired"
        | "approval_pending"
        | "approval_used"
        | "approval_not_found"
        | "approval_not_required" => "approval_id",
        "invalid_duration" => "duration",
        "invalid_reason" => "reason",
        _ => return None,
    })
}

fn refusal(error: ApiError, meta: &RequestMeta) -> (StatusCode, FormError) {
    crate::metrics::note_refusal(error.code);
    let mut message = error.message;
    if let Some(seconds) = error.retry_after {
        message = format!("{message} Try again in {seconds} seconds.");
    }
    (
        error.status,
        FormError {
            field: field_of(error.code),
            code: error.code,
            message,
            request_id: meta.request_id.clone(),
        },
    )
}

/// The words for a form that did not come from our own page (no CSRF token, or another origin).
fn forged(meta: &RequestMeta) -> FormError {
    FormError {
        field: None,
        code: "csrf_failed",
        message:
            "This form is out of date or was sent from another site. Reload the page and try again."
                .into(),
        request_id: meta.request_id.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Forms

/// A posted form's fields. Only `application/x-www-form-urlencoded` is read.
struct Form(HashMap<String, String>);

impl Form {
    fn parse(headers: &HeaderMap, body: &Bytes) -> Option<Self> {
        let kind = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !kind.starts_with("application/x-www-form-urlencoded") {
            return None;
        }
        Some(Self(form_urlencoded::parse(body).into_owned().collect()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }
}

/// A signed-in page's context (an extractor: a handler that takes it is for signed-in browsers,
/// and anyone else is sent to the sign-in page).
struct Ctx {
    base: String,
    session: Session,
    admin: bool,
    meta: RequestMeta,
}

impl Ctx {
    fn frame<'a>(&'a self, title: &'a str, nav: Nav) -> Frame<'a> {
        Frame {
            base: &self.base,
            title,
            user: Some((self.session.identity.user.as_str(), &self.session.csrf)),
            admin: self.admin,
            nav,
        }
    }

    fn identity(&self) -> Identity {
        self.session.identity.clone()
    }

    fn page(&self, title: &str, nav: Nav, body: Markup) -> Answer {
        Answer::ok(html::layout(&self.frame(title, nav), body))
    }
}

/// The signed-in browser's context, or the answer to give instead (to the sign-in page).
async fn signed_in(
    state: &WebState,
    headers: &HeaderMap,
    meta: RequestMeta,
) -> Result<Ctx, Response> {
    let base = state.web.base_path.clone();
    let Some(session) = session::signed_in(&state.web, headers).await else {
        return Err(see_other(&base, "/signin", Vec::new()));
    };
    let admin = state
        .admin
        .shared
        .admin
        .scope(session.identity.clone())
        .await
        .is_ok_and(|(_, scope)| scope.is_admin());
    Ok(Ctx {
        base,
        session,
        admin,
        meta,
    })
}

impl axum::extract::FromRequestParts<WebState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await;
        signed_in(state, &parts.headers, meta).await
    }
}

/// A signed-in browser's form: the context and the fields, once the CSRF token and the origin
/// are checked; else the answer to give.
async fn signed_in_form(
    state: &WebState,
    headers: &HeaderMap,
    meta: RequestMeta,
    body: &Bytes,
) -> Result<(Ctx, Form), Response> {
    let ctx = signed_in(state, headers, meta).await?;
    let form = Form::parse(headers, body);
    let genuine = session::same_origin(headers)
        && form
            .as_ref()
            .is_some_and(|f| session::csrf_matches(&ctx.session.csrf, f.get("csrf")));
    match form {
        Some(form) if genuine => Ok((ctx, form)),
        _ => {
            let error = forged(&ctx.meta);
            let body = html! { (html::form_alert(Some(&error), &[])) p { a href={ (ctx.base) "/" } { "Back to the start page" } } };
            Err(ctx
                .page("Refused", Nav::None, body)
                .status(StatusCode::FORBIDDEN)
                .into_response())
        }
    }
}

/// The stylesheet or the script, cached for a year.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "cooper.css" => (assets::CSS, "text/css; charset=utf-8"),
        "cooper.js" => (assets::JS, "text/javascript; charset=utf-8"),
        _ => return not_found_page(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

fn error_page(ctx: &Ctx, title: &str, nav: Nav, e: ApiError) -> Response {
    let (status, error) = refusal(e, &ctx.meta);
    ctx.page(title, nav, html::form_alert(Some(&error), &[]))
        .status(status)
        .into_response()
}
