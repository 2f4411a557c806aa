//! The enroll-totp function: authenticator enrollment, local login, and passwords.
//!
//! POST /v1/totp/enrollment, POST /v1/totp/enrollment/confirm, POST /v1/sessions, PUT /v1/password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cooper_core::access::Identity;
use cooper_core::audit::{AuditEvent, AuditRecord};
use cooper_core::factors::FactorError;
use cooper_core::names::UserName;
use cooper_core::password::NewPassword;
use cooper_core::totp::TotpCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Authenticated;
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

/// Audits a refused factor operation (not failures of our own), then returns the error.
async fn refused(state: &EnrollState, mut record: AuditRecord, error: FactorError) -> ApiError {
    if !matches!(
        error,
        FactorError::Upstream(_) | FactorError::Entropy(_) | FactorError::Hashing
    ) {
        record.reason = Some(error.code().to_owned());
        state.shared.audit_refusal(&record).await;
    }
    error.into()
}

fn record(
    meta: &crate::context::Meta,
    state: &EnrollState,
    event: AuditEvent,
    identity: &Identity,
) -> AuditRecord {
    AuditRecord::new(
        &meta.0,
        state.shared.clock.now(),
        event,
        identity.user.as_str(),
        &identity.method.to_string(),
    )
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
    meta: Meta,
    Authenticated(identity): Authenticated,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: a first enrollment needs none.
    let body: StartBody = crate::json::parse_optional_secret(&headers, &body)?;
    let code = body.totp.as_deref().map(TotpCode::parse).transpose()?;
    let mut audit = record(&meta, &state, AuditEvent::TotpEnrollmentStarted, &identity);
    let started = match state.enrollment.start(&identity.user, code.as_ref()).await {
        Ok(started) => started,
        Err(e) => {
            audit.event = AuditEvent::TotpEnrollmentRefused;
            return Err(refused(&state, audit, e).await);
        }
    };
    let uri = started.provisioning_uri.expose_secret();
    let png = qr::png(uri).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the QR code could not be drawn",
        )
    })?;
    state.shared.audit(&audit).await?;
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
pub struct CodeBody {
    pub totp: String,
}

#[derive(Serialize)]
struct Enrolled<'a> {
    user: &'a str,
    enrolled: bool,
}

/// Confirms the pending enrollment with the app's first code.
pub async fn confirm_enrollment(
    State(state): State<EnrollState>,
    meta: Meta,
    Authenticated(identity): Authenticated,
    SecretJsonBody(body): SecretJsonBody<CodeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = TotpCode::parse(&body.totp)?;
    let mut audit = record(&meta, &state, AuditEvent::TotpEnrolled, &identity);
    if let Err(e) = state.enrollment.confirm(&identity.user, &code).await {
        audit.event = AuditEvent::TotpEnrollmentRefused;
        return Err(refused(&state, audit, e).await);
    }
    state.shared.audit(&audit).await?;
    tracing::info!(user = %identity.user, "authenticator enrolled");
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
struct Session<'a> {
    token: &'a str,
    token_type: &'static str,
    user: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Local login: user, password and a fresh code give a short-lived cooper JWT.
pub async fn login(
    State(state): State<EnrollState>,
    Meta(meta): Meta,
    SecretJsonBody(body): SecretJsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::from(FactorError::InvalidCredentials);
    let user = UserName::parse(&body.user).map_err(|_| invalid())?;
    let code = TotpCode::parse(&body.totp).map_err(|_| invalid())?;
    let password = SecretString::from(body.password);
    let now = state.shared.clock.now();
    let mut audit = AuditRecord::new(
        &meta,
        now,
        AuditEvent::SessionCreated,
        user.as_str(),
        "password+totp",
    );

    if let Err(e) = state.login.login(&user, &password, &code).await {
        audit.event = AuditEvent::SessionRefused;
        return Err(refused(&state, audit, e).await);
    }
    let expires_at = now + state.session_lifetime;
    let token = state
        .shared
        .jwt
        .mint(user.as_str(), now, state.session_lifetime)
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the session could not be signed",
            )
        })?;
    audit.expiration = Some(expires_at);
    state.shared.audit(&audit).await?;
    tracing::info!(%user, "session created");
    Ok(no_store(
        Json(Session {
            token: token.expose_secret(),
            token_type: "Bearer",
            user: user.as_str(),
            expires_at,
        })
        .into_response(),
    ))
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
    meta: Meta,
    Authenticated(identity): Authenticated,
    SecretJsonBody(body): SecretJsonBody<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let password = NewPassword::parse(SecretString::from(body.password), &identity.user)?;
    let code = TotpCode::parse(&body.totp)?;
    let mut audit = record(&meta, &state, AuditEvent::PasswordChanged, &identity);
    if let Err(e) = state.password.set(&identity, &password, &code).await {
        audit.event = AuditEvent::PasswordRefused;
        return Err(refused(&state, audit, e).await);
    }
    state.shared.audit(&audit).await?;
    tracing::info!(user = %identity.user, "password set");
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
    let now = state.shared.clock.now();
    let auth = identity.method.to_string();
    let user = identity.user.clone();
    let mut audit = AuditRecord::new(&meta, now, AuditEvent::SessionCreated, user.as_str(), &auth);
    // The directory still has its say: a user disabled or expired there is refused.
    let (caller, _) = match state.shared.admin.scope(identity).await {
        Ok(found) => found,
        Err(e) => {
            audit.event = AuditEvent::SessionRefused;
            audit.reason = Some(e.code().to_owned());
            state.shared.audit_refusal(&audit).await;
            return Err(e.into());
        }
    };
    let issuer = match &caller.identity.method {
        cooper_core::access::AuthMethod::Oidc(issuer) => issuer.clone(),
        _ => String::new(),
    };
    let mut groups: Vec<String> = caller
        .identity
        .asserted_groups
        .iter()
        .map(ToString::to_string)
        .collect();
    groups.sort();
    groups.dedup();
    let expires_at = now + state.session_lifetime;
    let token = state
        .shared
        .jwt
        .mint_for(
            user.as_str(),
            Some(&issuer),
            groups.clone(),
            now,
            state.session_lifetime,
        )
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the session could not be signed",
            )
        })?;
    audit.expiration = Some(expires_at);
    state.shared.audit(&audit).await?;
    tracing::info!(%user, %issuer, "session created from the identity provider");
    Ok(no_store(
        Json(serde_json::json!({
            "token": token.expose_secret(),
            "token_type": "Bearer",
            "user": user,
            "groups": groups,
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }))
        .into_response(),
    ))
}
