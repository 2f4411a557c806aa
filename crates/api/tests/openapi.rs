//! docs/openapi.json is what the types and the handlers' annotations say: `make openapi`
//! (COOPER_WRITE_OPENAPI=1) writes it, and this test (in `make lint`) fails when it drifts.

use std::path::Path;

#[test]
fn docs_openapi_json_is_generated_from_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = cooper_api::openapi::render().expect("the document renders");
    if std::env::var_os("COOPER_WRITE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("docs/openapi.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        let around = |text: &str| {
            text.lines()
                .skip(first.saturating_sub(3))
                .take(7)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "docs/openapi.json is not what the code describes: run `make openapi`.\n\
             First difference at line {}:\n--- committed\n{}\n+++ generated\n{}",
            first + 1,
            around(&committed),
            around(&generated),
        );
    }
}
