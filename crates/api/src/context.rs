//! Per-request context: the request id, the client's address, and rendering errors with both.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cooper_core::audit::RequestMeta;

use crate::error::{ApiError, ErrorBody, ErrorDetail};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of this request: API Gateway's when hosted on Lambda, a fresh UUIDv7 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The address the request came from, as the host saw it (API Gateway's `sourceIp`, or the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Outermost middleware of every router: gives the request an id and an address, logs it in a
/// span, and renders any `ApiError` as the JSON error body with that id.
pub async fn request_context(mut req: Request, next: Next) -> Response {
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

    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        method = %req.method(),
        path = %req.uri().path(),
        user = tracing::field::Empty,
    );
    let mut response = tracing::Instrument::instrument(next.run(req), span.clone()).await;

    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: error.code,
                message: &error.message,
                request_id: &request_id.0,
            },
        };
        span.in_scope(|| {
            tracing::info!(
                status = error.status.as_u16(),
                code = error.code,
                "request refused"
            );
        });
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
