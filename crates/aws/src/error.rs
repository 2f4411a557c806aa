//! AWS SDK failures, sorted into what the domain can act on: unavailable, throttled, refused.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use cooper_core::ports::{Service, UpstreamError, UpstreamKind};

/// Error codes AWS services use for rate limiting.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "LimitExceededException",
];

/// Sorts an SDK error by what a caller can do about it. The message carries the AWS error code and
/// message (which name resources, never our secrets).
pub(crate) fn upstream<E>(service: Service, err: SdkError<E, HttpResponse>) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, message) = match &err {
        SdkError::TimeoutError(_) => (UpstreamKind::Unavailable, "timed out".to_owned()),
        SdkError::DispatchFailure(failure) => (
            UpstreamKind::Unavailable,
            if failure.is_timeout() {
                "timed out connecting".to_owned()
            } else {
                "could not reach the endpoint".to_owned()
            },
        ),
        SdkError::ResponseError(_) => (
            UpstreamKind::Unavailable,
            "sent a response that could not be read".to_owned(),
        ),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("UnknownError");
            let text = ctx.err().message().unwrap_or_default();
            let kind = if THROTTLING_CODES.contains(&code) || status == 429 {
                UpstreamKind::Throttled
            } else if status >= 500 {
                UpstreamKind::Unavailable
            } else {
                UpstreamKind::Refused
            };
            (kind, format!("{code}: {text}"))
        }
        _ => (
            UpstreamKind::Unavailable,
            "request could not be built".to_owned(),
        ),
    };
    UpstreamError::new(service, kind, message)
}

/// The AWS error code of a service error, if that is what `err` is.
pub(crate) fn code_of<E>(err: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}

pub(crate) fn corrupt(service: Service, message: impl Into<String>) -> UpstreamError {
    UpstreamError::new(service, UpstreamKind::Corrupt, message)
}
