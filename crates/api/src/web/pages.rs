//! The pages. Each handler parses, calls the use case the JSON route calls, and renders.

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

fn table() -> Table<WebState> {
    Table::new()
        .get("/", home)
        .get("/signin", signin_page)
        .post("/signin", signin)
        .post("/signout", signout)
        .get("/signin/oidc/callback", oidc_callback)
        .get("/signin/oidc/{provider}", oidc_start)
        .get("/enroll", enroll_page)
        .post("/enroll", enroll_start)
        .post("/enroll/confirm", enroll_confirm)
        .get("/targets", targets_page)
        .get("/targets/{name}", target_page)
        .post("/console", console)
        .post("/credentials", credentials)
        .get("/authenticator", authenticator_page)
        .post("/authenticator", authenticator_start)
        .post("/authenticator/confirm", authenticator_confirm)
        .get("/approvals", approvals_page)
        .post("/approvals", approvals_open)
        .get("/approvals/{id}", approval_page)
        .post("/approvals/{id}/approve", approval_approve)
        .get("/admin", admin_page)
        .get("/admin/accounts", admin_accounts)
        .get("/admin/accounts/{id}", admin_account)
        .get("/admin/users", admin_users)
        .get("/admin/groups", admin_groups)
        .get("/assets/{file}", asset)
}

/// The pages' routes.
pub fn routes(state: WebState) -> axum::Router {
    let web = state.web.clone();
    table()
        .router
        .layer(middleware::from_fn_with_state(web, super::security_headers))
        .with_state(state)
}

/// The operations the pages serve (for the SAM template's check).
pub fn operations() -> Vec<Operation> {
    table().operations
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

/// A signed-in page's context.
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
    let Some(session) = session::signed_in(&state.web, headers) else {
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

// ---------------------------------------------------------------------------------------------
// Sign in and out

async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let to = if session::signed_in(&state.web, &headers).is_some() {
        "/targets"
    } else {
        "/signin"
    };
    see_other(&state.web.base_path, to, Vec::new())
}

fn signin_form(
    base: &str,
    token: &str,
    user: &str,
    providers: &[crate::oidc::ConsoleProvider],
    error: Option<&FormError>,
) -> Markup {
    html! {
        (html::form_alert(error, &["totp"]))
        @if !providers.is_empty() {
            div.actions.panel {
                @for p in providers {
                    a.button href={ (base) "/signin/oidc/" (p.index) } { "Sign in with " (p.name) }
                }
            }
            p.muted { "Or with your cooper password and a code:" }
        }
        form method="post" action={ (base) "/signin" } {
            (csrf(token))
            (field("user", "User name", Input { value: user, autocomplete: "username", required: true, ..Input::default() }, error))
            (field("password", "Password", Input { kind: "password", autocomplete: "current-password", required: true, ..Input::default() }, error))
            (code_field("totp", "Code", true, error))
            button type="submit" { "Sign in" }
        }
        p { "New here? " a href={ (base) "/enroll" } { "Enroll with the code your admin gave you" } "." }
    }
}

fn signin_frame(base: &str) -> Frame<'_> {
    Frame {
        base,
        title: "Sign in",
        user: None,
        admin: false,
        nav: Nav::None,
    }
}

async fn signin_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let base = &state.web.base_path;
    if session::signed_in(&state.web, &headers).is_some() {
        return see_other(base, "/targets", Vec::new());
    }
    let (token, cookie) = session::presession(&state.web, &headers);
    Answer::ok(html::layout(
        &signin_frame(base),
        signin_form(base, &token, "", &console_providers(&state), None),
    ))
    .cookie(cookie)
    .into_response()
}

fn console_providers(state: &WebState) -> Vec<crate::oidc::ConsoleProvider> {
    state
        .web
        .oidc
        .as_ref()
        .map(|o| o.console_providers())
        .unwrap_or_default()
}

/// The sign-in page again, with a refusal.
fn signin_refused(
    state: &WebState,
    headers: &HeaderMap,
    status: StatusCode,
    error: FormError,
) -> Response {
    let base = &state.web.base_path;
    let (token, cookie) = session::presession(&state.web, headers);
    let providers = console_providers(state);
    Answer::ok(html::layout(
        &signin_frame(base),
        signin_form(base, &token, "", &providers, Some(&error)),
    ))
    .status(status)
    .cookie(cookie)
    .into_response()
}

fn redirect_uri(state: &WebState, headers: &HeaderMap) -> String {
    format!(
        "{}{}/signin/oidc/callback",
        session::origin(&state.web, headers),
        state.web.base_path
    )
}

fn oidc_refusal(e: crate::oidc::OidcError) -> ApiError {
    ApiError::from(crate::auth::AuthError::Oidc(e))
}

/// Starts the authorization code flow with PKCE at a provider: state, nonce and verifier are
/// made here and kept in an HttpOnly cookie of this browser, to be checked on its way back.
async fn oidc_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> Response {
    let started = async {
        let oidc = state.web.oidc.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "oidc_not_configured",
                "this deployment has no identity provider for the console",
            )
        })?;
        let index: usize = provider
            .parse()
            .map_err(|_| oidc_refusal(crate::oidc::OidcError::UnknownIssuer))?;
        let code_flow = oidc.code_flow(index).await.map_err(oidc_refusal)?;
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "no randomness to start a sign-in with",
            )
        };
        let flow = session::Flow {
            provider: index,
            state: session::random().ok_or_else(unavailable)?,
            nonce: session::random().ok_or_else(unavailable)?,
            verifier: session::random().ok_or_else(unavailable)?,
        };
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &code_flow.client_id)
            .append_pair("redirect_uri", &redirect_uri(&state, &headers))
            .append_pair("scope", "openid email groups")
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &session::challenge(&flow.verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if code_flow.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok::<_, ApiError>((
            format!("{}{separator}{query}", code_flow.authorization_endpoint),
            flow,
        ))
    };
    match started.await {
        Ok((location, flow)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            if let Some(cookie) = session::flow_cookie(&state.web, &headers, &flow) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => {
            let (status, error) = refusal(e, &meta);
            signin_refused(&state, &headers, status, error)
        }
    }
}

/// The provider's redirect back: the state must be this browser's, the code is redeemed with
/// the verifier, the ID token verified as any other (issuer, keys, audience, times, domains)
/// and its nonce this flow's; then the same exchange as `POST /v1/sessions/oidc`, for a
/// console session.
async fn oidc_callback(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let web = &state.web;
    let signed = async {
        let refused =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message);
        let flow = session::flow(web, &headers).ok_or_else(|| {
            refused("this sign-in was not started in this browser, or took too long: start again")
        })?;
        if let Some(error) = query.get("error") {
            tracing::info!(%error, "the identity provider refused the sign-in");
            return Err(refused("the identity provider did not sign you in"));
        }
        let presented = query.get("state").map(String::as_str);
        if !session::csrf_matches(&flow.state, presented) {
            return Err(refused(
                "this sign-in was not started in this browser: start again",
            ));
        }
        let code = query
            .get("code")
            .ok_or_else(|| refused("the provider sent no code"))?;
        let oidc = web
            .oidc
            .as_ref()
            .ok_or_else(|| refused("no identity provider is configured"))?;
        let code_flow = oidc.code_flow(flow.provider).await.map_err(oidc_refusal)?;
        let id_token = oidc
            .redeem(
                &code_flow,
                code,
                &redirect_uri(&state, &headers),
                &flow.verifier,
            )
            .await
            .map_err(oidc_refusal)?;
        let identity = oidc.verify(&id_token).await.map_err(oidc_refusal)?;
        let nonce = crate::oidc::nonce_of(&id_token);
        let same_provider = matches!(
            &identity.method,
            cooper_core::access::AuthMethod::IdToken(issuer) if *issuer == code_flow.issuer
        );
        if !same_provider || !session::csrf_matches(&flow.nonce, nonce.as_deref()) {
            return Err(refused("the ID token is not this sign-in's"));
        }
        Ok::<_, ApiError>(web.exchange.exchange(identity, &meta).await?)
    };
    match signed.await {
        Ok(signed) => {
            // A page, not a redirect: the navigation to the targets then starts here, so the
            // SameSite=Strict session cookie goes with it (after a cross-site redirect chain
            // it would not).
            let base = &web.base_path;
            let body = html! {
                meta http-equiv="refresh" content={ "0;url=" (base) "/targets" };
                p { "Signed in as " strong { (signed.user) } ". " a href={ (base) "/targets" } { "Continue to my targets" } }
            };
            Answer::ok(html::layout(&signin_frame(base), body))
                .cookie(session::session_cookie(web, &headers, &signed.token))
                .cookie(session::clear_flow(web, &headers))
                .into_response()
        }
        Err(e) => {
            let (status, error) = refusal(e, &meta);
            let mut response = signin_refused(&state, &headers, status, error);
            if let Some(cookie) = session::clear_flow(web, &headers) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
    }
}

async fn signin(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let expected = session::presession_token(&state.web, &headers);
    let genuine = session::same_origin(&headers)
        && expected
            .as_deref()
            .is_some_and(|t| session::csrf_matches(t, form.as_ref().and_then(|f| f.get("csrf"))));
    let (token, cookie) = session::presession(&state.web, &headers);
    let user_value = form
        .as_ref()
        .and_then(|f| f.owned("user"))
        .unwrap_or_default();
    let render = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &signin_frame(base),
            signin_form(
                base,
                &token,
                &user_value,
                &console_providers(&state),
                Some(&error),
            ),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    let Some(form) = form.filter(|_| genuine) else {
        return render(StatusCode::FORBIDDEN, forged(&meta));
    };
    // A malformed name or code is refused like a wrong one, after the same wait.
    let user = UserName::parse(form.get("user").unwrap_or_default());
    let code = TotpCode::parse(form.get("totp").unwrap_or_default());
    let password = SecretString::from(form.0.get("password").cloned().unwrap_or_default());
    let result = match (user, code) {
        (Ok(user), Ok(code)) => state
            .web
            .login
            .login(&user, &password, &code, &meta)
            .await
            .map_err(ApiError::from),
        _ => Err(ApiError::from(FactorError::InvalidCredentials)),
    };
    match result {
        Ok(signed) => see_other(
            base,
            "/targets",
            session::session_cookie(&state.web, &headers, &signed.token)
                .into_iter()
                .collect(),
        ),
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            // Every sign-in refusal is one message: it does not say which part was wrong.
            if error.field == Some("totp") && error.code != "locked_out" {
                error.field = None;
            }
            render(status, error)
        }
    }
}

async fn signout(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let web = &state.web;
    // Signing out needs the session's own token too: another site cannot sign anyone out.
    let genuine = session::signed_in(web, &headers).is_some_and(|s| {
        session::same_origin(&headers)
            && Form::parse(&headers, &body)
                .is_some_and(|f| session::csrf_matches(&s.csrf, f.get("csrf")))
    });
    if !genuine {
        return see_other(&web.base_path, "/", Vec::new());
    }
    see_other(
        &web.base_path,
        "/signin",
        session::clear_session(web, &headers).into_iter().collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// A first enrollment, with the one-time code an admin issued: an authenticator and a password.

fn enroll_frame(base: &str) -> Frame<'_> {
    Frame {
        base,
        title: "Enroll",
        user: None,
        admin: false,
        nav: Nav::None,
    }
}

fn enroll_form(base: &str, token: &str, error: Option<&FormError>) -> Markup {
    html! {
        p { "Your admin gave you a one-time enrollment code. With it you set up an authenticator app and a password, then sign in." }
        (html::form_alert(error, &["code"]))
        form method="post" action={ (base) "/enroll" } {
            (csrf(token))
            (field("code", "Enrollment code", Input { kind: "password", required: true, hint: Some("It starts with cooper_enroll_"), ..Input::default() }, error))
            button type="submit" { "Continue" }
        }
    }
}

/// The pre-session CSRF check of the pages a browser uses before signing in.
fn genuine_presession(state: &WebState, headers: &HeaderMap, form: Option<&Form>) -> bool {
    let expected = session::presession_token(&state.web, headers);
    session::same_origin(headers)
        && expected
            .as_deref()
            .is_some_and(|t| session::csrf_matches(t, form.and_then(|f| f.get("csrf"))))
}

async fn enroll_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let base = &state.web.base_path;
    let (token, cookie) = session::presession(&state.web, &headers);
    Answer::ok(html::layout(
        &enroll_frame(base),
        enroll_form(base, &token, None),
    ))
    .cookie(cookie)
    .into_response()
}

/// The identity an enrollment code stands for, as the API's enrollment routes take it.
async fn code_identity(state: &WebState, code: &str) -> Result<Identity, ApiError> {
    if !cooper_core::token::EnrollmentCode::looks_like(code) {
        return Err(ApiError::from(crate::auth::AuthError::Invalid));
    }
    Ok(state
        .enroll
        .shared
        .auth
        .authenticate(Some(&format!("Bearer {code}")))
        .await?)
}

fn enroll_confirm_form(base: &str, token: &str, error: Option<&FormError>) -> Markup {
    html! {
        (html::form_alert(error, &["totp", "password"]))
        form.panel method="post" action={ (base) "/enroll/confirm" } {
            (csrf(token))
            (code_field("totp", "The first code your app shows", true, error))
            (field("password", "A new password", Input { kind: "password", autocomplete: "new-password", required: true, hint: Some("At least 12 characters; not your user name"), ..Input::default() }, error))
            button type="submit" { "Enroll" }
        }
    }
}

async fn enroll_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let (token, cookie) = session::presession(&state.web, &headers);
    let refused = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &enroll_frame(base),
            enroll_form(base, &token, Some(&error)),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    if !genuine_presession(&state, &headers, form.as_ref()) {
        return refused(StatusCode::FORBIDDEN, forged(&meta));
    }
    let code = form
        .as_ref()
        .and_then(|f| f.owned("code"))
        .unwrap_or_default();
    let started = match code_identity(&state, &code).await {
        Ok(identity) => state
            .enroll
            .enrollment
            .start(&identity, None, &meta)
            .await
            .map(|s| (identity, s))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let (identity, started) = match started {
        Ok(x) => x,
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            error.field = Some("code");
            return refused(status, error);
        }
    };
    let body = html! {
        p { "Enrolling " strong { (identity.user) } "." }
        (enrollment_steps(&started))
        (enroll_confirm_form(base, &token, None))
    };
    Answer::ok(html::layout(&enroll_frame(base), body))
        .cookie(cookie)
        .cookie(session::enrolling_cookie(&state.web, &headers, &code))
        .into_response()
}

async fn enroll_confirm(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = &state.web.base_path;
    let form = Form::parse(&headers, &body);
    let (token, cookie) = session::presession(&state.web, &headers);
    let refused = |status: StatusCode, error: FormError| {
        Answer::ok(html::layout(
            &enroll_frame(base),
            enroll_confirm_form(base, &token, Some(&error)),
        ))
        .status(status)
        .cookie(cookie.clone())
        .into_response()
    };
    if !genuine_presession(&state, &headers, form.as_ref()) {
        return refused(StatusCode::FORBIDDEN, forged(&meta));
    }
    let Some(code) = session::enrolling(&state.web, &headers) else {
        let body = html! { p { "This enrollment has expired. " a href={ (base) "/enroll" } { "Start again" } "." } };
        return Answer::ok(html::layout(&enroll_frame(base), body))
            .status(StatusCode::CONFLICT)
            .into_response();
    };
    let form = form.unwrap_or(Form(HashMap::new()));
    let result = async {
        let identity = code_identity(&state, &code).await?;
        let totp = TotpCode::parse(form.get("totp").unwrap_or_default())?;
        let password = cooper_core::password::NewPassword::parse(
            SecretString::from(form.0.get("password").cloned().unwrap_or_default()),
            &identity.user,
        )?;
        state
            .enroll
            .enrollment
            .confirm(&identity, &totp, Some(&password), &meta)
            .await?;
        Ok::<_, ApiError>(identity.user)
    };
    match result.await {
        Ok(user) => {
            let body = html! {
                div.notice role="status" { "You are enrolled, " (user) ". Sign in with your password and a code." }
                p { a.button href={ (base) "/signin" } { "Sign in" } }
            };
            Answer::ok(html::layout(&enroll_frame(base), body))
                .cookie(session::clear_enrolling(&state.web, &headers))
                .into_response()
        }
        Err(e) => {
            let (status, mut error) = refusal(e, &meta);
            if error.code == "invalid_request" {
                error.field = Some("password");
            }
            refused(status, error)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

struct Listed {
    view: TargetView,
    recent: Option<usize>,
}

async fn my_targets(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<Vec<Listed>, ApiError> {
    let (_, reachable): (_, Vec<ReachableTarget>) =
        state.issue.catalog.reachable(ctx.identity()).await?;
    let accounts = state.issue.catalog.accounts_of(&reachable).await?;
    let recent = session::recent(headers);
    let mut listed: Vec<Listed> = reachable
        .into_iter()
        .map(|r| {
            let position = recent.iter().position(|n| *n == r.target.name);
            Listed {
                view: TargetView::of(r, &accounts),
                recent: position,
            }
        })
        .collect();
    // The ones used recently first (most recent on top), then by name.
    listed.sort_by(|a, b| {
        (a.recent.is_none(), a.recent, &a.view.name).cmp(&(
            b.recent.is_none(),
            b.recent,
            &b.view.name,
        ))
    });
    Ok(listed)
}

fn needs(view: &TargetView) -> Markup {
    html! {
        span.tags {
            @if view.high_security { span { "code needed" } }
            @if view.requires_approval { span { "second person needed" } }
            @if !view.high_security && !view.requires_approval { span { "no extra step" } }
        }
    }
}

fn account_label(view: &TargetView) -> Markup {
    html! {
        @if let Some(name) = &view.account_name { (name) br; }
        code { (view.account_id) }
    }
}

fn search_text(view: &TargetView) -> String {
    format!(
        "{} {} {} {} {}",
        view.name,
        view.account_id,
        view.account_name.as_deref().unwrap_or_default(),
        view.partition,
        view.description.as_deref().unwrap_or_default()
    )
    .to_lowercase()
}

async fn targets_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in(&state, &headers, meta).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let listed = match my_targets(&state, &ctx, &headers).await {
        Ok(listed) => listed,
        Err(e) => return error_page(&ctx, "My targets", Nav::Targets, e),
    };
    let q = query
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let words: Vec<&str> = q.split_whitespace().collect();
    let shown: Vec<&Listed> = listed
        .iter()
        .filter(|l| {
            let text = search_text(&l.view);
            words.iter().all(|w| text.contains(w))
        })
        .collect();
    let base = &ctx.base;
    let body = html! {
        form.inline role="search" method="get" action={ (base) "/targets" } {
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(q) autocomplete="off";
            }
            button.secondary type="submit" { "Search" }
        }
        @if listed.is_empty() {
            p { "No target is granted to you yet. Ask an admin for a grant." }
        } @else if shown.is_empty() {
            p { "None of your targets matches “" (q) "”." }
        } @else {
            table.targets {
                caption.muted { (shown.len()) " of " (listed.len()) " targets; recently used first" }
                thead { tr { th { "Target" } th { "Account" } th { "Partition" } th { "Level" } th { "Needs" } th { "Open" } } }
                tbody {
                    @for l in &shown {
                        @let v = &l.view;
                        tr data-search=(search_text(v)) {
                            td {
                                a href={ (base) "/targets/" (v.name) } { strong { (v.name) } }
                                @if let Some(d) = &v.description { br; span.muted { (d) } }
                                @if l.recent.is_some() { br; span.muted { "used recently" } }
                            }
                            td data-label="Account" { (account_label(v)) }
                            td data-label="Partition" { (v.partition) }
                            td data-label="Level" { (v.level) }
                            td data-label="Needs" { (needs(v)) }
                            td {
                                div.actions {
                                    @if v.requires_approval {
                                        a.button href={ (base) "/targets/" (v.name) } { "Console or credentials…" }
                                    } @else {
                                        form method="post" action={ (base) "/console" } target="_blank" {
                                            (csrf(&ctx.session.csrf))
                                            input type="hidden" name="target" value=(v.name);
                                            @if v.high_security {
                                                div.inline {
                                                    div.field {
                                                        label for={ "code-" (v.name) } { "Code" }
                                                        input id={ "code-" (v.name) } name="totp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required;
                                                    }
                                                    button type="submit" { "Open console" }
                                                }
                                            } @else {
                                                button type="submit" { "Open console" }
                                            }
                                        }
                                        a href={ (base) "/targets/" (v.name) } { "Credentials…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    ctx.page("My targets", Nav::Targets, body).into_response()
}

fn error_page(ctx: &Ctx, title: &str, nav: Nav, e: ApiError) -> Response {
    let (status, error) = refusal(e, &ctx.meta);
    ctx.page(title, nav, html::form_alert(Some(&error), &[]))
        .status(status)
        .into_response()
}

/// The destinations offered for a target's partition (the console's home first).
fn destinations(partition: Partition) -> Vec<(String, &'static str)> {
    let domain = partition.console_domain();
    [
        ("console/home", "Console home"),
        ("ec2/home", "EC2"),
        ("s3/home", "S3"),
        ("iam/home", "IAM"),
        ("cloudwatch/home", "CloudWatch"),
        ("lambda/home", "Lambda"),
        ("cloudformation/home", "CloudFormation"),
        ("billing/home", "Billing"),
    ]
    .into_iter()
    .map(|(path, label)| (format!("https://{domain}/{path}"), label))
    .collect()
}

/// The fields a target's forms ask for, beyond the target: a code, a second person.
fn proof_fields(
    scope: &str,
    view: &TargetView,
    approval_id: &str,
    error: Option<&FormError>,
) -> Markup {
    html! {
        @if view.high_security {
            (scoped_code_field(scope, "totp", "Your code", true, error))
        }
        @if view.requires_approval {
            fieldset {
                legend { "A second person's approval" }
                p.hint { "Either an approved request's id, or an approver next to you with their code." }
                (field("approval_id", "Approved request id", Input { value: approval_id, scope, ..Input::default() }, error))
                (field("approver", "Or: approver's user name", Input { scope, ..Input::default() }, error))
                (scoped_code_field(scope, "approver_totp", "Approver's code", false, error))
                @if !view.approvers.is_empty() {
                    p.hint { "Who may approve: " (view.approvers.join(", ")) }
                }
            }
        }
    }
}

fn durations(max: u32) -> Vec<(u32, &'static str)> {
    [
        (900, "15 minutes"),
        (3600, "1 hour"),
        (4 * 3600, "4 hours"),
        (8 * 3600, "8 hours"),
        (12 * 3600, "12 hours"),
    ]
    .into_iter()
    .filter(|(s, _)| *s <= max)
    .collect()
}

fn target_forms(
    ctx: &Ctx,
    view: &TargetView,
    approval_id: &str,
    error: Option<&FormError>,
    which: &str,
) -> Markup {
    let base = &ctx.base;
    let partition = Partition::parse(&view.partition).unwrap_or_default();
    let in_console = which == "console";
    html! {
        dl {
            dt { "Account" } dd { (account_label(view)) }
            dt { "Partition" } dd { (view.partition) }
            dt { "Level" } dd { (view.level) }
            @if let Some(arn) = &view.role_arn { dt { "Role" } dd { code { (arn) } } }
            dt { "Needs" } dd { (needs(view)) }
            dt { "Granted by" } dd { (view.granted_by.join(", ")) }
        }
        section aria-labelledby="console-h" {
            h2 #console-h { "Open the AWS console" }
            @if in_console { (html::form_alert(error, &["totp", "approver", "approver_totp", "approval_id"])) }
            form.panel method="post" action={ (base) "/console" } {
                (csrf(&ctx.session.csrf))
                input type="hidden" name="target" value=(view.name);
                div.field {
                    label for="f-destination" { "Open at" }
                    select #f-destination name="destination" {
                        @for (url, label) in destinations(partition) { option value=(url) { (label) } }
                    }
                }
                (field("destination_url", "Or a console URL", Input { hint: Some("Any page on the partition's console"), ..Input::default() }, if in_console { error } else { None }))
                (proof_fields("console-", view, approval_id, if in_console { error } else { None }))
                button type="submit" { "Open console" }
            }
        }
        section aria-labelledby="credentials-h" {
            h2 #credentials-h { "Get credentials" }
            @if !in_console { (html::form_alert(error, &["totp", "approver", "approver_totp", "approval_id", "duration"])) }
            form.panel method="post" action={ (base) "/credentials" } {
                (csrf(&ctx.session.csrf))
                input type="hidden" name="target" value=(view.name);
                div.field {
                    label for="f-duration" { "For" }
                    select #f-duration name="duration" {
                        @for (seconds, label) in durations(view.max_duration_seconds) {
                            option value=(seconds) selected[seconds == 3600] { (label) }
                        }
                    }
                    p.hint { "At most " (view.max_duration_seconds / 60) " minutes for this target." }
                }
                (proof_fields("credentials-", view, approval_id, if in_console { None } else { error }))
                button type="submit" { "Get credentials" }
            }
        }
    }
}

async fn find_target(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<TargetView>, ApiError> {
    Ok(my_targets(state, ctx, headers)
        .await?
        .into_iter()
        .map(|l| l.view)
        .find(|v| v.name == name))
}

fn not_yours(ctx: &Ctx, name: &str) -> Response {
    let body = html! {
        p { "“" (name) "” is not one of your targets." }
        p { a href={ (ctx.base) "/targets" } { "Your targets" } }
    };
    ctx.page("Not found", Nav::Targets, body)
        .status(StatusCode::NOT_FOUND)
        .into_response()
}

async fn target_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in(&state, &headers, meta).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    match find_target(&state, &ctx, &headers, &name).await {
        Ok(Some(view)) => {
            let approval_id = query
                .get("approval_id")
                .map(String::as_str)
                .unwrap_or_default();
            let body = target_forms(&ctx, &view, approval_id, None, "");
            ctx.page(&view.name, Nav::Targets, body).into_response()
        }
        Ok(None) => not_yours(&ctx, &name),
        Err(e) => error_page(&ctx, "Target", Nav::Targets, e),
    }
}

/// The JSON route's request body, from a form: the same parsing, the same checks.
fn request_body(form: &Form, console: bool) -> CredentialsBody {
    CredentialsBody {
        target: form.owned("target").unwrap_or_default(),
        duration_seconds: form.get("duration").and_then(|d| d.parse().ok()),
        totp: form.owned("totp"),
        approver: form.owned("approver"),
        approver_totp: form.owned("approver_totp"),
        approval_id: form.owned("approval_id"),
        console,
        destination: if console {
            form.owned("destination_url")
                .or_else(|| form.owned("destination"))
        } else {
            None
        },
    }
}

/// Issues for a form (console or credentials); on a refusal, the target's page with the words.
async fn issue(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    form: &Form,
    console: bool,
) -> Result<Issuance, Response> {
    let name = form.owned("target").unwrap_or_default();
    let issued = match request_body(form, console).parse() {
        Ok(request) => state
            .issue
            .issuer
            .issue(ctx.identity(), &request, &ctx.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match issued {
        Ok(issuance) => {
            tracing::info!(user = %ctx.session.identity.user, target = %issuance.target.name, access_key_id = %issuance.credentials.access_key_id, console, "issued through the web console");
            Ok(issuance)
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let view = find_target(state, ctx, headers, &name).await.ok().flatten();
            let which = if console { "console" } else { "credentials" };
            let body = match &view {
                Some(view) => target_forms(
                    ctx,
                    view,
                    form.get("approval_id").unwrap_or_default(),
                    Some(&error),
                    which,
                ),
                None => html::form_alert(Some(&error), &[]),
            };
            Err(ctx
                .page(
                    view.as_ref().map_or("Target", |v| v.name.as_str()),
                    Nav::Targets,
                    body,
                )
                .status(status)
                .into_response())
        }
    }
}

async fn console(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let issuance = match issue(&state, &ctx, &headers, &form, true).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let link = issuance
        .console_url
        .as_ref()
        .map(|u| u.expose_secret())
        .unwrap_or_default();
    // The link is posted, not followed: its sign-in token never sits in the address bar, the
    // history or a Referer.
    let Some((action, fields)) = split_link(link) else {
        return error_page(
            &ctx,
            "Console",
            Nav::Targets,
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_invalid",
                "the sign-in link could not be read",
            ),
        );
    };
    let body = html! {
        p { "Opening the AWS console as " strong { (issuance.target.name) } " in account " code { (issuance.target.account) } "…" }
        form method="post" action=(action) data-autosubmit {
            @for (name, value) in &fields { input type="hidden" name=(name) value=(value); }
            button type="submit" { "Continue to the AWS console" }
        }
        p.hint { "The sign-in link works once, within 15 minutes." }
    };
    ctx.page("Opening the console", Nav::Targets, body)
        .cookie(session::remember(
            &state.web,
            &headers,
            &issuance.target.name,
        ))
        .into_response()
}

/// A sign-in link's address without its query, and the query's fields.
fn split_link(link: &str) -> Option<(String, Vec<(String, String)>)> {
    let (action, query) = link.split_once('?')?;
    if !(action.starts_with("https://") || action.starts_with("http://")) {
        return None;
    }
    Some((
        action.to_owned(),
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    ))
}

async fn credentials(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let issuance = match issue(&state, &ctx, &headers, &form, false).await {
        Ok(i) => i,
        Err(answer) => return answer,
    };
    let c = &issuance.credentials;
    let name = issuance.target.name.as_str();
    let secret = c.secret_access_key.expose_secret();
    let token = c.session_token.expose_secret();
    let expiration = c.expiration.format(&Rfc3339).unwrap_or_default();
    let exports = format!(
        "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={secret}\nexport AWS_SESSION_TOKEN={token}",
        c.access_key_id
    );
    let ini = format!(
        "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {secret}\naws_session_token = {token}",
        c.access_key_id
    );
    let process =
        format!("[profile {name}]\ncredential_process = cooper credential-process {name}");
    let body = html! {
        div.notice role="status" {
            "Credentials for " strong { (name) } " in account " code { (issuance.target.account) }
            ", valid until " time datetime=(expiration) { (expiration) } "."
            @if let Some(approver) = &issuance.approved_by { " Approved by " (approver) "." }
        }
        p { strong { "Shown once." } " They are not kept by cooper nor by this page: copy them now." }
        dl {
            dt { "Principal" } dd { code { (c.principal_arn) } }
            dt { "Access key id" } dd { code #akid { (c.access_key_id) } }
        }
        (copyable("exports", "Shell (bash, zsh)", &exports))
        (copyable("ini", "~/.aws/credentials", &ini))
        (copyable("process", "Or let the AWS CLI ask cooper each time (~/.aws/config)", &process))
        p { a href={ (ctx.base) "/targets" } { "Back to my targets" } }
    };
    ctx.page("Credentials", Nav::Targets, body)
        .cookie(session::remember(
            &state.web,
            &headers,
            &issuance.target.name,
        ))
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Authenticator

async fn authenticator_view(state: &WebState, ctx: &Ctx, error: Option<&FormError>) -> Markup {
    let enrolled = state
        .enroll
        .shared
        .second_factor
        .store
        .factors(&ctx.session.identity.user)
        .await
        .map(|f| f.totp.is_some());
    let base = &ctx.base;
    html! {
        @match enrolled {
            Ok(true) => p { "Your authenticator is enrolled. To move to a new one, enroll again with a code from the current one." },
            Ok(false) => p { "You have no authenticator yet. Enroll one to sign in and to use targets that need a code." },
            Err(_) => p.muted { "Whether you have an authenticator could not be read just now." },
        }
        (html::form_alert(error, &["totp"]))
        form.panel method="post" action={ (base) "/authenticator" } {
            (csrf(&ctx.session.csrf))
            @if matches!(enrolled, Ok(true)) {
                (code_field("totp", "A code from your current authenticator", true, error))
            }
            button type="submit" { @if matches!(enrolled, Ok(true)) { "Enroll a new authenticator" } @else { "Enroll an authenticator" } }
        }
    }
}

async fn authenticator_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
) -> Response {
    let ctx = match signed_in(&state, &headers, meta).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let body = authenticator_view(&state, &ctx, None).await;
    ctx.page("Authenticator", Nav::Authenticator, body)
        .into_response()
}

fn confirm_form(ctx: &Ctx, error: Option<&FormError>) -> Markup {
    html! {
        (html::form_alert(error, &["totp"]))
        form.panel method="post" action={ (ctx.base) "/authenticator/confirm" } {
            (csrf(&ctx.session.csrf))
            (code_field("totp", "The first code your app shows", true, error))
            button type="submit" { "Confirm" }
        }
    }
}

async fn authenticator_start(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let code = match form.get("totp").map(TotpCode::parse).transpose() {
        Ok(code) => code,
        Err(e) => return authenticator_refused(&state, &ctx, ApiError::from(e)).await,
    };
    let started = match state
        .enroll
        .enrollment
        .start(&ctx.session.identity, code.as_ref(), &ctx.meta)
        .await
    {
        Ok(s) => s,
        Err(e) => return authenticator_refused(&state, &ctx, ApiError::from(e)).await,
    };
    let body = html! {
        (enrollment_steps(&started))
        (confirm_form(&ctx, None))
    };
    ctx.page("Enroll an authenticator", Nav::Authenticator, body)
        .into_response()
}

/// The new secret, as a QR code and as text to type, and what to do with it.
fn enrollment_steps(started: &cooper_core::factors::StartedEnrollment) -> Markup {
    let uri = started.provisioning_uri.expose_secret();
    let secret = started.secret_base32.expose_secret();
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let qr = qr::png(uri).map(|png| format!("data:image/png;base64,{}", STANDARD.encode(png)));
    html! {
        ol {
            li {
                "Scan this code with your authenticator app"
                @if let Some(src) = &qr { br; img.qr src=(src) alt="QR code of the new authenticator secret" width="192" height="192"; }
            }
            li {
                "Or type this secret into it (time-based, 6 digits, 30 seconds): "
                br; span.secret #secret { (grouped.join(" ")) }
            }
            li { "Then enter the first code it shows." }
        }
        p.hint { "This secret waits for its first code until " (started.expires_at.format(&Rfc3339).unwrap_or_default()) "." }
    }
}

async fn authenticator_refused(state: &WebState, ctx: &Ctx, e: ApiError) -> Response {
    let (status, error) = refusal(e, &ctx.meta);
    let body = authenticator_view(state, ctx, Some(&error)).await;
    ctx.page("Authenticator", Nav::Authenticator, body)
        .status(status)
        .into_response()
}

async fn authenticator_confirm(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let result = match TotpCode::parse(form.get("totp").unwrap_or_default()) {
        Ok(code) => state
            .enroll
            .enrollment
            .confirm(&ctx.session.identity, &code, None, &ctx.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match result {
        Ok(()) => {
            let body = html! {
                div.notice role="status" { "Your authenticator is enrolled." }
                p { a href={ (ctx.base) "/targets" } { "Go to my targets" } }
            };
            ctx.page("Authenticator", Nav::Authenticator, body)
                .into_response()
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            ctx.page(
                "Enroll an authenticator",
                Nav::Authenticator,
                confirm_form(&ctx, Some(&error)),
            )
            .status(status)
            .into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Approvals

async fn approvals_view(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    error: Option<&FormError>,
    target: &str,
    reason: &str,
) -> Markup {
    // The requests this browser opened, with their state now (each read as its page reads it).
    let now = state.issue.shared.clock.now();
    let mut mine = Vec::new();
    for id in session::requests(headers) {
        if let Ok(request) = state.issue.shared.approvals.view(&id, ctx.identity()).await
            && request.requester == ctx.session.identity.user
        {
            mine.push(ApprovalView::of(request, now));
        }
    }
    let gated: Vec<String> = state
        .issue
        .catalog
        .reachable(ctx.identity())
        .await
        .map(|(_, r)| {
            r.into_iter()
                .filter(|t| t.target.requires_approval())
                .map(|t| t.target.name.to_string())
                .collect()
        })
        .unwrap_or_default();
    let base = &ctx.base;
    html! {
        section aria-labelledby="ask-h" {
            h2 #ask-h { "Ask for a second person's approval" }
            @if gated.is_empty() {
                p { "None of your targets needs a second person." }
            } @else {
                (html::form_alert(error, &["reason"]))
                form.panel method="post" action={ (base) "/approvals" } {
                    (csrf(&ctx.session.csrf))
                    div.field {
                        label for="f-target" { "Target" }
                        select #f-target name="target" {
                            @for name in &gated { option value=(name) selected[name == target] { (name) } }
                        }
                    }
                    (field("reason", "Why", Input { value: reason, required: true, hint: Some("The approvers see this, and so does the audit trail"), ..Input::default() }, error))
                    button type="submit" { "Ask" }
                }
                p.hint { "The approvers are told. Send them the request's page; once approved, use it within its hour." }
            }
        }
        @if !mine.is_empty() {
            section aria-labelledby="mine-h" {
                h2 #mine-h { "Your requests" }
                table {
                    thead { tr { th { "Request" } th { "Target" } th { "State" } th { "Expires" } } }
                    tbody {
                        @for v in &mine {
                            tr {
                                td { a href={ (base) "/approvals/" (v.id) } { code { (v.id) } } }
                                td { (v.target) }
                                td { (state_words(v.status)) }
                                td { (v.expires_at.format(&Rfc3339).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="find-h" {
            h2 #find-h { "Open a request" }
            form.inline method="get" action={ (base) "/approvals" } {
                div.field {
                    label for="f-id" { "Request id" }
                    input #f-id name="id" autocomplete="off" required;
                }
                button.secondary type="submit" { "Open" }
            }
        }
    }
}

async fn approvals_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match signed_in(&state, &headers, meta).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    if let Some(id) = query.get("id").map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if let Ok(id) = ApprovalId::parse(id) {
            return see_other(&ctx.base, &format!("/approvals/{id}"), Vec::new());
        }
        let e = ApiError::from(cooper_core::approval::ApprovalError::NotFound);
        return error_page(&ctx, "Approvals", Nav::Approvals, e);
    }
    let body = approvals_view(&state, &ctx, &headers, None, "", "").await;
    ctx.page("Approvals", Nav::Approvals, body).into_response()
}

async fn approvals_open(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let target = form.owned("target").unwrap_or_default();
    let reason = form.owned("reason").unwrap_or_default();
    let opened = match (TargetName::parse(&target), Reason::parse(&reason)) {
        (Ok(t), Ok(r)) => state
            .issue
            .shared
            .approvals
            .open(ctx.identity(), &t, &r, &ctx.meta)
            .await
            .map_err(ApiError::from),
        (Err(e), _) | (_, Err(e)) => Err(ApiError::from(e)),
    };
    match opened {
        Ok(request) => see_other(
            &ctx.base,
            &format!("/approvals/{}", request.id),
            session::remember_request(&state.web, &headers, &request.id)
                .into_iter()
                .collect(),
        ),
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let body = approvals_view(&state, &ctx, &headers, Some(&error), &target, &reason).await;
            ctx.page("Approvals", Nav::Approvals, body)
                .status(status)
                .into_response()
        }
    }
}

fn state_words(state: ApprovalState) -> &'static str {
    match state {
        ApprovalState::Pending => "waiting for an approver",
        ApprovalState::Approved => "approved: the requester may use it once",
        ApprovalState::Used => "used",
        ApprovalState::Expired => "expired",
    }
}

fn approval_view(
    ctx: &Ctx,
    view: &ApprovalView,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> Markup {
    let base = &ctx.base;
    let mine = view.requester == ctx.session.identity.user.as_str();
    let state = state_words(view.status);
    html! {
        @if let Some(n) = notice { div.notice role="status" { (n) } }
        dl {
            dt { "Request" } dd { code { (view.id) } }
            dt { "Target" } dd { (view.target) }
            dt { "Asked by" } dd { (view.requester) }
            dt { "Why" } dd { (view.reason) }
            dt { "State" } dd { strong { (state) } }
            dt { "Expires" } dd { (view.expires_at.format(&Rfc3339).unwrap_or_default()) }
            @if let Some(by) = &view.approved_by { dt { "Approved by" } dd { (by) } }
        }
        @if matches!(view.status, ApprovalState::Pending) && !mine {
            (html::form_alert(error, &["totp"]))
            form.panel method="post" action={ (base) "/approvals/" (view.id) "/approve" } {
                (csrf(&ctx.session.csrf))
                (code_field("totp", "Your code, to approve", true, error))
                button type="submit" { "Approve" }
            }
        }
        @if matches!(view.status, ApprovalState::Approved) && mine {
            p { a.button href={ (base) "/targets/" (view.target) "?approval_id=" (view.id) } { "Use it: console or credentials" } }
        }
        @if matches!(view.status, ApprovalState::Pending) && mine {
            p.hint { "Send this page's address to an approver. Reload to see its state." }
        }
    }
}

async fn approval_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = match signed_in(&state, &headers, meta).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let viewed = match ApprovalId::parse(&id) {
        Ok(id) => state
            .issue
            .shared
            .approvals
            .view(&id, ctx.identity())
            .await
            .map_err(ApiError::from),
        Err(_) => Err(ApiError::from(
            cooper_core::approval::ApprovalError::NotFound,
        )),
    };
    match viewed {
        Ok(request) => {
            let view = ApprovalView::of(request, state.issue.shared.clock.now());
            ctx.page(
                "Approval request",
                Nav::Approvals,
                approval_view(&ctx, &view, None, None),
            )
            .into_response()
        }
        Err(e) => error_page(&ctx, "Approval request", Nav::Approvals, e),
    }
}

async fn approval_approve(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (ctx, form) = match signed_in_form(&state, &headers, meta, &body).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let Ok(id) = ApprovalId::parse(&id) else {
        return error_page(
            &ctx,
            "Approval request",
            Nav::Approvals,
            ApiError::from(cooper_core::approval::ApprovalError::NotFound),
        );
    };
    let approvals = &state.issue.shared.approvals;
    let result = match TotpCode::parse(form.get("totp").unwrap_or_default()) {
        Ok(code) => approvals
            .approve(&id, ctx.identity(), &code, &ctx.meta)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    let now = state.issue.shared.clock.now();
    match result {
        Ok(request) => {
            let view = ApprovalView::of(request, now);
            ctx.page(
                "Approval request",
                Nav::Approvals,
                approval_view(&ctx, &view, None, Some("Approved.")),
            )
            .into_response()
        }
        Err(e) => {
            let (status, error) = refusal(e, &ctx.meta);
            let body = match approvals.view(&id, ctx.identity()).await {
                Ok(request) => {
                    approval_view(&ctx, &ApprovalView::of(request, now), Some(&error), None)
                }
                Err(_) => html::form_alert(Some(&error), &[]),
            };
            ctx.page("Approval request", Nav::Approvals, body)
                .status(status)
                .into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin (read views, within the admin's scope: the same use cases as /v1/admin)

async fn admin_ctx(
    state: &WebState,
    headers: &HeaderMap,
    meta: RequestMeta,
) -> Result<(Ctx, cooper_core::admin::AdminContext), Response> {
    let ctx = signed_in(state, headers, meta).await?;
    let admin = &state.admin.shared.admin;
    match admin
        .context(AdminCall {
            identity: ctx.identity(),
            totp: None,
            meta: ctx.meta.clone(),
        })
        .await
    {
        Ok(admin_ctx) => Ok((ctx, admin_ctx)),
        Err(e) => Err(error_page(&ctx, "Admin", Nav::Admin, ApiError::from(e))),
    }
}

fn admin_nav(base: &str) -> Markup {
    html! {
        nav aria-label="Admin" {
            p.actions {
                a href={ (base) "/admin" } { "Audit" }
                a href={ (base) "/admin/accounts" } { "Accounts" }
                a href={ (base) "/admin/users" } { "Users" }
                a href={ (base) "/admin/groups" } { "Groups" }
            }
        }
    }
}

fn page_request(query: &HashMap<String, String>, limit: u16) -> Result<PageRequest, ApiError> {
    Ok(PageRequest::new(Some(limit), query.get("cursor").cloned())?)
}

fn next_link(base: &str, path: &str, cursor: Option<&str>, extra: &str) -> Markup {
    html! {
        @if let Some(cursor) = cursor {
            @let next = format!("{base}{path}?{extra}cursor={}", form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>());
            p { a href=(next) { "Next page" } }
        }
    }
}

async fn admin_page(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let get = |k: &str| query.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (user, account, key) = (get("user"), get("account"), get("access_key_id"));
    let search: Option<Result<AuditQuery, ApiError>> = match (user, account, key) {
        (None, None, None) => None,
        (Some(u), None, None) => Some(
            UserName::parse(u)
                .map(|u| AuditQuery::Actor(u.to_string()))
                .map_err(ApiError::from),
        ),
        (None, Some(a), None) => Some(
            AccountId::parse(a)
                .map(AuditQuery::Account)
                .map_err(ApiError::from),
        ),
        (None, None, Some(k)) => Some(
            AccessKeyId::parse(k)
                .map(|k| AuditQuery::AccessKey(k.to_string()))
                .map_err(ApiError::from),
        ),
        _ => Some(Err(ApiError::bad_request(
            "invalid_request",
            "search by one of user, account or access key id",
        ))),
    };
    let found = match search {
        None => None,
        Some(Err(e)) => Some(Err(e)),
        Some(Ok(search)) => Some(match page_request(&query, 50) {
            Ok(page) => state
                .admin
                .shared
                .admin
                .audit_search(&admin_ctx, &search, &page, true)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        }),
    };
    let base = &ctx.base;
    let extra = [("user", user), ("account", account), ("access_key_id", key)]
        .iter()
        .filter_map(|(k, v)| {
            v.map(|v| {
                format!(
                    "{k}={}&",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
        })
        .collect::<String>();
    let body = html! {
        (admin_nav(base))
        p.muted { @match &admin_ctx.scope {
            cooper_core::admin::scope::AdminScope::Universal => "You administer every account.",
            _ => "You administer some accounts: you see their records only.",
        } }
        form.panel method="get" action={ (base) "/admin" } {
            h2 { "Search the audit trail" }
            p.hint { "By one of these. “Who holds this access key?”: give the key id." }
            div.inline {
                (field("user", "User", Input { value: user.unwrap_or_default(), ..Input::default() }, None))
                (field("account", "Account id", Input { value: account.unwrap_or_default(), ..Input::default() }, None))
                (field("access_key_id", "Access key id", Input { value: key.unwrap_or_default(), ..Input::default() }, None))
                button type="submit" { "Search" }
            }
        }
        @match &found {
            None => {},
            Some(Err(e)) => {
                @let (_, error) = refusal(ApiError::new(e.status, e.code, e.message.clone()), &ctx.meta);
                (html::form_alert(Some(&error), &[]))
            },
            Some(Ok(page)) => {
                @if page.items.is_empty() { p { "No records." } } @else {
                    table {
                        caption.muted { "Newest first" }
                        thead { tr { th { "When" } th { "Event" } th { "Who" } th { "Target / account" } th { "Access key" } th { "Why, what" } } }
                        tbody {
                            @for r in &page.items {
                                @let event = serde_json::to_value(r.event).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                                tr {
                                    td { (r.at.format(&Rfc3339).unwrap_or_default()) }
                                    td { (event) }
                                    td { (r.actor) br; span.muted { (r.auth) } }
                                    td { @if let Some(t) = &r.target { (t) br; } @if let Some(a) = &r.account { code { (a) } } }
                                    td { @if let Some(k) = &r.access_key_id { code { (k) } } }
                                    td { @if let Some(o) = &r.reason { (o) } @if let Some(a) = &r.approved_by { br; "approved by " (a) } @if let Some(res) = &r.resource { br; (res) } }
                                }
                            }
                        }
                    }
                    (next_link(base, "/admin", page.cursor.as_deref(), &extra))
                }
            },
        }
    };
    ctx.page("Admin", Nav::Admin, body).into_response()
}

async fn admin_accounts(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .accounts(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Accounts", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        @if page.items.is_empty() { p { "No account in your scope." } } @else {
            table {
                thead { tr { th { "Account" } th { "Id" } th { "Partition" } } }
                tbody {
                    @for a in &page.items {
                        tr {
                            td { a href={ (base) "/admin/accounts/" (a.value.id) } { (a.value.name) } }
                            td { code { (a.value.id) } }
                            td { (a.value.partition) }
                        }
                    }
                }
            }
        }
        (next_link(base, "/admin/accounts", page.cursor.as_deref(), ""))
    };
    ctx.page("Accounts", Nav::Admin, body).into_response()
}

async fn admin_account(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let admin = &state.admin.shared.admin;
    let page = PageRequest::first(100);
    let read = async {
        let id = AccountId::parse(&id)?;
        let account = admin.account(&admin_ctx, &id).await?;
        let targets = admin.targets(&admin_ctx, &id, &page).await?;
        let grants = admin.grants_in(&admin_ctx, &id, &page).await?;
        Ok::<_, ApiError>((account, targets, grants))
    };
    let (account, targets, grants) = match read.await {
        Ok(x) => x,
        Err(e) => return error_page(&ctx, "Account", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        dl {
            dt { "Id" } dd { code { (account.value.id) } }
            dt { "Partition" } dd { (account.value.partition) }
        }
        h2 { "Targets" }
        @if targets.items.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "Target" } th { "Kind" } th { "Level" } th { "Needs" } } }
                tbody {
                    @for t in &targets.items {
                        @let t = &t.value;
                        tr {
                            td { (t.name) @if let Some(d) = &t.description { br; span.muted { (d) } } }
                            td { @match &t.kind { TargetKind::Role { role_arn, .. } => { "role " code { (role_arn) } }, TargetKind::FederatedUser { .. } => "federated user", } }
                            td { (t.level) }
                            td { @if t.high_security { "code " } @if t.requires_approval() { "second person" } }
                        }
                    }
                }
            }
        }
        h2 { "Grants" }
        @if grants.items.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "Who" } th { "What" } th { "Until" } } }
                tbody {
                    @for g in &grants.items {
                        tr {
                            td { (g.principal) }
                            td { @match &g.scope { GrantScope::Target(t) => { "target " (t) }, GrantScope::Account { max_level, .. } => { "every target up to level " (max_level) }, } }
                            td { @match g.expires_at { Some(at) => (at.format(&Rfc3339).unwrap_or_default()), None => "no end", } }
                        }
                    }
                }
            }
        }
    };
    ctx.page(account.value.name.as_str(), Nav::Admin, body)
        .into_response()
}

async fn admin_users(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .users(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Users", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        table {
            thead { tr { th { "User" } th { "Name" } th { "State" } } }
            tbody {
                @for u in &page.items {
                    @let u = &u.value;
                    tr {
                        td { (u.name) }
                        td { @if let Some(d) = &u.display_name { (d) } }
                        td { @if u.enabled { "active" } @else { "disabled" } @if let Some(at) = u.expires_at { " until " (at.format(&Rfc3339).unwrap_or_default()) } }
                    }
                }
            }
        }
        (next_link(base, "/admin/users", page.cursor.as_deref(), ""))
    };
    ctx.page("Users", Nav::Admin, body).into_response()
}

async fn admin_groups(
    State(state): State<WebState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (ctx, admin_ctx) = match admin_ctx(&state, &headers, meta).await {
        Ok(x) => x,
        Err(answer) => return answer,
    };
    let found = match page_request(&query, 100) {
        Ok(page) => state
            .admin
            .shared
            .admin
            .groups(&admin_ctx, &page)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let page = match found {
        Ok(page) => page,
        Err(e) => return error_page(&ctx, "Groups", Nav::Admin, e),
    };
    let base = &ctx.base;
    let body = html! {
        (admin_nav(base))
        table {
            thead { tr { th { "Group" } th { "About" } } }
            tbody {
                @for g in &page.items {
                    tr { td { (g.value.name) } td { @if let Some(d) = &g.value.description { (d) } } }
                }
            }
        }
        (next_link(base, "/admin/groups", page.cursor.as_deref(), ""))
    };
    ctx.page("Groups", Nav::Admin, body).into_response()
}
