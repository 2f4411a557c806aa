//! JSON request bodies: parsed strictly (unknown fields refused), with errors in cooper's shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body any route accepts.
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// Like `axum::Json`, but every rejection is a cooper error with a stable code.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(rejection)),
        }
    }
}

fn rejected(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {}", e.body_text_tail()),
        ),
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request("invalid_request", e.body_text_tail())
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are limited to {BODY_LIMIT_BYTES} bytes"),
            )
        }
        other => ApiError::bad_request("invalid_request", other.body_text()),
    }
}

trait Tail {
    fn body_text_tail(&self) -> String;
}

impl<E: std::error::Error> Tail for E {
    /// serde's own message (`unknown field `x`, expected ...`), without axum's prefix.
    fn body_text_tail(&self) -> String {
        let mut source: &dyn std::error::Error = self;
        while let Some(next) = source.source() {
            source = next;
        }
        source.to_string()
    }
}
