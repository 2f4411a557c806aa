//! The API serves docs/openapi.json as committed, minus its indentation: the pretty file is for
//! people and diffs, the compact copy (half the bytes) is what a function binary carries.

use std::path::Path;

fn main() {
    let source = Path::new("../../docs/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(source).expect("docs/openapi.json is readable");
    let document: serde_json::Value =
        serde_json::from_str(&text).expect("docs/openapi.json is JSON");
    let compact = serde_json::to_string(&document).expect("a JSON value serializes");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("openapi.json"), compact).expect("OUT_DIR is writable");
}
