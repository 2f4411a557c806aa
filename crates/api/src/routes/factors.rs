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
use crate::state::EnrollState;

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// A current code: needed when the caller already has an authenticator.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Serialize)]
struct Started<'a> {
    user: &'a str,
    otpauth_uri: &'a str,
    /// For typing into an app that cannot scan the QR code.
    secret: &'a str,
    /// The otpauth URI as a QR code, PNG, base64.
    qr_png_base64: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Starts an enrollment: a new secret, sealed with KMS, waiting for its first code.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    pub totp: String,
    /// A first password, set with the enrollment (at least 12 characters).
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Serialize)]
struct Enrolled<'a> {
    user: &'a str,
    enrolled: bool,
}

/// Confirms the pending enrollment with the app's first code.
pub async fn confirm_enrollment(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    Enrolling(identity): Enrolling,
    SecretJsonBody(body): SecretJsonBody<ConfirmBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = TotpCode::parse(&body.totp)?;
    let password = body
        .password
        .map(|p| NewPassword::parse(SecretString::from(p), &identity.user))
        .transpose()?;
    state
        .enrollment
        .confirm(&identity, &code, password.as_ref(), &meta)
        .await?;
    Ok(Json(serde_json::json!(Enrolled {
        user: identity.user.as_str(),
        enrolled: true,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub user: String,
    pub password: String,
    pub totp: String,
}

#[derive(Serialize)]
struct SessionView<'a> {
    token: &'a str,
    token_type: &'static str,
    user: &'a str,
    groups: Vec<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

fn session_response(session: &Session) -> Response {
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

/// Local login: user, password and a fresh code give a short-lived cooper JWT.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
    pub totp: String,
}

/// Sets or changes the caller's password; a fresh code proves it is really them.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSessionBody {
    pub id_token: String,
}

/// Exchanges an identity provider's ID token for a cooper session that keeps its groups.
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
