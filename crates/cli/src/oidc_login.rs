//! `cooper login --oidc`: an ID token from the identity provider, by the device authorization
//! grant (RFC 8628) where it offers one, else the authorization code flow with PKCE (RFC 7636)
//! and a loopback redirect (RFC 8252). The OAuth exchanges are the `oauth2` crate's, sent by the
//! CLI's own reqwest client (one HTTP and one TLS stack).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use cooper_core::clock::{Entropy, OsEntropy};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, DeviceAuthorizationUrl, DeviceCodeErrorResponseType, EndpointNotSet, EndpointSet,
    ErrorResponseType, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardDeviceAuthorizationResponse,
    StandardErrorResponse, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How long the code flow waits for the browser to come back.
const SIGN_IN_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct OidcArgs {
    /// Sign in with the identity provider.
    #[arg(long)]
    pub oidc: bool,
    /// The provider's issuer URL (default: the profile's `oidc_issuer`).
    #[arg(long, env = "COOPER_OIDC_ISSUER")]
    issuer: Option<String>,
    /// The client id cooper's CLI is registered under at the provider (default: the profile's).
    #[arg(long, env = "COOPER_OIDC_CLIENT_ID")]
    client_id: Option<String>,
    /// For providers that insist on a secret even for native apps.
    #[arg(long, env = "COOPER_OIDC_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// `device` or `code`; by default the device grant when the provider offers it.
    #[arg(long, value_parser = ["device", "code"])]
    flow: Option<String>,
    /// Print the URL to open instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// The scopes to ask for.
    #[arg(long, default_value = "openid email profile groups")]
    scopes: String,
}

pub(crate) fn random(len: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; len];
    OsEntropy.fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Waits (at most `SIGN_IN_WAIT`) for the one request that comes back to `listener` at
/// `/callback`, answers it with `page` of its query, and returns the query. `cooper login
/// --oidc` (the code flow) and `--saml` both end this way.
pub(crate) async fn one_callback(
    listener: tokio::net::TcpListener,
    page: fn(&HashMap<String, String>) -> &'static str,
) -> Result<HashMap<String, String>, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel::<HashMap<String, String>>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let answer = page(&q);
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(q);
                    }
                    answer
                }
            },
        ),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let query = tokio::time::timeout(SIGN_IN_WAIT, rx).await;
    server.abort();
    match query {
        Err(_elapsed) => Err(Error::SignInTimedOut),
        Ok(Err(_closed)) => Err(Error::Loopback(std::io::Error::other(
            "the listener stopped before the redirect came back",
        ))),
        Ok(Ok(query)) => Ok(query),
    }
}

pub(crate) fn show(args: &OidcArgs, url: &str, what: &str) {
    if args.no_browser || open::that_detached(url).is_err() {
        eprintln!("{what}: {url}");
    } else {
        eprintln!("{what} (opened in your browser): {url}");
    }
}

/// The ID token in the token endpoint's answer (OpenID Connect Core 3.1.3.3); never printed.
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
struct IdToken(String);

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdToken(redacted)")
    }
}

/// What OpenID Connect adds to OAuth's token answer.
#[derive(Debug, Deserialize, Serialize)]
struct OpenIdFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<IdToken>,
}

impl ExtraTokenFields for OpenIdFields {}

type TokenAnswer = StandardTokenResponse<OpenIdFields, BasicTokenType>;

/// An OAuth client of the provider with its token endpoint set (`Auth` and `Device` say whether
/// the authorization and device authorization endpoints are).
type OAuthClient<Auth = EndpointNotSet, Device = EndpointNotSet> = Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    Auth,
    Device,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The CLI's reqwest client as the `oauth2` crate's HTTP client, so that no second HTTP client
/// (nor a second TLS stack) comes with it.
struct ProviderHttp(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let status = response.status();
            let version = response.version();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut answer = HttpResponse::new(body.to_vec());
            *answer.status_mut() = status;
            *answer.version_mut() = version;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

/// The parts of the provider's discovery document the sign-in needs.
#[derive(Deserialize)]
struct Discovery {
    token_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
}

async fn discover(http: &ProviderHttp, issuer: &str) -> Result<Discovery, Error> {
    let response = http
        .0
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .map_err(Error::ProviderUnreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Discovery {
            issuer: issuer.to_owned(),
            reason: format!("HTTP {status}"),
        });
    }
    let body = response.bytes().await.map_err(Error::ProviderUnreachable)?;
    serde_json::from_slice(&body).map_err(|source| Error::DiscoveryJson {
        issuer: issuer.to_owned(),
        source,
    })
}

fn url<T>(
    what: &'static str,
    url: &str,
    parse: impl FnOnce(String) -> Result<T, oauth2::url::ParseError>,
) -> Result<T, Error> {
    parse(url.to_owned()).map_err(|source| Error::BadUrl { what, source })
}

/// Signs in at the provider and returns its ID token.
pub async fn id_token(
    args: &OidcArgs,
    profile: &crate::client::Profile,
) -> Result<SecretString, Error> {
    let with_profile = OidcArgs {
        oidc: true,
        issuer: args.issuer.clone().or(profile.oidc_issuer.clone()),
        client_id: args.client_id.clone().or(profile.oidc_client_id.clone()),
        client_secret: args.client_secret.clone(),
        flow: args.flow.clone(),
        no_browser: args.no_browser,
        scopes: args.scopes.clone(),
    };
    let args = &with_profile;
    let client_id = args.client_id.as_deref().ok_or(Error::NoClientId)?;
    let issuer = args
        .issuer
        .as_deref()
        .ok_or(Error::NoIssuer)?
        .trim_end_matches('/');
    // Redirects are not followed, as the oauth2 crate advises: an endpoint that redirects could
    // send the code or the device code elsewhere.
    let http = ProviderHttp(
        reqwest::Client::builder()
            .user_agent(concat!("cooper-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::HttpClient)?,
    );
    let discovery = discover(&http, issuer).await?;
    let token_endpoint = discovery
        .token_endpoint
        .as_deref()
        .ok_or_else(|| Error::Discovery {
            issuer: issuer.to_owned(),
            reason: "it names no token endpoint".into(),
        })?;
    let mut client: OAuthClient = Client::new(ClientId::new(client_id.to_owned()))
        // As the flows did before: the secret, if any, in the body (client_secret_post).
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(url("token endpoint", token_endpoint, TokenUrl::new)?);
    if let Some(secret) = &args.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    let device = discovery.device_authorization_endpoint.as_deref();
    match (args.flow.as_deref(), device) {
        (Some("device"), None) => Err(Error::NoDeviceFlow),
        (Some("device") | None, Some(device)) => {
            let client = client.set_device_authorization_url(url(
                "device authorization endpoint",
                device,
                DeviceAuthorizationUrl::new,
            )?);
            device_flow(args, &http, &client).await
        }
        _ => {
            let authorize =
                discovery
                    .authorization_endpoint
                    .as_deref()
                    .ok_or_else(|| Error::Discovery {
                        issuer: issuer.to_owned(),
                        reason: "it names no authorization endpoint".into(),
                    })?;
            let client =
                client.set_auth_uri(url("authorization endpoint", authorize, AuthUrl::new)?);
            code_flow(args, &http, client).await
        }
    }
}

fn scopes(args: &OidcArgs) -> impl Iterator<Item = Scope> + '_ {
    args.scopes
        .split_whitespace()
        .map(|scope| Scope::new(scope.to_owned()))
}

/// The provider's refusal, or why its answer could not be had. A body that does not parse is
/// not kept: it may hold tokens.
fn provider_error<T>(error: RequestTokenError<reqwest::Error, StandardErrorResponse<T>>) -> Error
where
    T: ErrorResponseType + fmt::Display + 'static,
{
    match error {
        RequestTokenError::ServerResponse(answer) => Error::ProviderRefused {
            error: answer.error().to_string(),
            description: answer.error_description().cloned(),
        },
        RequestTokenError::Request(e) => Error::ProviderUnreachable(e),
        RequestTokenError::Parse(e, _body) => {
            let inner = e.inner();
            // serde_json's other messages may quote a value; a missing field's names the field.
            let why = if inner.is_data() && inner.to_string().starts_with("missing field") {
                inner.to_string()
            } else {
                format!(
                    "it does not parse at `{}` (line {}, column {})",
                    e.path(),
                    inner.line(),
                    inner.column()
                )
            };
            Error::ProviderAnswer(why)
        }
        RequestTokenError::Other(why) => Error::ProviderAnswer(why),
    }
}

fn id_token_of(answer: TokenAnswer) -> Result<SecretString, Error> {
    answer
        .extra_fields()
        .id_token
        .as_ref()
        .map(|token| SecretString::from(token.0.clone()))
        .ok_or(Error::NoIdToken)
}

async fn device_flow(
    args: &OidcArgs,
    http: &ProviderHttp,
    client: &OAuthClient<EndpointNotSet, EndpointSet>,
) -> Result<SecretString, Error> {
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(args))
        .request_async(http)
        .await
        .map_err(provider_error)?;
    eprintln!("Your code: {}", details.user_code().secret());
    let url = details.verification_uri_complete().map_or_else(
        || details.verification_uri().to_string(),
        |complete| complete.secret().clone(),
    );
    show(args, &url, "Sign in at");
    // Polls at the provider's interval (slower when it says `slow_down`) until it expires.
    let answer = client
        .exchange_device_access_token(&details)
        .request_async(http, tokio::time::sleep, None)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(answer)
                if matches!(answer.error(), DeviceCodeErrorResponseType::ExpiredToken) =>
            {
                Error::SignInTimedOut
            }
            other => provider_error(other),
        })?;
    id_token_of(answer)
}

async fn code_flow(
    args: &OidcArgs,
    http: &ProviderHttp,
    client: OAuthClient<EndpointSet, EndpointNotSet>,
) -> Result<SecretString, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Loopback)?;
    let port = listener.local_addr().map_err(Error::Loopback)?.port();
    let client = client.set_redirect_uri(url(
        "loopback redirect",
        &format!("http://127.0.0.1:{port}/callback"),
        RedirectUrl::new,
    )?);
    // The verifier and the state come from the injected entropy source.
    let verifier = PkceCodeVerifier::new(random(32)?);
    let state = CsrfToken::new(random(16)?);
    // The nonce ties the ID token to this sign-in: a token injected into the redirect, or
    // replayed from another sign-in, does not carry it (OpenID Connect Core 3.1.2.1).
    let nonce = random(16)?;
    let (url, state) = client
        .authorize_url(|| state)
        .add_extra_param("nonce", nonce.clone())
        .add_scopes(scopes(args))
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
        .url();
    show(args, url.as_str(), "Sign in at");

    // One request comes back to the loopback address: the provider's redirect with the code.
    let query = one_callback(listener, |q| {
        if q.contains_key("error") {
            "The sign-in was refused: the terminal says why."
        } else {
            "Signed in: you can close this window and return to the terminal."
        }
    })
    .await?;
    if let Some(error) = query.get("error") {
        return Err(Error::ProviderRefused {
            error: error.clone(),
            description: query.get("error_description").cloned(),
        });
    }
    if query.get("state") != Some(state.secret()) {
        return Err(Error::StateMismatch);
    }
    let code = query.get("code").ok_or(Error::NoCode)?;
    let answer = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .map_err(provider_error)?;
    let token = id_token_of(answer)?;
    if nonce_of(token.expose_secret()).as_deref() != Some(nonce.as_str()) {
        return Err(Error::NonceMismatch);
    }
    Ok(token)
}

/// The `nonce` claim of an ID token. Only read, not verified: cooper verifies the token's
/// signature when it is presented; here the point is that it was minted for this sign-in.
fn nonce_of(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn the_nonce_is_read_from_the_id_tokens_claims() {
        assert_eq!(
            nonce_of(&token(r#"{"sub":"a","nonce":"n-1"}"#)).as_deref(),
            Some("n-1")
        );
        // A token without one, or not a JWT at all, has none: the sign-in is refused.
        assert_eq!(nonce_of(&token(r#"{"sub":"a"}"#)), None);
        assert_eq!(nonce_of(&token(r#"{"nonce":7}"#)), None);
        assert_eq!(nonce_of("not-a-jwt"), None);
        assert_eq!(nonce_of("a.%%%.c"), None);
    }
}
