//! A local credential endpoint in the ECS container-credentials protocol, which the AWS SDKs and
//! CLI ask on their own (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`): a long-running program keeps working past its first
//! credentials' expiry, and never holds static keys in its environment. Served on 127.0.0.1 on a
//! random port, for a random token compared in constant time; requests that look like a
//! browser's, or that name another host, are refused. Credentials are kept and fetched again
//! from cooper ahead of their expiry, so SDKs asking often (as they do near the end) stay local.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use crate::client::Client;
use crate::credentials::TargetArgs;
use crate::error::Error;

/// Fetched again when this much of the session is left, at most (a third of a short one).
const REFRESH_BEFORE_SECONDS: i64 = 16 * 60;

/// Credentials held, with when they end.
struct Held {
    credentials: Value,
    expires: OffsetDateTime,
    fetched: OffsetDateTime,
}

struct Endpoint {
    client: Client,
    target: TargetArgs,
    token: SecretString,
    port: u16,
    held: Mutex<Held>,
    /// Overrides when to fetch again (seconds before expiry).
    refresh_before: Option<i64>,
}

#[allow(clippy::disallowed_methods)] // the CLI compares expiries with the wall clock
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn held(credentials: Value) -> Result<Held, Error> {
    let expires = credentials["expiration"]
        .as_str()
        .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
        .ok_or(Error::IncompleteAnswer("expiration"))?;
    Ok(Held {
        credentials,
        expires,
        fetched: now(),
    })
}

/// When credentials fetched at `fetched` and ending at `expires` are due to be fetched again:
/// `refresh_before` seconds before they end if given, else 16 minutes before (SDKs start asking
/// again 15 minutes before), or after two thirds of a session shorter than 48 minutes.
fn due(
    fetched: OffsetDateTime,
    expires: OffsetDateTime,
    refresh_before: Option<i64>,
) -> OffsetDateTime {
    let lifetime = (expires - fetched).whole_seconds();
    let before = refresh_before.unwrap_or_else(|| REFRESH_BEFORE_SECONDS.min(lifetime / 3));
    expires - time::Duration::seconds(before)
}

impl Endpoint {
    fn due(&self, h: &Held) -> OffsetDateTime {
        due(h.fetched, h.expires, self.refresh_before)
    }

    /// The credentials to hand out now, fetched again first when due. A failed fetch keeps the
    /// ones held while they last (a target that needs a fresh code or a second person cannot
    /// be fetched again without a person: the program runs until they end).
    async fn current(&self) -> Result<Value, String> {
        let mut h = self.held.lock().await;
        if now() >= self.due(&h) {
            match crate::credentials::fetch(&self.client, &self.target, false).await {
                Ok(fresh) => match held(fresh) {
                    Ok(fresh) => {
                        eprintln!(
                            "cooper: new credentials for {} until {}",
                            self.target.target,
                            fresh.expires.format(&Rfc3339).unwrap_or_default()
                        );
                        *h = fresh;
                    }
                    Err(e) => eprintln!("cooper: {}", crate::error::report(&e)),
                },
                Err(e) => eprintln!(
                    "cooper: could not fetch new credentials for {}: {}",
                    self.target.target,
                    crate::error::report(&e)
                ),
            }
        }
        if now() >= h.expires {
            return Err(format!(
                "the credentials for {} have expired and new ones could not be fetched",
                self.target.target
            ));
        }
        let c = &h.credentials;
        let field = |name: &str| c[name].as_str().unwrap_or_default().to_owned();
        Ok(json!({
            "AccessKeyId": field("access_key_id"),
            "SecretAccessKey": field("secret_access_key"),
            "Token": field("session_token"),
            "Expiration": field("expiration"),
            "RoleArn": field("principal_arn"),
        }))
    }

    /// Loopback only, by this port: a name another host resolves to 127.0.0.1 (DNS rebinding)
    /// does not pass.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let port = self.port.to_string();
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }

    /// A browser's request: it sends an Origin or a Referer, and says Mozilla.
    fn from_a_browser(headers: &HeaderMap) -> bool {
        headers.contains_key(header::ORIGIN)
            || headers.contains_key(header::REFERER)
            || headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| ua.contains("Mozilla"))
    }

    fn token_matches(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let want = self.token.expose_secret().as_bytes();
        given.len() == want.len() && bool::from(given.ct_eq(want))
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"code": status.as_u16().to_string(), "message": message})),
    )
        .into_response()
}

async fn answer(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    if !endpoint.host_allowed(&headers) {
        return refusal(StatusCode::FORBIDDEN, "only a loopback Host is served");
    }
    if Endpoint::from_a_browser(&headers) {
        return refusal(StatusCode::FORBIDDEN, "browsers are not served");
    }
    if !endpoint.token_matches(&headers) {
        return refusal(
            StatusCode::FORBIDDEN,
            "the authorization token is missing or wrong",
        );
    }
    match endpoint.current().await {
        Ok(credentials) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(credentials),
        )
            .into_response(),
        Err(message) => refusal(StatusCode::SERVICE_UNAVAILABLE, &message),
    }
}

/// A running endpoint: what to hand a program so that its SDK asks here.
pub struct Running {
    pub url: String,
    pub token: SecretString,
}

impl Running {
    /// The variables a program needs (the token is a secret of this machine: it opens nothing
    /// but this endpoint, for as long as it runs).
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", self.url.clone()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                self.token.expose_secret().to_owned(),
            ),
        ]
    }
}

/// Fetches the first credentials (asking on the terminal for what the target needs), then
/// serves them on 127.0.0.1 until the runtime stops.
pub async fn start(
    client: Client,
    target: TargetArgs,
    refresh_before: Option<i64>,
) -> Result<Running, Error> {
    let first = held(crate::credentials::fetch(&client, &target, true).await?)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(Error::Endpoint)?;
    let port = listener.local_addr().map_err(Error::Endpoint)?.port();
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| Error::NoRandomness)?;
    let token = SecretString::from(hex_encode(&bytes));
    let endpoint = Arc::new(Endpoint {
        client,
        target,
        token: token.clone(),
        port,
        held: Mutex::new(first),
        refresh_before,
    });
    // Fetch again ahead of time, so that no SDK request waits on cooper.
    let ahead = endpoint.clone();
    tokio::spawn(async move {
        loop {
            let due = { ahead.due(&*ahead.held.lock().await) };
            let wait = (due - now()).whole_milliseconds().clamp(1_000, 3_600_000);
            tokio::time::sleep(std::time::Duration::from_millis(
                u64::try_from(wait).unwrap_or(1_000),
            ))
            .await;
            let _ = ahead.current().await;
        }
    });
    let app = axum::Router::new()
        .route("/credentials", axum::routing::get(answer))
        .with_state(endpoint);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("cooper: the credential endpoint stopped: {e}");
        }
    });
    Ok(Running {
        url: format!("http://127.0.0.1:{port}/credentials"),
        token,
    })
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::minutes(minutes)
    }

    #[test]
    fn credentials_are_fetched_again_before_sdks_start_asking() {
        // An hour: 16 minutes before the end, before the SDKs' 15.
        assert_eq!(due(at(0), at(60), None), at(44));
        // Fifteen minutes: after ten, not on every SDK call of the last fifteen.
        assert_eq!(due(at(0), at(15), None), at(10));
        // As asked.
        assert_eq!(due(at(0), at(15), Some(60)), at(14));
    }

    #[test]
    fn only_loopback_by_its_port_and_no_browser() {
        let mut headers = HeaderMap::new();
        assert!(!Endpoint::from_a_browser(&headers));
        headers.insert(header::USER_AGENT, "aws-sdk-rust/1.0".parse().unwrap());
        assert!(!Endpoint::from_a_browser(&headers));
        headers.insert(header::USER_AGENT, "Mozilla/5.0".parse().unwrap());
        assert!(Endpoint::from_a_browser(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(header::REFERER, "https://evil.example/".parse().unwrap());
        assert!(Endpoint::from_a_browser(&headers));
    }
}
