//! A local stand-in for AWS's console sign-in (federation) endpoint, for local runs only
//! (`cooper serve` and the tests mount it; no Lambda does).
//!
//! moto has no sign-in endpoint, and no emulator offers one, so a local run could not show
//! where a console link leads. This answers `getSigninToken` (asking STS, that is moto, whose
//! credentials they are) and, for `login`, shows a page naming the role and account the link
//! would sign in to. It is never part of a deployment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::web::session::escape_html as escape;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cooper_aws::aws_sdk_sts;
use serde::Deserialize;

/// Where `cooper serve` mounts the stand-in.
pub const PATH: &str = "/_local/signin";

#[derive(Clone)]
pub struct StandIn {
    sdk: aws_config::SdkConfig,
    tokens: Arc<Mutex<HashMap<String, Signin>>>,
}

#[derive(Clone)]
struct Signin {
    arn: String,
    account: String,
    issued: std::time::Instant,
}

/// A sign-in token lasts 15 minutes, as AWS's do; older ones are dropped, so that links never
/// opened do not pile up in a long-running `cooper serve`.
const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[derive(Deserialize)]
struct SessionJson {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "sessionKey")]
    session_key: String,
    #[serde(rename = "sessionToken")]
    session_token: String,
}

impl StandIn {
    pub fn new(sdk: aws_config::SdkConfig) -> Self {
        Self {
            sdk,
            tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route(
                &format!("{PATH}/{{host}}/federation"),
                axum::routing::get(get_federation).post(post_federation),
            )
            .with_state(self)
    }

    /// Whose credentials a session is, as STS (moto) says.
    async fn caller(&self, session: &SessionJson) -> Option<Signin> {
        let credentials = aws_sdk_sts::config::Credentials::new(
            &session.session_id,
            &session.session_key,
            Some(session.session_token.clone()),
            None,
            "cooper-signin-stand-in",
        );
        let config = aws_sdk_sts::config::Builder::from(&self.sdk)
            .credentials_provider(credentials)
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .ok()?;
        Some(Signin {
            arn: out.arn?,
            account: out.account?,
            issued: std::time::Instant::now(),
        })
    }

    async fn answer(&self, host: &str, fields: HashMap<String, String>) -> Response {
        match fields.get("Action").map(String::as_str) {
            Some("getSigninToken") => {
                let Some(session) = fields
                    .get("Session")
                    .and_then(|s| serde_json::from_str::<SessionJson>(s).ok())
                else {
                    return (StatusCode::BAD_REQUEST, "Session is missing or not JSON")
                        .into_response();
                };
                let Some(signin) = self.caller(&session).await else {
                    return (StatusCode::FORBIDDEN, "STS does not know these credentials")
                        .into_response();
                };
                let token = uuid::Uuid::now_v7().simple().to_string();
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.retain(|_, s| s.issued.elapsed() < TOKEN_LIFETIME);
                    tokens.insert(token.clone(), signin);
                }
                axum::Json(serde_json::json!({ "SigninToken": token })).into_response()
            }
            Some("login") => {
                let signin = fields.get("SigninToken").and_then(|t| {
                    // Single use, as AWS's are.
                    self.tokens
                        .lock()
                        .ok()
                        .and_then(|mut tokens| tokens.remove(t))
                        .filter(|s| s.issued.elapsed() < TOKEN_LIFETIME)
                });
                let destination = fields.get("Destination").cloned().unwrap_or_default();
                page(host, signin.as_ref(), &destination)
            }
            _ => (
                StatusCode::BAD_REQUEST,
                "Action must be getSigninToken or login",
            )
                .into_response(),
        }
    }
}

async fn get_federation(
    State(stand_in): State<StandIn>,
    Path(host): Path<String>,
    Query(fields): Query<HashMap<String, String>>,
) -> Response {
    stand_in.answer(&host, fields).await
}

async fn post_federation(
    State(stand_in): State<StandIn>,
    Path(host): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "post a form").into_response();
    }
    let fields = form_urlencoded::parse(&body).into_owned().collect();
    stand_in.answer(&host, fields).await
}

fn page(host: &str, signin: Option<&Signin>, destination: &str) -> Response {
    let (status, body) = match signin {
        Some(s) => (
            StatusCode::OK,
            format!(
                "<p>In AWS, this link would sign you in to the console as:</p>\
                 <dl><dt>Role</dt><dd><code id=\"role\">{}</code></dd>\
                 <dt>Account</dt><dd><code id=\"account\">{}</code></dd>\
                 <dt>Opening</dt><dd><code id=\"destination\">{}</code></dd>\
                 <dt>Sign-in host</dt><dd><code>{}</code></dd></dl>",
                escape(&s.arn),
                escape(&s.account),
                escape(destination),
                escape(host)
            ),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            "<p>This sign-in token is unknown or was used already: a sign-in link works once.</p>"
                .to_owned(),
        ),
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>AWS console (local stand-in)</title></head><body>\
         <main><h1>AWS console sign-in: local stand-in</h1>\
         <p><strong>This is not AWS.</strong> cooper is running locally against moto, which has no \
         console sign-in endpoint, so <code>cooper serve</code> answers for it.</p>{body}</main></body></html>"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
