//! `cooper login --saml PROVIDER`: the SAML sign-in in the browser, handed back to the CLI as
//! `aws sso login` does. The CLI listens on a loopback port, opens cooper's SP-initiated login
//! with that port and the S256 challenge of a verifier only it holds; after the IdP, cooper's
//! assertion consumer sends the browser to the loopback address with a one-time code, which
//! the CLI redeems with the verifier (`POST /v1/sessions/saml`). No token is ever in a URL.

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::Error;
use crate::oidc_login::{OidcArgs, one_callback, random, show};

/// Signs in with SAML provider `provider`; returns the session cooper answers.
pub async fn session(client: &Client, provider: &str, args: &OidcArgs) -> Result<Value, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Loopback)?;
    let port = listener.local_addr().map_err(Error::Loopback)?.port();
    let verifier = PkceCodeVerifier::new(random(32)?);
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    let url = format!(
        "{}/v1/saml/{}/login?cli_port={port}&code_challenge={}",
        client.endpoint(),
        percent_encoding::utf8_percent_encode(provider, percent_encoding::NON_ALPHANUMERIC),
        challenge.as_str()
    );
    show(args, &url, "Sign in at");

    // One request comes back to the loopback address: cooper's redirect with the code.
    let query = one_callback(
        listener,
        |_| "Signed in: you can close this window and return to the terminal.",
    )
    .await?;
    let code = query.get("code").ok_or(Error::NoCode)?;
    client
        .anonymous(
            Method::POST,
            "/v1/sessions/saml",
            Some(&json!({"code": code, "code_verifier": verifier.secret()})),
        )
        .await
}
