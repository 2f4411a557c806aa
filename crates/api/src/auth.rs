//! Authentication: turns an `Authorization: Bearer ...` header into an `Identity`.
//!
//! Two kinds of bearer value for now: cooper's own JWT, and per-user API tokens (`cooper_...`).
//! An identity provider's token (OIDC) slots in as one more `BearerKind`.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cooper_core::access::{AuthMethod, Identity};
use cooper_core::clock::Clock;
use cooper_core::names::{GroupName, UserName};
use cooper_core::ports::{Directory, UpstreamError};
use cooper_core::revocation::{SessionId, SessionRef};
use cooper_core::token::{ApiToken, EnrollmentCode, TokenRejection};

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::jwt::{JwtAuthority, JwtError};
use crate::oidc::{OidcError, OidcVerifier, peek_issuer};

/// Why a request is not authenticated. The messages are the same whatever the reason a token
/// is unknown, so they do not help anyone guess.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this request needs an Authorization: Bearer header")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    #[error("the bearer token has been revoked")]
    Revoked,
    /// The session was signed out, or revoked by an admin.
    #[error("this session has ended (signed out or revoked); sign in again")]
    SessionRevoked,
    /// An enrollment code is good for enrolling an authenticator, and nowhere else.
    #[error("an enrollment code only enrolls an authenticator (POST /v1/totp/enrollment)")]
    EnrollmentOnly,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl From<JwtError> for AuthError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Invalid => Self::Invalid,
            JwtError::Expired => Self::Expired,
            JwtError::NotYetValid => Self::NotYetValid,
        }
    }
}

impl From<TokenRejection> for AuthError {
    fn from(e: TokenRejection) -> Self {
        match e {
            TokenRejection::Invalid => Self::Invalid,
            TokenRejection::Expired => Self::Expired,
            TokenRejection::Revoked => Self::Revoked,
        }
    }
}

pub struct Authenticator {
    pub jwt: Arc<JwtAuthority>,
    pub directory: Arc<dyn Directory>,
    pub clock: Arc<dyn Clock>,
    /// The configured identity providers, if any.
    pub oidc: Option<Arc<OidcVerifier>>,
}

/// Whether authentication reads a cooper session's revocations itself, or leaves them to the
/// use case (which reads them beside its decision's reads: one round trip less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocations {
    Check,
    LeftToTheDecision,
}

impl Authenticator {
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        self.authenticate_with(authorization, Revocations::Check)
            .await
    }

    async fn authenticate_with(
        &self,
        authorization: Option<&str>,
        revocations: Revocations,
    ) -> Result<Identity, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, bearer) = header.split_once(' ').ok_or(AuthError::Malformed)?;
        let bearer = bearer.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || bearer.is_empty() {
            return Err(AuthError::Malformed);
        }
        if EnrollmentCode::looks_like(bearer) {
            return self.enrollment_code(bearer).await;
        }
        if ApiToken::looks_like(bearer) {
            return self.api_token(bearer).await;
        }
        // A JWT: cooper's own, or an identity provider's, told apart by its (still unverified)
        // issuer; each is then verified by its own rules, with its own keys.
        match (&self.oidc, peek_issuer(bearer)) {
            (Some(oidc), Some(issuer)) if issuer != self.jwt.issuer() => {
                Ok(oidc.verify(bearer).await?)
            }
            _ => self.cooper_jwt(bearer, revocations).await,
        }
    }

    async fn api_token(&self, bearer: &str) -> Result<Identity, AuthError> {
        let presented = ApiToken::parse(bearer).ok_or(AuthError::Invalid)?;
        let record = self
            .directory
            .api_token(presented.id())
            .await?
            .ok_or(AuthError::Invalid)?;
        let user = record.verify(&presented, self.clock.now())?;
        let mut identity = Identity::new(user.clone(), AuthMethod::ApiToken(record.id.clone()));
        identity.hinted_groups = record.groups;
        Ok(identity)
    }

    async fn enrollment_code(&self, bearer: &str) -> Result<Identity, AuthError> {
        let presented = EnrollmentCode::parse(bearer).ok_or(AuthError::Invalid)?;
        let record = self
            .directory
            .enrollment_code(presented.id())
            .await?
            .ok_or(AuthError::Invalid)?;
        let user = record.verify(&presented, self.clock.now())?;
        Ok(Identity::new(
            user.clone(),
            AuthMethod::EnrollmentCode(record.id.clone()),
        ))
    }

    /// A cooper session token, and nothing else (the web console's cookie).
    pub async fn session(&self, token: &str) -> Result<Identity, AuthError> {
        let identity = self.cooper_jwt(token, Revocations::Check).await?;
        crate::metrics::note_user(&identity.user);
        Ok(identity)
    }

    /// A cooper session: signed by cooper, in date, and not ended (one key read: the person's
    /// record of ended sessions).
    async fn cooper_jwt(
        &self,
        bearer: &str,
        revocations: Revocations,
    ) -> Result<Identity, AuthError> {
        let claims = self.jwt.verify(bearer, self.clock.now())?;
        let user = UserName::parse(&claims.sub).map_err(|_| AuthError::Invalid)?;
        // A session that cannot be ended is not accepted: every session cooper signs has an id.
        let id = claims
            .sid
            .as_deref()
            .and_then(|s| SessionId::parse(s).ok())
            .ok_or(AuthError::Invalid)?;
        let time = |secs: i64| {
            time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| AuthError::Invalid)
        };
        let session = SessionRef {
            id,
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
        };
        if revocations == Revocations::Check
            && let Some(ended) = self.directory.session_revocations(&user).await?
            && ended.0.ends(&session)
        {
            return Err(AuthError::SessionRevoked);
        }
        let method = AuthMethod::Session { idp: claims.idp };
        let mut identity = Identity::new(user, method);
        let groups = |names: &[String]| {
            names
                .iter()
                .filter_map(|g| GroupName::parse(g).ok())
                .collect::<Vec<_>>()
        };
        identity.asserted_groups = groups(&claims.groups);
        identity.hinted_groups = groups(&claims.hint);
        identity.session = Some(session);
        Ok(identity)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e {
            AuthError::Missing => "unauthenticated",
            AuthError::Malformed => "invalid_authorization",
            AuthError::Invalid => "invalid_token",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::Revoked => "token_revoked",
            AuthError::SessionRevoked => "session_revoked",
            AuthError::EnrollmentOnly => "enrollment_code_only",
            AuthError::Oidc(OidcError::ProviderUnavailable(detail)) => {
                tracing::warn!(%detail, "identity provider unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity_provider_unavailable",
                    "the identity provider cannot be reached; retry shortly",
                );
            }
            AuthError::Oidc(ref o) => o.code(),
            AuthError::Upstream(u) => return u.into(),
        };
        Self::new(StatusCode::UNAUTHORIZED, code, e.to_string())
    }
}

async fn identify<S>(parts: &Parts, state: &S) -> Result<Identity, ApiError>
where
    Arc<Authenticator>: FromRef<S>,
{
    identify_with(parts, state, Revocations::Check).await
}

async fn identify_with<S>(
    parts: &Parts,
    state: &S,
    revocations: Revocations,
) -> Result<Identity, ApiError>
where
    Arc<Authenticator>: FromRef<S>,
{
    let authenticator = Arc::<Authenticator>::from_ref(state);
    let header = match parts.headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::from(AuthError::Malformed))?,
        ),
    };
    let identity = authenticator.authenticate_with(header, revocations).await?;
    tracing::Span::current().record("user", tracing::field::display(&identity.user));
    crate::metrics::note_user(&identity.user);
    Ok(identity)
}

/// The authenticated caller of a request (an extractor: a handler that takes it is
/// authenticated). An enrollment code does not authenticate anything but enrollment.
pub struct Authenticated(pub Identity);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = identify(parts, state).await?;
        if matches!(identity.method, AuthMethod::EnrollmentCode(_)) {
            return Err(AuthError::EnrollmentOnly.into());
        }
        Ok(Self(identity))
    }
}

/// The caller of a route whose use case decides through `Catalog::authorize` (issuance): as
/// `Authenticated`, except that a cooper session's revocations are read by that decision, side
/// by side with its other reads, rather than before it. For no other route.
pub struct Deciding(pub Identity);

impl<S> FromRequestParts<S> for Deciding
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = identify_with(parts, state, Revocations::LeftToTheDecision).await?;
        if matches!(identity.method, AuthMethod::EnrollmentCode(_)) {
            return Err(AuthError::EnrollmentOnly.into());
        }
        Ok(Self(identity))
    }
}

/// The caller of an enrollment route: authenticated as anywhere, or by an enrollment code.
pub struct Enrolling(pub Identity);

impl<S> FromRequestParts<S> for Enrolling
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(identify(parts, state).await?))
    }
}
