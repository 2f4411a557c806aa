//! The console's stylesheet and script, embedded in the binary and served with a year's
//! caching: their URLs carry a hash of their content, so a new build is a new URL.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub const CSS: &str = include_str!("static/cooper.css");
pub const JS: &str = include_str!("static/cooper.js");

/// The first 12 hex digits of the SHA-256 of both assets.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new().chain_update(CSS).chain_update(JS).finalize();
    hex::encode(digest).chars().take(12).collect()
});
