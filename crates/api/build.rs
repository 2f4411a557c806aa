//! The API serves docs/openapi.json as committed, minus its indentation: the pretty file is for
//! people and diffs, the compact copy (half the bytes) is what a function binary carries.

use std::error::Error;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    let source = Path::new("../../docs/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(source)
        .map_err(|e| format!("docs/openapi.json is not readable: {e}"))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("docs/openapi.json is not JSON: {e}"))?;
    let out = std::env::var("OUT_DIR")?;
    std::fs::write(
        Path::new(&out).join("openapi.json"),
        serde_json::to_string(&document)?,
    )?;
    Ok(())
}
