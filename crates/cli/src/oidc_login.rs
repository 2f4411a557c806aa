//! `cooper login --oidc`: an ID token from the identity provider, by the device authorization
//! grant (RFC 8628) where it offers one, else the authorization code flow with PKCE (RFC 7636)
//! and a loopback redirect (RFC 8252).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use cooper_core::clock::{Entropy, OsEntropy};
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;

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

fn random(len: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; len];
    OsEntropy.fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn show(args: &OidcArgs, url: &str, what: &str) {
    if args.no_browser || open::that_detached(url).is_err() {
        eprintln!("{what}: {url}");
    } else {
        eprintln!("{what} (opened in your browser): {url}");
    }
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
    if args.client_id.is_none() {
        return Err(Error::NoClientId);
    }
    let issuer = args
        .issuer
        .as_deref()
        .ok_or(Error::NoIssuer)?
        .trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(Error::HttpClient)?;
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(Error::ProviderUnreachable)?
        .json()
        .await
        .map_err(Error::ProviderUnreachable)?;
    let missing = |what: &str| Error::Discovery {
        issuer: issuer.to_owned(),
        reason: format!("it names no {what}"),
    };
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .ok_or_else(|| missing("token endpoint"))?;
    let device = discovery["device_authorization_endpoint"].as_str();
    match (args.flow.as_deref(), device) {
        (Some("device"), None) => Err(Error::NoDeviceFlow),
        (Some("device") | None, Some(device)) => {
            device_flow(args, &http, device, token_endpoint).await
        }
        _ => {
            let authorize = discovery["authorization_endpoint"]
                .as_str()
                .ok_or_else(|| missing("authorization endpoint"))?;
            code_flow(args, &http, authorize, token_endpoint).await
        }
    }
}

fn client_params<'a>(args: &'a OidcArgs, params: &mut Vec<(&'static str, &'a str)>) {
    if let Some(id) = &args.client_id {
        params.push(("client_id", id));
    }
    if let Some(secret) = &args.client_secret {
        params.push(("client_secret", secret));
    }
}

fn id_token_of(answer: &Value) -> Result<SecretString, Error> {
    answer["id_token"]
        .as_str()
        .map(|t| SecretString::from(t.to_owned()))
        .ok_or(Error::NoIdToken)
}

async fn device_flow(
    args: &OidcArgs,
    http: &reqwest::Client,
    device: &str,
    token_endpoint: &str,
) -> Result<SecretString, Error> {
    let mut params = vec![("scope", args.scopes.as_str())];
    client_params(args, &mut params);
    let start: Value = http
        .post(device)
        .form(&params)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(Error::ProviderUnreachable)?
        .json()
        .await
        .map_err(Error::ProviderUnreachable)?;
    let device_code = start["device_code"]
        .as_str()
        .ok_or_else(|| Error::ProviderAnswer("no device_code".into()))?
        .to_owned();
    let user_code = start["user_code"].as_str().unwrap_or_default();
    let url = start["verification_uri_complete"]
        .as_str()
        .or(start["verification_uri"].as_str())
        .unwrap_or_default();
    eprintln!("Your code: {user_code}");
    show(args, url, "Sign in at");
    let mut interval = start["interval"].as_u64().unwrap_or(5).max(1);
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600));
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if tokio::time::Instant::now() > deadline {
            return Err(Error::SignInTimedOut);
        }
        let mut params = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.as_str()),
        ];
        client_params(args, &mut params);
        let response = http
            .post(token_endpoint)
            .form(&params)
            .send()
            .await
            .map_err(Error::ProviderUnreachable)?;
        let success = response.status().is_success();
        let answer: Value = response.json().await.map_err(Error::ProviderUnreachable)?;
        if success {
            return id_token_of(&answer);
        }
        match answer["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some(other) => {
                return Err(Error::ProviderRefused {
                    error: other.to_owned(),
                    description: answer["error_description"].as_str().map(str::to_owned),
                });
            }
            None => {
                return Err(Error::ProviderAnswer(
                    "an error without an error code".into(),
                ));
            }
        }
    }
}

async fn code_flow(
    args: &OidcArgs,
    http: &reqwest::Client,
    authorize: &str,
    token_endpoint: &str,
) -> Result<SecretString, Error> {
    let verifier = random(32)?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random(16)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Loopback)?;
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().map_err(Error::Loopback)?.port()
    );
    let mut params = vec![
        ("response_type", "code"),
        ("scope", args.scopes.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(id) = &args.client_id {
        params.push(("client_id", id));
    }
    let url =
        reqwest::Url::parse_with_params(authorize, &params).map_err(|_| Error::Discovery {
            issuer: authorize.to_owned(),
            reason: "its authorization endpoint is not a URL".into(),
        })?;
    show(args, url.as_str(), "Sign in at");

    // One request comes back to the loopback address: the provider's redirect with the code.
    let (tx, rx) = tokio::sync::oneshot::channel::<std::collections::HashMap<String, String>>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let tx = tx.clone();
                async move {
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(q);
                    }
                    "Signed in: you can close this window and return to the terminal."
                }
            },
        ),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let query = tokio::time::timeout(Duration::from_secs(600), rx).await;
    server.abort();
    let query = match query {
        Err(_elapsed) => return Err(Error::SignInTimedOut),
        Ok(Err(_closed)) => {
            return Err(Error::Loopback(std::io::Error::other(
                "the listener stopped before the provider's redirect",
            )));
        }
        Ok(Ok(query)) => query,
    };
    if let Some(error) = query.get("error") {
        return Err(Error::ProviderRefused {
            error: error.clone(),
            description: query.get("error_description").cloned(),
        });
    }
    if query.get("state") != Some(&state) {
        return Err(Error::StateMismatch);
    }
    let code = query.get("code").ok_or(Error::NoCode)?;
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    client_params(args, &mut params);
    let response = http
        .post(token_endpoint)
        .form(&params)
        .send()
        .await
        .map_err(Error::ProviderUnreachable)?;
    let success = response.status().is_success();
    let answer: Value = response.json().await.map_err(Error::ProviderUnreachable)?;
    match answer["error"].as_str() {
        Some(error) if !success => Err(Error::ProviderRefused {
            error: error.to_owned(),
            description: answer["error_description"].as_str().map(str::to_owned),
        }),
        _ => id_token_of(&answer),
    }
}
