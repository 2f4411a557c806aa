//! Signing in with the company's identity provider: OpenID Connect ID tokens, checked as RFC 8725
//! and OpenID Connect Core ask. Provider metadata from its discovery document and keys from its
//! JWKS, both fetched on first use (never at start-up) and cached; an unknown `kid` refreshes the
//! keys, at most once per interval, so a flood of bogus `kid`s cannot hammer the provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cooper_aws::https::HttpsClient;
use cooper_aws::ssm::{Param, Secrets};
use cooper_core::access::{AuthMethod, Identity};
use cooper_core::clock::Clock;
use cooper_core::names::{GroupName, UserName};
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;
/// Most groups taken from one token (a bound on the grant lookups a request can cause).
pub const MAX_GROUPS: usize = 100;
/// Keys are refreshed at least this often, so a key the provider withdrew stops working.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_user_claim() -> String {
    "email".into()
}
fn default_refresh() -> u64 {
    30
}

/// One identity provider, as configured (`COOPER_OIDC_PROVIDERS`, a JSON list of these).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Exactly the `iss` its tokens carry (`https://accounts.google.com`).
    pub issuer: String,
    /// The client ids cooper accepts as `aud`.
    pub audiences: Vec<String>,
    /// Asymmetric algorithms only (RS*, PS*, ES*, EdDSA).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The claim that names the cooper user (`email` by default; `sub`, `preferred_username`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// When set, only verified emails in these domains sign in.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Google Workspace: the `hd` claim must be this domain.
    #[serde(default)]
    pub hosted_domain: Option<String>,
    /// The least time between two key refreshes caused by unknown `kid`s.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_seconds: u64,
    /// The web console signs people in with this provider (the authorization code flow with
    /// PKCE, run by cooper) as this client: one of `audiences`, registered at the provider with
    /// `<console>/signin/oidc/callback` as its redirect URI.
    #[serde(default)]
    pub console_client_id: Option<String>,
    /// A confidential console client's secret: the SSM SecureString at this path under cooper's
    /// prefix (`oidc/google/client-secret`), read once at start-up by what serves the console
    /// (never in the configuration itself). Without it, the client is a public one.
    #[serde(default)]
    pub console_client_secret_parameter: Option<String>,
    /// What the sign-in button says ("Sign in with <name>"); the issuer's host by default.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("COOPER_OIDC_PROVIDERS is not a JSON list of providers: {0}")]
    Json(String),
    #[error("provider {issuer}: {reason}")]
    Invalid { issuer: String, reason: String },
}

fn parse_algorithm(name: &str) -> Option<Algorithm> {
    // Symmetric algorithms would let anyone holding the provider's public key (everyone) sign.
    match name {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "PS384" => Some(Algorithm::PS384),
        "PS512" => Some(Algorithm::PS512),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

pub fn parse_providers(json: &str) -> Result<Vec<ProviderConfig>, ConfigError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let providers: Vec<ProviderConfig> =
        serde_json::from_str(json).map_err(|e| ConfigError::Json(e.to_string()))?;
    for p in &providers {
        let invalid = |reason: &str| ConfigError::Invalid {
            issuer: p.issuer.clone(),
            reason: reason.to_owned(),
        };
        let local =
            p.issuer.starts_with("http://127.0.0.1") || p.issuer.starts_with("http://localhost");
        if !p.issuer.starts_with("https://") && !local {
            return Err(invalid("the issuer must be an https URL"));
        }
        if p.audiences.is_empty() {
            return Err(invalid("name at least one audience (client id)"));
        }
        if p.console_client_id
            .as_ref()
            .is_some_and(|c| !p.audiences.contains(c))
        {
            return Err(invalid("console_client_id must be one of the audiences"));
        }
        if let Some(path) = &p.console_client_secret_parameter {
            let ok = p.console_client_id.is_some()
                && !path.is_empty()
                && path.len() <= 200
                && !path.starts_with('/')
                && !path
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
            if !ok {
                return Err(invalid(
                    "console_client_secret_parameter must be a path under cooper's SSM prefix (oidc/NAME/client-secret), with a console_client_id",
                ));
            }
        }
        if p.algorithms.is_empty() || p.algorithms.iter().any(|a| parse_algorithm(a).is_none()) {
            return Err(invalid(
                "algorithms must be asymmetric: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
            ));
        }
    }
    Ok(providers)
}

/// Whether `email` is in one of `domains` (any, when there are none): an identity provider's
/// `email_domains`, OIDC's and SAML's alike.
pub(crate) fn in_domains(email: &str, domains: &[String]) -> bool {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    domains.is_empty() || domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// Why an identity provider's token was refused (each is a 401 with its own code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer is not a configured identity provider")]
    UnknownIssuer,
    #[error("the token's algorithm is not allowed for its provider")]
    InvalidAlgorithm,
    #[error("the token is signed with a key its provider does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    InvalidSignature,
    #[error("the token is not meant for cooper (audience)")]
    InvalidAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token lacks a claim cooper needs: {0}")]
    MissingClaim(String),
    #[error("the email is not verified by the identity provider")]
    EmailNotVerified,
    #[error("this email domain may not sign in")]
    EmailDomainNotAllowed,
    #[error("the user claim is not a valid cooper user name")]
    InvalidUser,
    #[error(
        "the identity provider refused the sign-in code (used, expired or not issued to cooper)"
    )]
    CodeRefused,
    #[error("the identity provider cannot be reached: {0}")]
    ProviderUnavailable(String),
}

impl OidcError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "invalid_token",
            Self::UnknownIssuer => "unknown_issuer",
            Self::InvalidAlgorithm => "invalid_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidAudience => "invalid_audience",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::MissingClaim(_) => "missing_claim",
            Self::EmailNotVerified => "email_not_verified",
            Self::EmailDomainNotAllowed => "email_domain_not_allowed",
            Self::InvalidUser => "invalid_user",
            Self::CodeRefused => "invalid_grant",
            Self::ProviderUnavailable(_) => "identity_provider_unavailable",
        }
    }
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    fetched: Option<Instant>,
}

struct Provider {
    config: ProviderConfig,
    algorithms: Vec<Algorithm>,
    keys: RwLock<KeySet>,
    /// Serialises refreshes; holds when the last one was attempted.
    refresh: Mutex<Option<Instant>>,
    /// The discovery document, read once: its endpoints do not move while cooper runs.
    discovery: Mutex<Option<Arc<Discovery>>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    /// How the token endpoint takes a client's secret (RFC 8414; `client_secret_basic` when
    /// the provider does not say).
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// How a confidential client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
}

/// Where a provider's authorization code flow goes: its authorization and token endpoints, and
/// the console client's secret when it is a confidential one. (No `Debug`: it holds the secret.)
pub struct CodeFlow {
    pub issuer: String,
    pub client_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub client_secret: Option<(SecretString, ClientAuth)>,
}

/// A provider the web console offers: its place in the list, its label, its issuer.
pub struct ConsoleProvider {
    pub index: usize,
    pub name: String,
    pub issuer: String,
}

/// Verifies ID tokens of the configured providers.
pub struct OidcVerifier {
    providers: Vec<Arc<Provider>>,
    http: HttpsClient,
    clock: Arc<dyn Clock>,
    /// Confidential console clients' secrets, by provider index.
    client_secrets: HashMap<usize, SecretString>,
}

fn peek(token: &str) -> Result<(Value, Value), OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed);
    };
    let json = |part: &str| -> Result<Value, OidcError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| OidcError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)
    };
    Ok((json(header)?, json(payload)?))
}

/// The `nonce` of a JWT (read once its signature is verified).
pub fn nonce_of(token: &str) -> Option<String> {
    let (_, claims) = peek(token).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

/// The unverified `iss` of a JWT, to choose who verifies it.
pub fn peek_issuer(token: &str) -> Option<String> {
    let (_, claims) = peek(token).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

impl OidcVerifier {
    pub fn new(configs: Vec<ProviderConfig>, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        let http = HttpsClient::new(Duration::from_secs(5));
        let providers = configs
            .into_iter()
            .map(|config| {
                let algorithms = config
                    .algorithms
                    .iter()
                    .filter_map(|a| parse_algorithm(a))
                    .collect();
                Arc::new(Provider {
                    config,
                    algorithms,
                    keys: RwLock::default(),
                    refresh: Mutex::default(),
                    discovery: Mutex::default(),
                })
            })
            .collect();
        Ok(Self {
            providers,
            http,
            clock,
            client_secrets: HashMap::new(),
        })
    }

    /// The SSM parameters holding the console clients' secrets (for the hosts that serve the
    /// console's sign-in to load at start-up).
    pub fn secret_params(configs: &[ProviderConfig]) -> Vec<Param> {
        configs
            .iter()
            .filter_map(|c| c.console_client_secret_parameter.clone())
            .map(Param::Named)
            .collect()
    }

    /// Takes the console clients' secrets from what was loaded. A host that does not serve
    /// the console's sign-in loads none, and runs no code flow.
    pub fn with_client_secrets(mut self, secrets: &mut Secrets) -> Self {
        for (index, provider) in self.providers.iter().enumerate() {
            if let Some(path) = &provider.config.console_client_secret_parameter
                && let Some(secret) = secrets.take(Param::Named(path.clone()))
            {
                self.client_secrets.insert(index, secret);
            }
        }
        self
    }

    /// The providers the web console offers a sign-in button for.
    pub fn console_providers(&self) -> Vec<ConsoleProvider> {
        self.providers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.config.console_client_id.is_some())
            .map(|(index, p)| ConsoleProvider {
                index,
                name: p.config.name.clone().unwrap_or_else(|| {
                    p.config
                        .issuer
                        .split("://")
                        .nth(1)
                        .unwrap_or(&p.config.issuer)
                        .trim_end_matches('/')
                        .to_owned()
                }),
                issuer: p.config.issuer.clone(),
            })
            .collect()
    }

    /// The code flow of the console provider at `index`, from its discovery document.
    pub async fn code_flow(&self, index: usize) -> Result<CodeFlow, OidcError> {
        let provider = self.providers.get(index).ok_or(OidcError::UnknownIssuer)?;
        let client_id = provider
            .config
            .console_client_id
            .clone()
            .ok_or(OidcError::UnknownIssuer)?;
        let discovery = self.discovery(provider).await?;
        let unavailable = || OidcError::ProviderUnavailable("the provider has no code flow".into());
        let client_secret = match (
            &provider.config.console_client_secret_parameter,
            self.client_secrets.get(&index),
        ) {
            (None, _) => None,
            (Some(_), Some(secret)) => {
                let methods = discovery.token_endpoint_auth_methods_supported.as_deref();
                let auth = match methods {
                    Some(m) if !m.iter().any(|x| x == "client_secret_basic") => {
                        if m.iter().any(|x| x == "client_secret_post") {
                            ClientAuth::Post
                        } else {
                            return Err(OidcError::ProviderUnavailable(
                                "the token endpoint takes no client secret (client_secret_basic or client_secret_post)".into(),
                            ));
                        }
                    }
                    _ => ClientAuth::Basic,
                };
                Some((secret.clone(), auth))
            }
            // Configured but not loaded: this host does not serve the console's sign-in.
            (Some(_), None) => {
                return Err(OidcError::ProviderUnavailable(
                    "the console client's secret was not loaded here".into(),
                ));
            }
        };
        Ok(CodeFlow {
            issuer: provider.config.issuer.clone(),
            client_id,
            authorization_endpoint: discovery
                .authorization_endpoint
                .clone()
                .ok_or_else(unavailable)?,
            token_endpoint: discovery.token_endpoint.clone().ok_or_else(unavailable)?,
            client_secret,
        })
    }

    /// Redeems an authorization code (with its PKCE verifier) for the provider's ID token.
    pub async fn redeem(
        &self,
        flow: &CodeFlow,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        #[derive(Deserialize)]
        struct Tokens {
            id_token: String,
        }
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", flow.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        // RFC 6749 2.3.1: each part form-encoded before it goes into Basic.
        let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut basic = None;
        match &flow.client_secret {
            None => {}
            Some((secret, ClientAuth::Post)) => {
                form.push(("client_secret", secret.expose_secret()))
            }
            Some((secret, ClientAuth::Basic)) => {
                basic = Some((encode(&flow.client_id), encode(secret.expose_secret())));
            }
        }
        let response = self
            .http
            .post_form(
                &flow.token_endpoint,
                &form,
                basic
                    .as_ref()
                    .map(|(id, secret)| (id.as_str(), secret.as_str())),
            )
            .await
            .map_err(|e| OidcError::ProviderUnavailable(e.to_string()))?;
        if response.status.is_client_error() {
            // RFC 6749 5.2: `invalid_grant` is the code (used, expired, not ours): a refusal.
            // Anything else (`invalid_client`, `unauthorized_client`, ...) is cooper's client
            // registration at fault, which no retry of the person's fixes: say so.
            #[derive(Deserialize)]
            struct Refusal {
                error: String,
            }
            let status = response.status;
            return Err(match response.json::<Refusal>() {
                Ok(refusal) if refusal.error == "invalid_grant" => OidcError::CodeRefused,
                Ok(refusal) => OidcError::ProviderUnavailable(format!(
                    "the token endpoint refused cooper's client: {}",
                    refusal.error.chars().take(64).collect::<String>()
                )),
                Err(_) => OidcError::ProviderUnavailable(format!(
                    "the token endpoint answered HTTP {status}"
                )),
            });
        }
        if !response.status.is_success() {
            return Err(OidcError::ProviderUnavailable(format!(
                "the token endpoint answered HTTP {}",
                response.status
            )));
        }
        let tokens: Tokens = response.json().map_err(|e| {
            OidcError::ProviderUnavailable(format!("error decoding response body: {e}"))
        })?;
        Ok(tokens.id_token)
    }

    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|p| p.config.issuer.as_str())
    }

    pub fn knows(&self, issuer: &str) -> bool {
        self.providers.iter().any(|p| p.config.issuer == issuer)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .await
            .map_err(|e| OidcError::ProviderUnavailable(format!("{url}: {e}")))?;
        if !response.status.is_success() {
            return Err(OidcError::ProviderUnavailable(format!(
                "{url} answered HTTP {}",
                response.status
            )));
        }
        response.json().map_err(|e| {
            OidcError::ProviderUnavailable(format!("{url}: error decoding response body: {e}"))
        })
    }

    /// The provider's discovery document, fetched on first use and kept (a failed fetch is not
    /// kept: the next sign-in tries again).
    async fn discovery(&self, provider: &Provider) -> Result<Arc<Discovery>, OidcError> {
        let mut cached = provider.discovery.lock().await;
        if let Some(discovery) = cached.as_ref() {
            return Ok(discovery.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            provider.config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url).await?;
        // OpenID Connect Discovery 4.3: the document must name the same issuer.
        if discovery.issuer != provider.config.issuer {
            return Err(OidcError::ProviderUnavailable(
                "the discovery document names another issuer".into(),
            ));
        }
        let discovery = Arc::new(discovery);
        *cached = Some(discovery.clone());
        Ok(discovery)
    }

    /// Refetches the provider's keys, unless that was done less than its interval ago.
    async fn refresh(&self, provider: &Provider) -> Result<(), OidcError> {
        let mut last = provider.refresh.lock().await;
        let interval = Duration::from_secs(provider.config.jwks_refresh_seconds);
        if last.is_some_and(|at| at.elapsed() < interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks_uri = self.discovery(provider).await?.jwks_uri.clone();
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let usable_for_signatures =
                !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
            let (Some(kid), true) = (jwk.common.key_id.clone(), usable_for_signatures) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                let alg = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| parse_algorithm(&a.to_string()));
                keys.insert(kid, (key, alg));
            }
        }
        tracing::info!(issuer = %provider.config.issuer, keys = keys.len(), "identity provider keys fetched");
        *provider.keys.write().await = KeySet {
            keys,
            fetched: Some(Instant::now()),
        };
        Ok(())
    }

    async fn key(
        &self,
        provider: &Provider,
        kid: &str,
    ) -> Result<(DecodingKey, Option<Algorithm>), OidcError> {
        {
            let keys = provider.keys.read().await;
            let fresh = keys.fetched.is_some_and(|at| at.elapsed() < KEYS_MAX_AGE);
            if let (Some(found), true) = (keys.keys.get(kid), fresh) {
                return Ok(found.clone());
            }
        }
        self.refresh(provider).await?;
        provider
            .keys
            .read()
            .await
            .keys
            .get(kid)
            .cloned()
            .ok_or(OidcError::UnknownKey)
    }

    /// Verifies an ID token and returns who it names, with the groups it asserts.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let (header, peeked) = peek(token)?;
        let issuer = peeked
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(OidcError::UnknownIssuer)?;
        let provider = self
            .providers
            .iter()
            .find(|p| p.config.issuer == issuer)
            .ok_or(OidcError::UnknownIssuer)?;
        let config = &provider.config;

        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(parse_algorithm)
            .filter(|a| provider.algorithms.contains(a))
            .ok_or(OidcError::InvalidAlgorithm)?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(OidcError::UnknownKey)?;
        let (key, key_alg) = self.key(provider, kid).await?;
        if key_alg.is_some_and(|k| k != alg) {
            return Err(OidcError::InvalidAlgorithm);
        }

        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims: Value = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                // The header and payload were decoded above: a base64 error is the signature's.
                ErrorKind::InvalidSignature | ErrorKind::Base64(_) => OidcError::InvalidSignature,
                ErrorKind::InvalidAudience => OidcError::InvalidAudience,
                ErrorKind::InvalidIssuer => OidcError::UnknownIssuer,
                ErrorKind::InvalidAlgorithm => OidcError::InvalidAlgorithm,
                ErrorKind::MissingRequiredClaim(c) => OidcError::MissingClaim(c.clone()),
                _ => OidcError::Malformed,
            })?
            .claims;

        let now = self.clock.now().unix_timestamp();
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        let exp = time("exp").ok_or_else(|| OidcError::MissingClaim("exp".into()))?;
        if exp + LEEWAY_SECONDS <= now {
            return Err(OidcError::Expired);
        }
        if time("nbf").is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
            return Err(OidcError::NotYetValid);
        }
        let iat = time("iat").ok_or_else(|| OidcError::MissingClaim("iat".into()))?;
        if iat - LEEWAY_SECONDS > now {
            return Err(OidcError::NotYetValid);
        }
        // Several audiences: the authorized party must be one of ours (OpenID Connect Core 3.1.3.7).
        if claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1)
        {
            let azp = claims
                .get("azp")
                .and_then(Value::as_str)
                .ok_or(OidcError::InvalidAudience)?;
            if !config.audiences.iter().any(|a| a == azp) {
                return Err(OidcError::InvalidAudience);
            }
        }

        let user = claims
            .get(&config.user_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::MissingClaim(config.user_claim.clone()))?;
        let email_used = config.user_claim == "email" || !config.email_domains.is_empty();
        if email_used {
            if claims.get("email_verified").and_then(Value::as_bool) != Some(true) {
                return Err(OidcError::EmailNotVerified);
            }
            let email = claims
                .get("email")
                .and_then(Value::as_str)
                .ok_or_else(|| OidcError::MissingClaim("email".into()))?;
            if !in_domains(email, &config.email_domains) {
                return Err(OidcError::EmailDomainNotAllowed);
            }
        }
        if let Some(hd) = &config.hosted_domain
            && claims.get("hd").and_then(Value::as_str) != Some(hd.as_str())
        {
            return Err(OidcError::EmailDomainNotAllowed);
        }
        let user = UserName::parse(user).map_err(|_| OidcError::InvalidUser)?;

        let groups: Vec<GroupName> = match claims.get(&config.groups_claim) {
            Some(Value::Array(values)) => values
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|g| GroupName::parse(g).ok())
                .take(MAX_GROUPS)
                .collect(),
            _ => Vec::new(),
        };
        let mut identity = Identity::new(user, AuthMethod::IdToken(config.issuer.clone()));
        identity.asserted_groups = groups;
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_client_must_be_one_of_the_audiences() {
        let config = |client: &str| {
            format!(
                r#"[{{"issuer": "https://idp.example.com", "audiences": ["cli"], "console_client_id": "{client}"}}]"#
            )
        };
        assert!(parse_providers(&config("cli")).is_ok());
        let err = parse_providers(&config("someone-else")).unwrap_err();
        assert!(err.to_string().contains("console_client_id"), "{err}");
    }

    /// A provider on loopback whose discovery document counts its readers and whose token
    /// endpoint refuses every code, as one does for a code already used.
    async fn refusing_provider() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::routing::{get, post};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let reads = Arc::new(AtomicUsize::new(0));
        let document = serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
        });
        let counter = reads.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let document = document.clone();
                    async move { axum::Json(document) }
                }),
            )
            .route(
                "/token",
                post(|body: String| async move {
                    // The misregistered client of the test below is refused as such.
                    let error = if body.contains("client_id=unknown") {
                        "invalid_client"
                    } else {
                        "invalid_grant"
                    };
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(serde_json::json!({ "error": error })),
                    )
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (issuer, reads)
    }

    #[tokio::test]
    async fn a_refused_code_is_its_own_refusal_and_discovery_is_read_once() {
        let (issuer, reads) = refusing_provider().await;
        let config = format!(
            r#"[{{"issuer": "{issuer}", "audiences": ["cli", "console"], "console_client_id": "console"}}]"#
        );
        let verifier = OidcVerifier::new(
            parse_providers(&config).unwrap(),
            Arc::new(cooper_core::clock::SystemClock),
        )
        .unwrap();
        let flow = verifier.code_flow(0).await.unwrap();
        assert_eq!(flow.token_endpoint, format!("{issuer}/token"));
        verifier.code_flow(0).await.unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        let refused = verifier
            .redeem(&flow, "used-code", "http://127.0.0.1/cb", "verifier")
            .await
            .unwrap_err();
        assert_eq!(refused, OidcError::CodeRefused);
        assert_eq!(refused.code(), "invalid_grant");
        let misregistered = CodeFlow {
            client_id: "unknown".into(),
            ..flow
        };
        let outage = verifier
            .redeem(&misregistered, "code", "http://127.0.0.1/cb", "verifier")
            .await
            .unwrap_err();
        assert!(
            matches!(&outage, OidcError::ProviderUnavailable(d) if d.contains("invalid_client")),
            "{outage:?}"
        );
        assert!(
            crate::error::CODES
                .iter()
                .any(|(_, _, codes)| codes.contains(&"invalid_grant"))
        );
    }

    /// A provider on loopback whose token endpoint answers, as the ID token, how the client
    /// proved itself: `basic:<id>:<secret>` (decoded from the header as sent), `post:<secret>`,
    /// or `none`. Its discovery document lists `methods` as the ones it takes, if given.
    async fn telling_provider(methods: Option<&[&str]>) -> String {
        use axum::routing::{get, post};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mut document = serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
        });
        if let Some(m) = methods {
            document["token_endpoint_auth_methods_supported"] = serde_json::json!(m);
        }
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let document = document.clone();
                    async move { axum::Json(document) }
                }),
            )
            .route(
                "/token",
                post(|headers: axum::http::HeaderMap, body: String| async move {
                    let basic = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Basic "))
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    let posted = form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "client_secret")
                        .map(|(_, v)| v.into_owned());
                    let how = match (basic, posted) {
                        (Some(b), None) => format!("basic:{b}"),
                        (None, Some(p)) => format!("post:{p}"),
                        (None, None) => "none".to_owned(),
                        (Some(_), Some(_)) => "both".to_owned(),
                    };
                    axum::Json(serde_json::json!({ "id_token": how }))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        issuer
    }

    fn confidential(issuer: &str) -> Vec<ProviderConfig> {
        parse_providers(&format!(
            r#"[{{"issuer": "{issuer}", "audiences": ["console"], "console_client_id": "console",
                 "console_client_secret_parameter": "oidc/test/client-secret"}}]"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_confidential_client_sends_its_secret_as_the_provider_takes_it() {
        let secret = || {
            Secrets::of([(
                Param::Named("oidc/test/client-secret".into()),
                SecretString::from("s3cr+t:/x"),
            )])
        };
        let redeem = |verifier: OidcVerifier| async move {
            let flow = verifier.code_flow(0).await.unwrap();
            verifier
                .redeem(&flow, "code", "http://127.0.0.1/cb", "verifier")
                .await
                .unwrap()
        };
        // HTTP Basic by default, each part form-encoded first (RFC 6749 2.3.1).
        let issuer = telling_provider(None).await;
        let configs = confidential(&issuer);
        assert_eq!(
            OidcVerifier::secret_params(&configs),
            [Param::Named("oidc/test/client-secret".into())]
        );
        let clock = || Arc::new(cooper_core::clock::SystemClock);
        let verifier = OidcVerifier::new(configs, clock())
            .unwrap()
            .with_client_secrets(&mut secret());
        assert_eq!(redeem(verifier).await, "basic:console:s3cr%2Bt%3A%2Fx");
        // In the form when that is all the provider takes.
        let issuer = telling_provider(Some(&["client_secret_post"])).await;
        let verifier = OidcVerifier::new(confidential(&issuer), clock())
            .unwrap()
            .with_client_secrets(&mut secret());
        assert_eq!(redeem(verifier).await, "post:s3cr+t:/x");
        // A public client sends none.
        let public = parse_providers(&format!(
            r#"[{{"issuer": "{issuer}", "audiences": ["console"], "console_client_id": "console"}}]"#
        ))
        .unwrap();
        let verifier = OidcVerifier::new(public, clock()).unwrap();
        assert_eq!(redeem(verifier).await, "none");
        // Configured but not loaded here: no code flow, rather than one without its secret.
        let verifier = OidcVerifier::new(confidential(&issuer), clock()).unwrap();
        assert!(matches!(
            verifier.code_flow(0).await,
            Err(OidcError::ProviderUnavailable(_))
        ));
    }

    #[test]
    fn a_secret_parameter_is_a_path_under_the_prefix_of_a_console_client() {
        let config = |extra: &str| {
            parse_providers(&format!(
                r#"[{{"issuer": "https://idp.example.com", "audiences": ["c"], {extra}}}]"#
            ))
        };
        let with_client = |path: &str| {
            config(&format!(
                r#""console_client_id": "c", "console_client_secret_parameter": "{path}""#
            ))
        };
        assert!(with_client("oidc/google/client-secret").is_ok());
        for bad in [
            "/cooper/oidc/x",
            "oidc/../jwt/signing-key",
            "oidc//x",
            "",
            "oidc/x y",
        ] {
            assert!(with_client(bad).is_err(), "{bad:?}");
        }
        assert!(config(r#""console_client_secret_parameter": "oidc/x""#).is_err());
    }

    #[test]
    fn the_nonce_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","nonce":"n-1"}"#);
        let token = format!("e30.{payload}.c2ln");
        assert_eq!(nonce_of(&token).as_deref(), Some("n-1"));
        assert_eq!(nonce_of("not.a"), None);
    }
}
