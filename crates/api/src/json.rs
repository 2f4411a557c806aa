//! JSON request bodies: a JSON object, parsed strictly (unknown fields refused), with every
//! failure reported in cooper's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// Largest request body any route accepts.
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// A body holding secrets (passwords, codes): as `JsonBody`, but a wrongly typed field is
/// reported without serde's message, which would quote the value.
pub struct SecretJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for SecretJsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonBody::<T>::from_request(req, state)
            .await
            .map(|JsonBody(value)| Self(value))
            .map_err(redacted)
    }
}

fn redacted(e: ApiError) -> ApiError {
    if e.code == "invalid_request" || e.code == "malformed_json" {
        ApiError::bad_request(
            e.code,
            "the body must be a JSON object with the documented fields, all strings",
        )
    } else {
        e
    }
}

/// Parses an optional secret-holding body: empty means `T::default()`.
pub fn parse_optional_secret<T: DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    parse_optional(headers, bytes).map_err(redacted)
}

/// Parses an optional body: empty means `T::default()`.
pub fn parse_optional<T: DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json_type(headers) {
        return Err(unsupported_media_type());
    }
    parse(bytes)
}

/// Like `axum::Json`, but stricter (the body must be an object: serde would otherwise read a
/// struct from an array) and every rejection is a cooper error with a stable code.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request bodies are limited to {BODY_LIMIT_BYTES} bytes"),
                )
            } else {
                ApiError::bad_request("invalid_request", "the request body could not be read")
            }
        })?;
        parse(&bytes).map(Self)
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

fn is_json_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_as_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    match serde_json::from_slice::<T>(bytes) {
        Ok(_) if !starts_as_object => Err(not_an_object()),
        Ok(value) => Ok(value),
        Err(e) => match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => Err(ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )),
            Category::Data if !starts_as_object => Err(not_an_object()),
            Category::Data => Err(ApiError::bad_request("invalid_request", e.to_string())),
        },
    }
}

fn not_an_object() -> ApiError {
    ApiError::bad_request("invalid_request", "the body must be a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        target: String,
    }

    #[test]
    fn objects_parse_and_everything_else_has_a_code() {
        assert!(parse::<Body>(br#" {"target":"x"}"#).is_ok());
        assert_eq!(
            parse::<Body>(br#"["x"]"#).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            parse::<Body>(br#"{"target":"#).unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse::<Body>(br#"{"target":"x","y":1}"#).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(parse::<Body>(b"").unwrap_err().code, "malformed_json");
        assert_eq!(parse::<Body>(b"null").unwrap_err().code, "invalid_request");
    }
}
