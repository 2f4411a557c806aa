//! cooper's own outbound HTTPS (identity providers' discovery documents, keys and token
//! endpoints; the AWS federation sign-in endpoint), through the AWS SDK's HTTP client: one
//! client and one TLS stack (rustls on aws-lc-rs, the system's trusted roots, the SDK's cipher
//! suites) for the SDK's calls and these alike, and no second HTTP client in a Lambda binary.

use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use http_body_util::{BodyExt, Limited};

/// The most a response body may hold: discovery documents, key sets, token and sign-in answers
/// are a few kilobytes; an endpoint answering more is not one cooper should trust.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Redirects followed for a GET (as many as a browser or reqwest would), never from https to
/// plain http.
const MAX_REDIRECTS: usize = 10;

/// Why a request got no complete answer. The messages never hold the URL: a sign-in request's
/// query carries credentials.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("the URL is not an http(s) URL")]
    InvalidUrl,
    #[error("the request could not be built: {0}")]
    Request(String),
    #[error("error sending request: {0}")]
    Send(String),
    #[error("error reading the response body: {0}")]
    Body(String),
    #[error("the response body is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("operation timed out")]
    Timeout,
    #[error("too many redirects, or a redirect from https to http")]
    Redirect,
}

/// An answer, read whole (up to [`MAX_RESPONSE_BYTES`]). Its body may be a secret (a sign-in
/// token, an ID token): `Debug` shows only its length.
pub struct Response {
    pub status: http::StatusCode,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// An HTTPS client whose every request (the redirects it follows and the reading of the
/// answer included) ends within `timeout`. Its connection pool and TLS configuration are made
/// on first use, not at start-up (a cold start that never signs anyone in does not load the
/// trusted roots for it).
pub struct HttpsClient {
    timeout: Duration,
    connector: OnceLock<SharedHttpConnector>,
}

/// The whole text of an error and its sources ("io error: connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

impl HttpsClient {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            connector: OnceLock::new(),
        }
    }

    fn connector(&self) -> &SharedHttpConnector {
        // The SDK's own default connector: hyper with rustls on aws-lc-rs and the native roots.
        self.connector.get_or_init(|| {
            SharedHttpConnector::new(
                Connector::builder()
                    .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                    .build(),
            )
        })
    }

    /// GETs `url`, following redirects.
    pub async fn get(&self, url: &str) -> Result<Response, HttpsError> {
        tokio::time::timeout(self.timeout, async {
            let mut url = parse(url)?;
            for _ in 0..=MAX_REDIRECTS {
                let request = http::Request::get(url.as_str())
                    .body(SdkBody::empty())
                    .map_err(|e| HttpsError::Request(e.to_string()))?;
                let response = self.send(request).await?;
                let location = response
                    .headers()
                    .get("location")
                    .map(|l| l.to_owned())
                    .filter(|_| matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308));
                let Some(location) = location else {
                    return read(response).await;
                };
                let next = redirected(&url, &location)?;
                url = next;
            }
            Err(HttpsError::Redirect)
        })
        .await
        .map_err(|_| HttpsError::Timeout)?
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, with HTTP Basic
    /// credentials when `basic` is given (already encoded as the caller's scheme asks).
    /// Redirects are not followed.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Response, HttpsError> {
        tokio::time::timeout(self.timeout, async {
            let url = parse(url)?;
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let mut request = http::Request::post(url.as_str())
                .header("content-type", "application/x-www-form-urlencoded");
            if let Some((user, password)) = basic {
                use base64::Engine;
                let credentials =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut value = http::HeaderValue::try_from(format!("Basic {credentials}"))
                    .map_err(|e| HttpsError::Request(e.to_string()))?;
                value.set_sensitive(true);
                request = request.header("authorization", value);
            }
            let request = request
                .body(SdkBody::from(body))
                .map_err(|e| HttpsError::Request(e.to_string()))?;
            read(self.send(request).await?).await
        })
        .await
        .map_err(|_| HttpsError::Timeout)?
    }

    async fn send(
        &self,
        request: http::Request<SdkBody>,
    ) -> Result<aws_smithy_runtime_api::http::Response<SdkBody>, HttpsError> {
        let request = HttpRequest::try_from(request).map_err(|e| HttpsError::Request(chain(&e)))?;
        self.connector()
            .call(request)
            .await
            .map_err(|e| HttpsError::Send(chain(&e)))
    }
}

/// Where a redirect from `from` to `location` goes: an http(s) URL, never from https to http.
fn redirected(from: &url::Url, location: &str) -> Result<url::Url, HttpsError> {
    let next = from
        .join(location.trim())
        .map_err(|_| HttpsError::Redirect)?;
    let downgrade = from.scheme() == "https" && next.scheme() != "https";
    if !matches!(next.scheme(), "http" | "https") || next.host().is_none() || downgrade {
        return Err(HttpsError::Redirect);
    }
    Ok(next)
}

fn parse(url: &str) -> Result<url::Url, HttpsError> {
    let url = url::Url::parse(url).map_err(|_| HttpsError::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(HttpsError::InvalidUrl);
    }
    Ok(url)
}

async fn read(
    response: aws_smithy_runtime_api::http::Response<SdkBody>,
) -> Result<Response, HttpsError> {
    let status = http::StatusCode::from_u16(response.status().as_u16())
        .map_err(|e| HttpsError::Body(e.to_string()))?;
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpsError::TooLarge
            } else {
                HttpsError::Body(chain(e.as_ref()))
            }
        })?
        .to_bytes()
        .to_vec();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection-at-a-time HTTP/1.1 server answering by path; keeps what it was sent.
    async fn server(answer: fn(&str, &str) -> Option<String>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let me = base.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let log = log.clone();
                let me = me.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = stream.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length: ")
                                        .map(str::to_owned)
                                })
                                .map_or(0, |l| l.trim().parse::<usize>().unwrap());
                            if body.len() >= length {
                                break;
                            }
                        }
                    }
                    let text = String::from_utf8_lossy(&request).to_string();
                    log.lock().unwrap().push(text.clone());
                    let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                    match answer(&path, &me) {
                        Some(response) => {
                            let _ = stream.write_all(response.as_bytes()).await;
                        }
                        // Never answers.
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (base, seen)
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn redirect(to: &str) -> String {
        format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
    }

    fn answer(path: &str, _me: &str) -> Option<String> {
        match path {
            "/doc" => Some(ok(r#"{"a":1}"#)),
            "/moved" => Some(redirect("/doc")),
            "/loop" => Some(redirect("/loop")),
            "/big" => Some(ok(&"x".repeat(MAX_RESPONSE_BYTES + 1))),
            "/token" => Some(ok(r#"{"id_token":"t"}"#)),
            "/refused" => {
                Some("HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}".to_owned())
            }
            _ => None,
        }
    }

    #[test]
    fn only_http_urls_with_a_host_are_requested() {
        assert!(parse("https://example.com/x").is_ok());
        assert!(parse("http://127.0.0.1:8080/x").is_ok());
        for bad in ["file:///etc/passwd", "ftp://example.com/", "not a url", ""] {
            assert!(matches!(parse(bad), Err(HttpsError::InvalidUrl)), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_get_reads_the_answer_and_follows_redirects() {
        let (base, _) = server(answer).await;
        let client = HttpsClient::new(Duration::from_secs(5));
        let response = client.get(&format!("{base}/doc")).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json::<serde_json::Value>().unwrap()["a"], 1);
        let response = client.get(&format!("{base}/moved")).await.unwrap();
        assert_eq!(response.body, br#"{"a":1}"#);
        assert!(matches!(
            client.get(&format!("{base}/loop")).await,
            Err(HttpsError::Redirect)
        ));
        let answer = client.get(&format!("{base}/refused")).await.unwrap();
        assert_eq!(answer.status, 400);
    }

    #[tokio::test]
    async fn an_answer_too_large_or_too_slow_is_an_error() {
        let (base, _) = server(answer).await;
        let client = HttpsClient::new(Duration::from_millis(500));
        assert!(matches!(
            client.get(&format!("{base}/big")).await,
            Err(HttpsError::TooLarge)
        ));
        let started = std::time::Instant::now();
        assert!(matches!(
            client.get(&format!("{base}/silent")).await,
            Err(HttpsError::Timeout)
        ));
        assert!(started.elapsed() < Duration::from_secs(3));
        let refused = client.get("http://127.0.0.1:1/doc").await.unwrap_err();
        assert!(matches!(refused, HttpsError::Send(_)), "{refused:?}");
        assert!(!refused.to_string().contains("127.0.0.1"), "{refused}");
    }

    #[test]
    fn a_redirect_goes_to_an_http_url_never_from_https_to_http() {
        let https = parse("https://example.com/a/b").unwrap();
        let http = parse("http://127.0.0.1:8080/a").unwrap();
        let to =
            |from: &url::Url, location: &str| redirected(from, location).map(|u| u.to_string());
        assert_eq!(to(&https, "c").unwrap(), "https://example.com/a/c");
        assert_eq!(to(&https, "/d").unwrap(), "https://example.com/d");
        assert_eq!(
            to(&https, "https://other.example/").unwrap(),
            "https://other.example/"
        );
        assert_eq!(
            to(&http, "https://example.com/").unwrap(),
            "https://example.com/"
        );
        for refused in [
            "http://example.com/",
            "file:///etc/passwd",
            "ftp://example.com/",
        ] {
            assert!(
                matches!(redirected(&https, refused), Err(HttpsError::Redirect)),
                "{refused}"
            );
        }
        let sent = parse("https://example.com/a").unwrap();
        assert!(redirected(&sent, "data:text/plain,x").is_err());
    }

    #[tokio::test]
    async fn a_form_is_posted_with_its_basic_credentials() {
        let (base, seen) = server(answer).await;
        let client = HttpsClient::new(Duration::from_secs(5));
        let response = client
            .post_form(
                &format!("{base}/token"),
                &[("code", "a b&c"), ("grant_type", "authorization_code")],
                Some(("id", "s%3Acret")),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let request = seen.lock().unwrap().pop().unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(request.starts_with("POST /token HTTP/1.1\r\n"), "{request}");
        assert!(
            lower.contains("content-type: application/x-www-form-urlencoded\r\n"),
            "{request}"
        );
        // base64("id:s%3Acret")
        assert!(
            lower.contains("authorization: basic awq6cyuzqwnyzxq=\r\n"),
            "{request}"
        );
        assert!(
            request.ends_with("\r\n\r\ncode=a+b%26c&grant_type=authorization_code"),
            "{request}"
        );
        assert!(lower.contains("host: 127.0.0.1:"), "{request}");
    }
}
