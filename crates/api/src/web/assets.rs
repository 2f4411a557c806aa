//! The console's stylesheet and script, embedded in the binary and served with a year's
//! caching: their URLs carry a hash of their content, so a new build is a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const CSS: &str = include_str!("static/cooper.css");
pub const JS: &str = include_str!("static/cooper.js");

/// The first 12 hex digits of the SHA-256 of both assets.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new().chain_update(CSS).chain_update(JS).finalize();
    hex::encode(digest).chars().take(12).collect()
});

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "cooper.css" => (CSS, "text/css; charset=utf-8"),
        "cooper.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return super::pages::not_found_page(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
