//! Per-request context: the request id, the client's address, rendering errors with both, and
//! each request's access-log line and metrics.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cooper_core::audit::RequestMeta;

use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of this request: API Gateway's when hosted on Lambda, a fresh UUIDv7 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The address the request came from, as the host saw it (API Gateway's `sourceIp`, or the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Outermost middleware of every router: gives the request an id and an address, logs it in a
/// span, renders any `ApiError` as the JSON error body with that id, and ends with the request's
/// access-log line and EMF metrics line.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match req.extensions().get::<RequestId>() {
        Some(id) => id.clone(),
        None => {
            let id = RequestId(uuid::Uuid::now_v7().to_string());
            req.extensions_mut().insert(id.clone());
            id
        }
    };
    if req.extensions().get::<ClientAddr>().is_none()
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
    {
        let addr = ClientAddr(peer.ip());
        req.extensions_mut().insert(addr);
    }

    // The route template, never the raw path (ids) nor the query (codes): the metric's
    // dimension and the log's field stay few and secret-free.
    let route = match req.extensions().get::<MatchedPath>() {
        Some(path) => format!("{} {}", req.method(), path.as_str()),
        None => metrics::UNMATCHED_ROUTE.to_owned(),
    };
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        method = %req.method(),
        path = %req.uri().path(),
        user = tracing::field::Empty,
    );
    let (mut response, tally) =
        metrics::tallied(tracing::Instrument::instrument(next.run(req), span)).await;

    let error = response.extensions_mut().remove::<ApiError>();
    let code = error.as_ref().map(|e| e.code).or(tally.code);
    let route = match code {
        Some("method_not_allowed") => metrics::UNMATCHED_ROUTE.to_owned(),
        _ => route,
    };
    let finished = metrics::Finished {
        request_id: &request_id.0,
        route: &route,
        status: response.status().as_u16(),
        code,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    access_log(&method, &finished, &tally);
    metrics::request_finished(&finished, &tally);

    if let Some(error) = error {
        let body = ErrorBody {
            error: ErrorDetail {
                code: error.code,
                message: &error.message,
                request_id: &request_id.0,
            },
        };
        let (mut parts, _) = response.into_parts();
        let rendered = axum::Json(body).into_response();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response = Response::from_parts(parts, rendered.into_body());
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The request's one access-log line: `request` with `request_id`, `method`, `route` (the
/// template), `status`, `latency_ms`, and when known `user`, `target`, the error `code` and
/// the X-Ray `trace_id`.
fn access_log(method: &axum::http::Method, done: &metrics::Finished<'_>, tally: &metrics::Tally) {
    let latency_ms = (done.latency_ms * 1000.0).round() / 1000.0;
    tracing::info!(
        request_id = done.request_id,
        method = %method,
        route = done.route,
        status = done.status,
        latency_ms,
        user = tally.user.as_deref(),
        target = tally.target.as_deref(),
        code = done.code,
        trace_id = xray_trace_id().as_deref(),
        "request"
    );
}

/// The X-Ray trace of this invocation (`Root=1-...`), which the Lambda runtime sets per
/// invocation: the link from a log line to its trace. None outside Lambda.
fn xray_trace_id() -> Option<String> {
    let header = std::env::var("_X_AMZN_TRACE_ID").ok()?;
    header
        .split(';')
        .find_map(|part| part.strip_prefix("Root="))
        .map(str::to_owned)
}

/// The most a request line and its headers may take together: API Gateway's own limit for an
/// HTTP API (10 KiB), enforced here too so that `cooper serve` answers as the deployment does.
pub const HEADER_LIMIT_BYTES: usize = 10 * 1024;

/// Refuses requests whose request line and headers exceed [`HEADER_LIMIT_BYTES`], with a 431
/// before anything reads them.
pub async fn limit_headers(req: Request, next: Next) -> Response {
    let line = req.method().as_str().len() + req.uri().to_string().len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 2)
        .sum();
    if line + headers > HEADER_LIMIT_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request line and headers may take at most {HEADER_LIMIT_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The request's id and source address, for audit records.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let source_ip = parts.extensions.get::<ClientAddr>().map(|a| a.0);
        Ok(Self(RequestMeta {
            request_id,
            source_ip,
        }))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use serde_json::Value;
    use tower::ServiceExt;
    use tracing_subscriber::prelude::*;

    use super::*;
    use crate::telemetry::tests::Captured;

    async fn refused(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
        metrics::note_user("lena");
        metrics::note_target(&id);
        ApiError::new(StatusCode::FORBIDDEN, "not_granted", "no").into_response()
    }

    /// The access-log lines of requests to `paths`, as the JSON log format writes them.
    async fn access_lines(paths: &[&str]) -> Vec<Value> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry()
            .with(crate::telemetry::json_layer(move || writer.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route("/v1/things/{id}", get(refused))
            .route("/v1/ok", get(|| async { "ok" }))
            .fallback(|| async { ApiError::not_found() })
            .layer(axum::middleware::from_fn(request_context));
        for path in paths {
            let request = axum::http::Request::get(*path)
                .header(REQUEST_ID_HEADER, "ignored")
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        out.lines()
            .into_iter()
            .filter(|l| l["message"] == "request")
            .collect()
    }

    #[tokio::test]
    async fn each_request_has_one_access_line_with_the_route_template_and_what_it_did() {
        let lines = access_lines(&["/v1/things/a-ro?code=123456", "/v1/ok", "/nowhere/42"]).await;
        assert_eq!(lines.len(), 3, "{lines:?}");

        let refused = &lines[0];
        assert_eq!(refused["level"], "INFO");
        assert_eq!(refused["method"], "GET");
        assert_eq!(refused["route"], "GET /v1/things/{id}");
        assert_eq!(refused["status"], 403);
        assert_eq!(refused["code"], "not_granted");
        assert_eq!(refused["user"], "lena");
        assert_eq!(refused["target"], "a-ro");
        assert!(refused["latency_ms"].as_f64().unwrap() >= 0.0);
        let id = refused["request_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a fresh id: {id}");
        assert!(
            !refused.to_string().contains("123456"),
            "no query string in the line"
        );

        let ok = &lines[1];
        assert_eq!(ok["route"], "GET /v1/ok");
        assert_eq!(ok["status"], 200);
        for absent in ["code", "user", "target"] {
            assert!(ok.get(absent).is_none(), "{absent} in {ok}");
        }

        let unmatched = &lines[2];
        assert_eq!(unmatched["route"], metrics::UNMATCHED_ROUTE);
        assert_eq!(unmatched["status"], 404);
        assert_eq!(unmatched["code"], "not_found");
    }
}
