//! The enroll-totp function: authenticator enrollment, local login, and passwords.
//!
//! POST /v1/totp/enrollment, POST /v1/totp/enrollment/confirm, POST /v1/sessions, PUT /v1/password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::factors::FactorError;
use cooper_core::names::UserName;
use cooper_core::password::NewPassword;
use cooper_core::sessions::Session;
use cooper_core::totp::TotpCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Authenticated, Enrolling};
use crate::context::Meta;
use crate::error::ApiError;
use crate::json::SecretJsonBody;
use crate::qr;
#[cfg(feature = "openapi")]
use crate::schema::{BearerType, NoStore};
use crate::state::EnrollState;

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What starting an enrollment takes: nothing the first time.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnrollmentStartRequest))]
pub struct StartBody {
    /// A current code: needed when the caller already has an authenticator.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<TotpCode>))]
    pub totp: Option<String>,
}

/// A new secret, waiting for its first code.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnrollmentStarted))]
pub struct Started<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: &'a str,
    otpauth_uri: &'a str,
    /// The base32 secret, for typing into an app that cannot scan the QR code.
    secret: &'a str,
    /// The otpauth URI as a QR code, PNG, base64.
    #[cfg_attr(
        feature = "openapi",
        schema(content_encoding = "base64", content_media_type = "image/png")
    )]
    qr_png_base64: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Start enrolling an authenticator
///
/// Needs a signed-in session, or (for a first authenticator) the one-time enrollment code an
/// admin issued as the bearer; an API token or an identity provider's token alone cannot enroll
/// (403 `session_required`). The body is optional for a first enrollment; re-enrolling needs
/// `{"totp": CODE}` (a current code).
// The new secret is sealed with KMS, waiting for its first code.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/totp/enrollment", operation_id = "startTotpEnrollment", tag = "totp",
    request_body(content = Option<StartBody>, example = json!({})),
    responses((status = 200, description = "A new secret, waiting for its first code.", body = Started, headers(("Cache-Control" = NoStore)))),
))]
pub async fn start_enrollment(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    Enrolling(identity): Enrolling,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: a first enrollment needs none.
    let body: StartBody = crate::json::parse_optional_secret(&headers, &body)?;
    let code = body.totp.as_deref().map(TotpCode::parse).transpose()?;
    let started = state
        .enrollment
        .start(&identity, code.as_ref(), &meta)
        .await?;
    let uri = started.provisioning_uri.expose_secret();
    let png = qr::png(uri).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the QR code could not be drawn",
        )
    })?;
    Ok(no_store(
        Json(Started {
            user: identity.user.as_str(),
            otpauth_uri: uri,
            secret: started.secret_base32.expose_secret(),
            qr_png_base64: STANDARD.encode(png),
            expires_at: started.expires_at,
        })
        .into_response(),
    ))
}

/// A fresh code from the authenticator app.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ConfirmEnrollmentRequest))]
pub struct ConfirmBody {
    #[cfg_attr(feature = "openapi", schema(value_type = TotpCode))]
    pub totp: String,
    /// A first password, set with the enrollment: 12 to 256 characters, not the user name.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 256))]
    pub password: Option<String>,
}

/// The authenticator is enrolled.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrolled<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::True))]
    enrolled: bool,
}

/// Confirm the pending enrollment with the app's first code
///
/// With an enrollment code as the bearer, this uses the code up; `password` sets a first
/// password.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/totp/enrollment/confirm", operation_id = "confirmTotpEnrollment", tag = "totp",
    request_body(content = ConfirmBody, example = json!({"totp": "123456"})),
    responses((status = 200, description = "Enrolled.", body = Enrolled)),
))]
pub async fn confirm_enrollment(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    Enrolling(identity): Enrolling,
    SecretJsonBody(body): SecretJsonBody<ConfirmBody>,
) -> Result<Response, ApiError> {
    let code = TotpCode::parse(&body.totp)?;
    let password = body
        .password
        .map(|p| NewPassword::parse(SecretString::from(p), &identity.user))
        .transpose()?;
    state
        .enrollment
        .confirm(&identity, &code, password.as_ref(), &meta)
        .await?;
    Ok(Json(Enrolled {
        user: identity.user.as_str(),
        enrolled: true,
    })
    .into_response())
}

/// A local login: user, password and a fresh code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LoginRequest))]
pub struct LoginBody {
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    pub user: String,
    pub password: String,
    #[cfg_attr(feature = "openapi", schema(value_type = TotpCode))]
    pub totp: String,
}

/// A cooper session: a JWT for `Authorization: Bearer`, and the groups it carries.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Session))]
pub struct SessionView<'a> {
    /// A cooper JWT, for `Authorization: Bearer`.
    token: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = BearerType))]
    token_type: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = UserName))]
    user: &'a str,
    /// The session's groups (an identity provider's, for an OIDC session).
    groups: Vec<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

pub(crate) fn session_response(session: &Session) -> Response {
    no_store(
        Json(SessionView {
            token: session.token.expose_secret(),
            token_type: "Bearer",
            user: session.user.as_str(),
            groups: session.groups.iter().map(|g| g.as_str()).collect(),
            expires_at: session.expires_at,
        })
        .into_response(),
    )
}

/// Local login: user, password and TOTP code give a cooper JWT
///
/// Any malformed or wrong part answers 401 `invalid_credentials`; failures lock out.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/sessions", operation_id = "login", tag = "sessions", security(),
    request_body(content = LoginBody, example = json!({"user": "alice@example.com", "password": "correct horse battery staple", "totp": "123456"})),
    responses((status = 200, description = "A session token.", body = SessionView, headers(("Cache-Control" = NoStore)))),
))]
pub async fn login(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    SecretJsonBody(body): SecretJsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    // A malformed name or code is refused like a wrong one.
    let invalid = || ApiError::from(FactorError::InvalidCredentials);
    let user = UserName::parse(&body.user).map_err(|_| invalid())?;
    let code = TotpCode::parse(&body.totp).map_err(|_| invalid())?;
    let password = SecretString::from(body.password);
    let session = state.login.login(&user, &password, &code, &meta).await?;
    Ok(session_response(&session))
}

/// A new password, and a fresh code that proves it is really the caller.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PasswordRequest))]
pub struct PasswordBody {
    /// 12 to 256 characters, not the user name.
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 256))]
    pub password: String,
    #[cfg_attr(feature = "openapi", schema(value_type = TotpCode))]
    pub totp: String,
}

/// Set or change one's password
#[cfg_attr(feature = "openapi", utoipa::path(
    put, path = "/v1/password", operation_id = "setPassword", tag = "sessions",
    request_body(content = PasswordBody, example = json!({"password": "correct horse battery staple", "totp": "123456"})),
    responses((status = 204, description = "The password is set.")),
))]
pub async fn set_password(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    Authenticated(identity): Authenticated,
    SecretJsonBody(body): SecretJsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let password = NewPassword::parse(SecretString::from(body.password), &identity.user)?;
    let code = TotpCode::parse(&body.totp)?;
    state
        .password
        .set(&identity, &password, &code, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An identity provider's ID token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = OidcSessionRequest))]
pub struct OidcSessionBody {
    /// The identity provider's ID token.
    pub id_token: String,
}

/// Exchange an identity provider's ID token for a cooper session
///
/// The session keeps the provider's groups. 404 `oidc_not_configured` when the deployment has no
/// identity provider.
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/sessions/oidc", operation_id = "createOidcSession", tag = "sessions", security(),
    request_body(content = OidcSessionBody, example = json!({"id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"})),
    responses((status = 200, description = "A session token that keeps the provider's groups.", body = SessionView, headers(("Cache-Control" = NoStore)))),
))]
pub async fn oidc_session(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    SecretJsonBody(body): SecretJsonBody<OidcSessionBody>,
) -> Result<Response, ApiError> {
    let oidc = state.shared.auth.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "oidc_not_configured",
            "this deployment has no identity provider configured",
        )
    })?;
    let identity = oidc
        .verify(&body.id_token)
        .await
        .map_err(|e| ApiError::from(crate::auth::AuthError::from(e)))?;
    let session = state.exchange.exchange(identity, &meta).await?;
    Ok(session_response(&session))
}

/// Sign out: end the session this request comes with
///
/// The session's token is refused from the next request on (401 `session_revoked`), wherever a
/// copy of it is. Only a session can be signed out (400 `not_a_session` for an API token).
#[cfg_attr(feature = "openapi", utoipa::path(
    post, path = "/v1/sessions/logout", operation_id = "logout", tag = "sessions",
    responses((status = 204, description = "The session has ended.")),
))]
pub async fn logout(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    Authenticated(identity): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.shared.signout.sign_out(&identity, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
