//! The AWS federation endpoint: `getSigninToken` for issued credentials, then the `login` URL.
//! The endpoint can be pointed elsewhere for tests (no emulator offers it); the login URL handed
//! out always names the partition's real sign-in host.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cooper_core::console::{ConsoleSignin, Destination};
use cooper_core::names::Partition;
use cooper_core::ports::{IssuedCredentials, Service, UpstreamError, UpstreamKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::https::{HttpsClient, HttpsError};

#[derive(Clone)]
pub struct FederationSignin {
    http: Arc<HttpsClient>,
    /// Instead of `https://<sign-in host>`, ask `<endpoint>/<sign-in host>` (tests).
    endpoint: Option<String>,
    /// Instead of `https://<sign-in host>` in the login link, `<login>/<sign-in host>` (a local
    /// run's stand-in page).
    login: Option<String>,
    issuer: String,
}

#[derive(Deserialize)]
struct SigninToken {
    #[serde(rename = "SigninToken")]
    signin_token: String,
}

fn failure(kind: UpstreamKind, message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(Service::Signin, kind, message)
}

impl FederationSignin {
    pub fn new(endpoint: Option<String>, issuer: impl Into<String>) -> Result<Self, UpstreamError> {
        Ok(Self {
            http: Arc::new(HttpsClient::new(Duration::from_secs(10))),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_owned()),
            login: None,
            issuer: issuer.into(),
        })
    }

    /// Points login links at `endpoint` (local runs: a stand-in page, as no emulator has one).
    pub fn with_login_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.login = endpoint.map(|e| e.trim_end_matches('/').to_owned());
        self
    }

    fn federation(&self, partition: Partition) -> String {
        let host = partition.signin_host();
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{host}/federation"),
            None => format!("https://{host}/federation"),
        }
    }
}

#[async_trait]
impl ConsoleSignin for FederationSignin {
    async fn login_url(
        &self,
        partition: Partition,
        credentials: &IssuedCredentials,
        session_seconds: Option<u32>,
        destination: &Destination,
    ) -> Result<SecretString, UpstreamError> {
        let session = SecretString::from(
            serde_json::json!({
                "sessionId": credentials.access_key_id,
                "sessionKey": credentials.secret_access_key.expose_secret(),
                "sessionToken": credentials.session_token.expose_secret(),
            })
            .to_string(),
        );
        let mut params: Vec<(&str, String)> = vec![
            ("Action", "getSigninToken".into()),
            ("Session", session.expose_secret().to_owned()),
        ];
        if let Some(seconds) = session_seconds {
            params.push(("SessionDuration", seconds.to_string()));
        }
        // The request URL holds the credentials: it is never logged, nor put in an error.
        let url = Url::parse_with_params(&self.federation(partition), &params).map_err(|_| {
            failure(
                UpstreamKind::Corrupt,
                "the federation endpoint is not a URL",
            )
        })?;
        let response = self.http.get(url.as_str()).await.map_err(|e| {
            let kind = match e {
                HttpsError::TooLarge => UpstreamKind::Corrupt,
                _ => UpstreamKind::Unavailable,
            };
            failure(kind, e.to_string())
        })?;
        let status = response.status;
        if !status.is_success() {
            let kind = if status.as_u16() == 429 {
                UpstreamKind::Throttled
            } else if status.is_server_error() {
                UpstreamKind::Unavailable
            } else {
                UpstreamKind::Refused
            };
            return Err(failure(
                kind,
                format!("getSigninToken answered HTTP {status}"),
            ));
        }
        let token: SigninToken = response.json().map_err(|e| {
            failure(
                UpstreamKind::Corrupt,
                format!("error decoding response body: {e}"),
            )
        })?;
        let host = partition.signin_host();
        let base = match &self.login {
            Some(endpoint) => format!("{endpoint}/{host}/federation"),
            None => format!("https://{host}/federation"),
        };
        let login = Url::parse_with_params(
            &base,
            [
                ("Action", "login"),
                ("Issuer", self.issuer.as_str()),
                ("Destination", destination.as_str()),
                ("SigninToken", token.signin_token.as_str()),
            ],
        )
        .map_err(|_| failure(UpstreamKind::Corrupt, "the login URL could not be built"))?;
        Ok(SecretString::from(login.to_string()))
    }
}
